"""Follow the presenter: a student's and a presenter's sessions in AppTest (the stage on its own, on both of the classroom
store's databases: tests/test_classroom_store.py).

AppTest never ticks the follower's polling fragment; a follower applies the stage on every full script run too, which is
what these tests drive (the browser test, tests/e2e/test_follow_browser.py, covers the fragment).
"""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.test_pages import APP, _app
from tests.tiny import TINY
from ui import follow, live, roles

KEY = "correct horse"


@pytest.fixture
def classroom(monkeypatch: pytest.MonkeyPatch, fresh_manager: None) -> None:
    monkeypatch.setenv("GAN_PRESENTER_KEY", KEY)
    monkeypatch.setattr(roles, "_guard", lambda key: roles.KeyGuard(key, sleep=lambda s: None))
    follow.stage().clear()
    yield
    follow.stage().clear()


def _presenter() -> AppTest:
    app = _app()
    app.sidebar.text_input(key=roles.KEY_FIELD).set_value(KEY).run()
    assert app.session_state[roles.PRESENTER] is True
    return app


def _page(app: AppTest) -> str:
    return app.session_state[follow._PAGE]


def _toggles(app: AppTest) -> list:
    return [t for t in app.sidebar.toggle if t.key == follow.FOLLOW]


def test_no_toggle_without_a_presenter_key(fresh_manager):
    follow.stage().clear()
    app = _app()
    assert not _toggles(app) and not any("Follow the presenter" in c.value for c in app.sidebar.caption)


@pytest.mark.usefixtures("classroom")
def test_the_toggle_is_off_until_a_presenter_is_active_and_never_for_the_presenter():
    student = _app()
    assert not _toggles(student)
    assert any("no presenter is presenting now" in c.value for c in student.sidebar.caption)
    presenter = _presenter()
    assert not _toggles(presenter)  # the presenter leads: nothing to follow
    student.run()
    (toggle,) = _toggles(student)
    assert toggle.label == "Follow the presenter" and toggle.value is True
    follow.stage().clear()  # the presenter's tab closed (no heartbeat for ACTIVE_S)
    student.run()
    assert not _toggles(student)


@pytest.mark.slow
@pytest.mark.usefixtures("classroom")
def test_a_follower_shows_the_presenters_page_and_run_until_it_switches_off():
    manager = live.get_manager()
    older = manager.start(TINY, "older")
    newer = manager.start(TINY, "newer")
    manager.wait(older)
    presenter = _presenter()
    student = _app()
    assert _page(student) == "" and live.selected_id() in (newer, older)

    presenter.switch_page("app_pages/training.py").run()
    presenter.selectbox(key=live.PICKER).set_value(older).run()
    assert follow.stage().current().page == "training" and follow.stage().current().run == older
    student.run()
    assert not student.exception
    assert _page(student) == "training" and student.session_state[live.SELECTED] == older
    assert student.sidebar.selectbox(key=live.PICKER).value == older
    assert student.sidebar.selectbox(key=live.PICKER).disabled  # it follows: no picker to fight
    assert student.query_params[live.LINK] == older

    presenter.switch_page("app_pages/mode_collapse.py").run()
    presenter.selectbox(key=live.PICKER).set_value(newer).run()
    student.run()
    assert _page(student) == "mode_collapse" and student.session_state[live.SELECTED] == newer
    student.run()  # its own reruns re-apply nothing
    assert _page(student) == "mode_collapse"

    student.sidebar.toggle(key=follow.FOLLOW).set_value(False).run()
    assert not student.sidebar.selectbox(key=live.PICKER).disabled
    presenter.switch_page("app_pages/batch_norm.py").run()
    student.run()
    assert _page(student) == "mode_collapse"  # exploring: it stays
    student.sidebar.selectbox(key=live.PICKER).set_value(older).run()
    assert student.session_state[live.SELECTED] == older

    student.sidebar.toggle(key=follow.FOLLOW).set_value(True).run()  # rejoins at once
    assert _page(student) == "batch_norm" and student.session_state[live.SELECTED] == newer


@pytest.mark.usefixtures("classroom")
def test_a_follower_who_navigates_away_stops_following():
    _presenter().switch_page("app_pages/training.py").run()
    student = AppTest.from_file(APP, default_timeout=60)
    student.run()
    assert _page(student) == "training"
    student.switch_page("app_pages/bce_loss.py").run()
    assert not student.exception
    assert _page(student) == "bce_loss"
    assert student.sidebar.toggle(key=follow.FOLLOW).value is False
    assert any("left the presenter's page" in t.value for t in student.toast)
    student.run()
    assert _page(student) == "bce_loss"


@pytest.mark.usefixtures("classroom")
def test_a_student_who_types_the_key_is_never_woken_as_a_follower_again(monkeypatch):
    """ui.wake reruns followers when the stage changes; a rerun of the presenter's own session stopped the run its
    click had started (seen: the vote storm's "Ask the room to predict first" lost, no question for anyone)."""
    from ui import wake

    woken: set[str] = set()
    monkeypatch.setattr(wake, "available", lambda: True)
    monkeypatch.setattr(wake, "follow", lambda session, stage, drawn: woken.add(session))
    monkeypatch.setattr(wake, "unfollow", woken.discard)
    _presenter()  # so a presenter is active: a student's page follows
    student = _app()
    assert len(woken) == 1  # the student follows, and is woken on a new slide
    student.sidebar.text_input(key=roles.KEY_FIELD).set_value(KEY).run()
    assert student.session_state[roles.PRESENTER] is True
    assert not woken  # the presenter now: not woken again


def test_a_session_running_its_own_script_is_woken_after_its_run_not_during_it(monkeypatch):
    """A rerun requested while a session's script runs stops that run (Streamlit's fast reruns), and the click that
    started it with it: such a session waits for the next tick."""
    from types import SimpleNamespace

    from streamlit.runtime import Runtime

    from ui import wake

    asked: list[object] = []
    session = SimpleNamespace(_scriptrunner=object(), _client_state=None, request_rerun=asked.append)
    from streamlit.proto.ClientState_pb2 import ClientState

    session._client_state = ClientState(page_script_hash="abc")
    manager = SimpleNamespace(get_active_session_info=lambda sid: SimpleNamespace(session=session) if sid == "s" else None)
    monkeypatch.setattr(Runtime, "instance", classmethod(lambda cls: SimpleNamespace(_session_mgr=manager)))
    assert wake._rerun("s") == wake.BUSY and not asked
    session._scriptrunner = None  # its run ended
    assert wake._rerun("s") == wake.WOKEN
    assert asked and asked[0].page_script_hash == "abc" and asked[0].fragment_id == ""
    assert wake._rerun("closed") == wake.GONE


def test_a_woken_follower_whose_page_was_not_drawn_is_woken_again_until_it_is():
    """Measured at 120 followers: a switch's page run replaced by a fragment run never finished, and no poll came after
    it. The wake reruns such a follower again RETRY_S later (RETRIES times at most), and not one that got there."""
    from ui import wake

    asked: list[str] = []
    busy: set[str] = set()
    drawn: dict[str, int] = {}

    def rerun(session: str) -> str:
        if session in busy:
            return wake.BUSY
        asked.append(session)
        return wake.GONE if session == "closed" else wake.WOKEN

    waker = wake.Waker(rerun)
    followers = {"a", "b", "c", "closed"}
    has = lambda s, v: drawn.get(s) == v  # noqa: E731
    assert waker.tick(1, followers, has, 0.0) == []  # the first version seen: nobody to wake
    drawn["c"] = 2  # c got to version 2 by its own poll before the wake saw it
    busy.add("b")
    assert waker.tick(2, followers, has, 1.0) == ["closed"]
    assert asked == ["a", "closed"]  # b runs its own script: woken after it
    busy.clear()
    waker.tick(2, followers - {"closed"}, has, 1.1)
    assert asked[2:] == ["b"]
    drawn["b"] = 2
    waker.tick(2, followers, has, 1.0 + wake.RETRY_S - 0.01)
    assert asked[3:] == []  # not yet
    waker.tick(2, followers - {"closed"}, has, 1.0 + wake.RETRY_S)
    assert asked[3:] == ["a"]  # a not drawn: again; b drawn: not again
    for i in range(2, 10):
        waker.tick(2, followers - {"closed"}, has, 1.0 + i * wake.RETRY_S)
    assert asked.count("a") == 1 + wake.RETRIES and asked.count("b") == 1 and "c" not in asked
    waker.tick(3, followers - {"closed"}, has, 100.0)  # a new slide: everyone once more
    assert asked[-3:] == ["a", "b", "c"]


def test_followers_wait_for_the_presenters_own_run_in_their_process_at_most_a_second():
    """The presenter first: woken at once, 60 followers' runs took the GIL from the loop sending the presenter's page."""
    from ui import wake

    asked: list[str] = []
    waker = wake.Waker(lambda s: asked.append(s) or wake.WOKEN)
    never = lambda s, v: False  # noqa: E731
    waker.tick(1, {"a"}, never, 0.0)
    waker.tick(2, {"a"}, never, 10.0, presenting=True)
    waker.tick(2, {"a"}, never, 10.5, presenting=True)
    assert asked == []  # the presenter's run goes on
    waker.tick(2, {"a"}, never, 10.6, presenting=False)
    assert asked == ["a"]
    waker.tick(3, {"a"}, never, 20.0, presenting=True)
    waker.tick(3, {"a"}, never, 20.0 + wake.LEAD_WAIT_S, presenting=True)
    assert asked == ["a", "a"]  # a presenter's run that does not end holds nobody for longer than LEAD_WAIT_S


def test_followers_are_woken_a_few_at_a_time_each_as_another_is_drawn():
    """Woken together, a process's followers all arrive at the end; paced, they arrive one after another."""
    from ui import wake

    asked: list[str] = []
    running: set[str] = set()
    drawn: dict[str, int] = {}

    def rerun(session: str) -> str:
        asked.append(session)
        running.add(session)
        return wake.WOKEN

    waker = wake.Waker(rerun, running.__contains__, pace=2)
    followers = {f"s{i}" for i in range(5)}
    has = lambda s, v: drawn.get(s) == v  # noqa: E731
    waker.tick(1, followers, has, 0.0)
    waker.tick(2, followers, has, 1.0)
    assert asked == ["s0", "s1"] and waker.pending
    waker.tick(2, followers, has, 1.01)
    assert asked == ["s0", "s1"]  # both still drawing
    drawn["s0"] = 2
    waker.tick(2, followers, has, 1.02)
    assert asked == ["s0", "s1", "s2"]  # s0 drawn (its run may still be ending): s2 takes its place
    running.discard("s1")  # s1's run ended without drawing: its slot is free, and RETRY_S later it is woken again
    waker.tick(2, followers, has, 1.03)
    assert asked[3:] == ["s3"]
    for s in ("s2", "s3"):
        drawn[s] = 2
    waker.tick(2, followers, has, 1.04)
    assert asked[4:] == ["s4"] and not waker.pending
