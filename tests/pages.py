"""Page AppTests run through dashboard.py: a page's "Back"/"Next" links (st.page_link) need the navigation around it."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "dashboard.py")


def page_app(page: str, timeout: float = 60) -> AppTest:
    """An AppTest of `page` ("app_pages/x.py") inside the dashboard's navigation; call .run() on it."""
    return AppTest.from_file(APP, default_timeout=timeout).switch_page(page)


def opened_page(page: str, *, presenter: bool = False) -> AppTest:
    """`page` run once, without an exception; `presenter`: as the sidebar's key field leaves the session."""
    from ui import roles  # (imported here: this module is imported before the tests' fixtures set the app up)

    app = page_app(page)
    if presenter:
        app.session_state[roles.PRESENTER] = True
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app
