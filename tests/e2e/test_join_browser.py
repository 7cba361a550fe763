"""Join by QR code in a real browser, at a projector's 1280×720: the presenter's sidebar shows the address and its QR code;
Show on the projector shows both large, whole on the screen, and the code in the screenshot reads back (zxing-cpp) as the
address. The server sets GAN_PUBLIC_URL, as a teacher behind a proxy would: the test's server listens on loopback only.
Screenshots: tests/e2e/screenshots/join-sidebar.png and join-projector.png.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from support.server import local_server
from tests.e2e.conftest import assert_no_exception, screenshot, wait_idle

KEY = "e2e join key"
JOIN_URL = "http://192.0.2.10:8501/"  # TEST-NET-1: shown and encoded, never opened


@pytest.fixture(scope="module")
def join_server(tmp_path_factory: pytest.TempPathFactory, chromium_path: str) -> Iterator[str]:
    runs = tmp_path_factory.mktemp("join_runs")
    log = tmp_path_factory.mktemp("join_log") / "server.log"
    with local_server(runs, log, {"GAN_PRESENTER_KEY": KEY, "GAN_PUBLIC_URL": JOIN_URL}) as (url, _):
        yield url


def _read_qr(png: bytes) -> list[str]:
    import zxingcpp

    return [found.text for found in zxingcpp.read_barcodes(np.asarray(Image.open(io.BytesIO(png)).convert("L")))]


def test_the_presenter_shows_the_join_address_on_the_projector(join_server, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        page = context.new_page()
        page.goto(join_server)
        wait_idle(page)
        sidebar = page.locator("[data-testid=stSidebar]")
        assert sidebar.get_by_text("Students join here").count() == 0  # a student: no address, no code
        field = sidebar.get_by_role("textbox", name="Presenter key")
        field.fill(KEY)
        field.press("Enter")
        sidebar.get_by_text("Students join here").wait_for()
        wait_idle(page)
        assert_no_exception(page)
        assert sidebar.locator("[data-testid=stCode]").inner_text().strip() == JOIN_URL
        show = sidebar.get_by_role("button", name="Show on the projector")
        show.scroll_into_view_if_needed()  # a 720-pixel-high sidebar scrolls: the shot shows the whole panel
        screenshot(page, "join-sidebar")

        show.click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_text(JOIN_URL).wait_for()
        wait_idle(page)
        screenshot(page, "join-projector")
        image = dialog.locator("img").first
        for shown in (image.bounding_box(), dialog.get_by_text(JOIN_URL).bounding_box()):
            assert shown is not None and shown["y"] >= 0 and shown["y"] + shown["height"] <= 720  # no scrolling
        assert image.bounding_box()["width"] >= 400  # large enough for the back of the room
        assert _read_qr(image.screenshot()) == [JOIN_URL]  # what the room's phones will read
    finally:
        context.close()
