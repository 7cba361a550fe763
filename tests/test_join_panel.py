"""The join panel in the app (AppTest): with GAN_PRESENTER_KEY set, the presenter's sidebar shows the address students
open and its QR code, and Show on the projector shows both large; a student sees neither. A server students cannot reach
says so instead, and a malformed GAN_PUBLIC_URL is named."""

from __future__ import annotations

import pytest
from streamlit.config import get_option
from streamlit.testing.v1 import AppTest

from gan_core.classroom import join as engine
from tests.test_pages import _app
from ui import roles
from ui.text import md_escape

KEY = "correct horse"
LAN = "192.0.2.10"  # TEST-NET-1

pytestmark = pytest.mark.usefixtures("fresh_manager")


@pytest.fixture(autouse=True)
def classroom(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAN_PRESENTER_KEY", KEY)
    monkeypatch.setattr(roles, "_guard", lambda key: roles.KeyGuard(key, sleep=lambda s: None))
    monkeypatch.setattr(engine, "lan_address", lambda: LAN)  # AppTest runs the script in this process
    monkeypatch.delenv(engine.PUBLIC_URL_ENV, raising=False)
    monkeypatch.delenv(engine.HALL_ENV, raising=False)


def _presenter() -> AppTest:
    app = _app()
    app.sidebar.text_input(key=roles.KEY_FIELD).set_value(KEY).run()
    assert not app.exception and app.session_state[roles.PRESENTER] is True
    return app


def _qr_codes(app: AppTest) -> list[str]:
    """The SVG data URLs of the images drawn (AppTest has no image element of its own: they are its unknown 'image')."""
    return [img.url for el in app.get("image") for img in el.proto.imgs if img.url.startswith("data:image/svg+xml")]


def _sidebar_text(app: AppTest) -> str:
    return " ".join(str(el.value) for kind in ("caption", "code", "warning", "error") for el in app.sidebar.get(kind))


def test_the_presenter_sees_where_students_join_and_a_student_does_not():
    student = _app()
    assert "Students join here:" not in _sidebar_text(student) and not _qr_codes(student)
    assert not [b for b in student.sidebar.button if b.key == "join_projector"]

    presenter = _presenter()
    url = f"http://{LAN}:{get_option('server.port')}/"  # AppTest's script reads the options of this process
    assert "Students join here:" in _sidebar_text(presenter)
    assert [c.value for c in presenter.sidebar.code] == [url]
    (qr,) = _qr_codes(presenter)
    assert qr == engine.qr_svg_data_uri(url)  # tests/test_join.py decodes this code back to the URL

    assert not presenter.get("dialog")  # until asked
    presenter.sidebar.button(key="join_projector").click().run()
    assert not presenter.exception
    (dialog,) = presenter.get("dialog")
    assert dialog.proto.dialog.title == "Join the class" and dialog.proto.dialog.is_open
    shown = " ".join(m.value for m in presenter.markdown)
    assert md_escape(url) in shown and "Scan the code with your phone" in shown
    assert _qr_codes(presenter) == [qr, qr]  # the sidebar's and the projector's
    student.run()
    assert not student.get("dialog")


def test_a_server_only_this_machine_reaches_says_so_instead_of_a_useless_code(monkeypatch):
    monkeypatch.setenv(engine.HALL_ENV, "127.0.0.1:8600")  # a hall whose balancer listens on loopback
    presenter = _presenter()
    (warning,) = presenter.sidebar.warning
    assert "students' computers cannot reach it" in warning.value and "--address 0.0.0.0" in warning.value
    assert not _qr_codes(presenter) and not [b for b in presenter.sidebar.button if b.key == "join_projector"]


def test_the_teachers_public_url_is_shown_and_a_malformed_one_is_named(monkeypatch):
    monkeypatch.setenv(engine.PUBLIC_URL_ENV, "https://gan.school.example/3b")
    presenter = _presenter()
    assert [c.value for c in presenter.sidebar.code] == ["https://gan.school.example/3b"]
    monkeypatch.setenv(engine.PUBLIC_URL_ENV, "gan.school.example")
    presenter.run()
    assert not presenter.exception
    (error,) = presenter.sidebar.error
    assert "GAN_PUBLIC_URL must be an http:// or https:// address" in error.value.replace("\\", "")
    assert not _qr_codes(presenter)

