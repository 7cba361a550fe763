"""Roles in the app (AppTest): with GAN_PRESENTER_KEY set, a session is a student until it types the key in the sidebar;
a student's click on a control it does not hold (drawn disabled and sent anyway, or drawn enabled by a page that got it
wrong) changes nothing and says why."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from gan_core.runs.manager import RunManager
from gan_core.runs.roles import KeyGuard, owner_token
from gan_core.runs.status import Status
from tests.test_pages import _app  # the page opened and run once, with no exception
from tests.tiny import SLOW, TINY
from ui import live, roles

KEY = "correct horse"

pytestmark = pytest.mark.usefixtures("fresh_manager")


@pytest.fixture(autouse=True)
def presenter_key(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    monkeypatch.setenv("GAN_PRESENTER_KEY", KEY)
    slept: list[float] = []
    monkeypatch.setattr(roles, "_guard", lambda key: KeyGuard(key, sleep=slept.append))
    return slept


def _errors(app: AppTest) -> list[str]:
    return [e.value.replace("\\", "") for e in app.error]  # shown as text: Markdown's characters are escaped


def _texts(app: AppTest) -> str:
    return " ".join(str(el.value) for kind in ("markdown", "caption", "error", "warning", "text") for el in app.get(kind))


def test_the_right_key_unlocks_and_a_wrong_one_is_refused_without_echo(presenter_key):
    app = _app()
    field = app.sidebar.text_input(key=roles.KEY_FIELD)
    assert field.label == "Presenter key" and "watch every run" in _texts(app)
    field.set_value("wrong guess 123").run()
    assert not app.exception
    assert "That is not the presenter key." in _errors(app)
    assert "wrong guess 123" not in _texts(app) and app.text_input(key=roles.KEY_FIELD).value == ""
    assert roles.PRESENTER not in app.session_state
    app.text_input(key=roles.KEY_FIELD).set_value("another").run()
    assert presenter_key[-2:] == [1.0, 1.0]  # the second wrong guess waited for the first
    app.text_input(key=roles.KEY_FIELD).set_value(KEY).run()
    assert not app.exception and app.session_state[roles.PRESENTER] is True
    assert "Presenter" in _texts(app) and KEY not in _texts(app)
    assert not [t for t in app.sidebar.text_input if t.key == roles.KEY_FIELD]  # no key field any more


@pytest.mark.slow
def test_a_students_forged_click_changes_nothing_and_says_why(monkeypatch):
    manager = live.get_manager()
    teachers = manager.start(SLOW, "teachers")  # by the server itself: the presenter's run
    manager.wait(teachers, lambda s: s.status is Status.RUNNING)
    app = _app()
    assert app.session_state[live.SELECTED] == teachers or live.selected_id() == teachers
    pause = app.sidebar.button(key=f"sidebar_Pause_{teachers}")
    assert pause.disabled and live.NOT_YOURS in _texts(app)
    # a forged event: AppTest will not click a disabled button, but a browser can send the click over its websocket
    # (Streamlit 1.67 discards a disabled widget's value on the server too)
    pause._value = True
    app.run()
    assert not app.exception and manager.status(teachers) is Status.RUNNING

    # a page that drew every button enabled: the click reaches the manager, which refuses it
    with monkeypatch.context() as patch:
        patch.setattr(RunManager, "may_control", lambda self, actor, run_id: True)
        app.run()
        pause = app.sidebar.button(key=f"sidebar_Pause_{teachers}")
        assert not pause.disabled
        pause.click().run()
        assert not app.exception
        assert manager.status(teachers) is Status.RUNNING
        assert any("only the presenter or the session that started" in e for e in _errors(app))

    # its own run: it controls that one; a second is over its quota and is refused with the limit
    next(b for b in app.button if b.label == "Train the default GAN").click().run()
    mine = app.session_state[live.SELECTED]
    assert mine != teachers and manager.owner(mine) == owner_token(app.session_state[roles.SESSION_ID])
    assert not app.sidebar.button(key=f"sidebar_Stop_{mine}").disabled
    next(b for b in app.button if b.label == "Train the default GAN").click().run()
    assert not app.exception
    assert any("already has 1 active run (the limit is 1, GAN_SESSION_RUNS)" in e for e in _errors(app))
    assert len(manager.ids()) == 2
    app.sidebar.button(key=f"sidebar_Stop_{mine}").click().run()
    assert not manager.status(mine).active
    manager.stop(teachers)


def test_the_presenter_deletes_a_run_after_a_second_click():
    manager = live.get_manager()
    done = manager.start(TINY, "done")
    manager.wait(done)
    app = _app()
    assert not [b for b in app.sidebar.button if b.label == "Delete"]  # a student: not its run
    app.sidebar.text_input(key=roles.KEY_FIELD).set_value(KEY).run()
    app.sidebar.button(key=f"sidebar_delete_{done}").click().run()
    assert done in manager  # asks once more
    app.sidebar.button(key=f"sidebar_delete_yes_{done}").click().run()
    assert not app.exception and done not in manager
    assert "No runs yet" in _texts(app)
