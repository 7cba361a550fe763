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
