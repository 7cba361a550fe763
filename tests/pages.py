"""Page AppTests run through dashboard.py: a page's "Back"/"Next" links (st.page_link) need the navigation around it."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "dashboard.py")


def page_app(page: str, timeout: float = 60) -> AppTest:
    """An AppTest of `page` ("app_pages/x.py") inside the dashboard's navigation; call .run() on it."""
    return AppTest.from_file(APP, default_timeout=timeout).switch_page(page)
