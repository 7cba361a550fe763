"""The race that lost 1-6 of 120 switches in the classroom load test: a follower's switched-to page whose run another
rerun cuts short. The scripts below are tiny AppTest scripts that call ui.follow's pieces directly, because AppTest
cannot tick a fragment or interleave two requests.
"""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from ui import follow

KEY = "correct horse"


@pytest.fixture
def classroom(monkeypatch: pytest.MonkeyPatch, fresh_manager: None) -> None:  # the stage is in its runs folder's store
    monkeypatch.setenv("GAN_PRESENTER_KEY", KEY)
    follow.stage().clear()
    yield
    follow.stage().clear()


def _poll_script() -> None:
    """One tick of a follower's poll (a fragment rerun unless the test says otherwise), with `_apply` replaced by a
    recorder."""
    from types import SimpleNamespace

    import streamlit as st

    from ui import follow

    ctx = SimpleNamespace(fragment_ids_this_run=st.session_state["fragment_ids"])
    follow.get_script_run_ctx = lambda: ctx
    calls = st.session_state.setdefault("applied_calls", [])
    follow._apply = lambda scene, here, in_fragment=False: calls.append((scene.page, here, in_fragment))
    st.session_state[follow._ACTIVE] = True
    follow._poll()


def _tick(*, applied: bool, arrived: bool, fragment: bool = True, drawn: bool | None = None) -> list:
    scene = follow.stage().publish("activations", None)
    follow._drawn.pop("", None)  # the scripts' stand-in context has no session id: ""
    if arrived if drawn is None else drawn:  # its page drawn to the end (ui.follow.showing), unless the test says not
        follow._drawn[""] = scene.version
    app = AppTest.from_function(_poll_script)
    app.session_state["fragment_ids"] = ["poll"] if fragment else None
    app.session_state[follow._PAGE] = "activations"  # the page the server last drew for this session
    if applied:
        app.session_state[follow._APPLIED] = scene.version
    if arrived:
        app.session_state[follow._ARRIVED] = scene.version
    app.run()
    assert not app.exception
    return app.session_state["applied_calls"]


@pytest.fixture(autouse=True)
def _restore(monkeypatch: pytest.MonkeyPatch) -> None:
    # the scripts replace these module attributes; put them back after each test
    monkeypatch.setattr(follow, "get_script_run_ctx", follow.get_script_run_ctx)
    monkeypatch.setattr(follow, "_apply", follow._apply)


@pytest.mark.usefixtures("classroom")
def test_a_poll_in_step_with_the_presenter_does_nothing():
    assert _tick(applied=True, arrived=True) == []


@pytest.mark.usefixtures("classroom")
def test_a_poll_applies_a_new_slide():
    assert _tick(applied=False, arrived=False) == [("activations", "activations", True)]


@pytest.mark.usefixtures("classroom")
def test_an_arrival_whose_page_was_never_drawn_to_its_end_is_drawn_again():
    # the switch's run began (arrival recorded) but ended without the page drawn, and without an exception the page saw
    # (Streamlit replaced it by a fragment run: measured with 60 woken followers)
    assert _tick(applied=True, arrived=True, drawn=False) == [("activations", "activations", True)]


@pytest.mark.usefixtures("classroom")
def test_a_switch_whose_page_run_was_cut_short_is_drawn_again():
    # the browser was switched to activations, but that full run was cut short (the arrival was taken back)
    assert _tick(applied=True, arrived=False) == [("activations", "activations", True)]


@pytest.mark.usefixtures("classroom")
def test_the_poll_drawn_inside_a_full_run_leaves_the_switch_to_sync():
    # inline in a full run the page is still being drawn: re-applying here would rerun it forever
    assert _tick(applied=True, arrived=False, fragment=False) == []


def _cut_short_script() -> None:
    """A full run in which a follower arrives at the presenter's page, then (first time only) another rerun cuts it
    short, or the page ends with st.stop()."""
    import streamlit as st

    from ui import follow

    end = st.session_state["end"]
    with follow.showing():
        if st.session_state.get("runs", 0) == 0:
            st.session_state[follow._ARRIVED] = st.session_state[follow._JUST] = 7  # what sync records on arrival
        st.session_state["runs"] = st.session_state.get("runs", 0) + 1
        if end == "rerun" and st.session_state["runs"] == 1:
            st.rerun()
        if end == "stop":
            st.stop()


@pytest.mark.parametrize(("end", "kept"), [("rerun", False), ("stop", True), ("normal", True)])
def test_an_arrival_is_taken_back_only_when_another_rerun_cuts_the_run_short(end: str, kept: bool):
    app = AppTest.from_function(_cut_short_script)
    app.session_state["end"] = end
    app.run()
    assert not app.exception
    assert (app.session_state[follow._ARRIVED] == 7 if kept else follow._ARRIVED not in app.session_state)


def test_an_arrival_from_an_earlier_run_is_kept_when_a_later_run_is_cut_short():
    # a student already on the presenter's page who reruns (a widget) and is interrupted has not left it
    def script() -> None:
        import streamlit as st

        from ui import follow

        with follow.showing():
            st.session_state["runs"] = st.session_state.get("runs", 0) + 1
            if st.session_state["runs"] == 1:
                st.rerun()

    app = AppTest.from_function(script)
    app.session_state[follow._ARRIVED] = 7
    app.run()
    assert app.session_state[follow._ARRIVED] == 7


def _stopping_script() -> None:
    """A follower's page that ends with the page's own end (follow.end_page) or with a bare stop: the stop Streamlit
    raises in a run that a newer rerun of the session replaces."""
    import streamlit as st
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    from ui import follow

    with follow.showing():
        follow._drawing[get_script_run_ctx().session_id] = 7  # what sync records on the presenter's page
        if st.session_state["end"] == "end_page":
            follow.end_page()
        st.stop()


@pytest.mark.parametrize(("end", "drawn"), [("end_page", True), ("stop", False)])
def test_a_page_counts_as_drawn_when_it_ends_itself_not_when_its_run_is_stopped(end: str, drawn: bool):
    follow._drawn.clear()
    app = AppTest.from_function(_stopping_script)
    app.session_state["end"] = end
    app.run()
    assert not app.exception
    assert (7 in follow._drawn.values()) is drawn
