"""The 2D plane in a real Chromium at a projector's size (1280 × 720): the whole plane fits the screen at once and takes
most of its height, square, with every layer drawn."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gan_core.config import get_preset
from gan_core.runs.train_run import open_run, train_to
from support.server import local_server
from tests.e2e.conftest import assert_no_exception, screenshot, wait_idle

pytestmark = pytest.mark.browser

RUN = "ring-plane"
PROJECTOR = {"width": 1280, "height": 720}
LAYERS = ["G's manifold", "G's push", "real data", "generated"]  # the legend, in drawing order


@pytest.fixture(scope="module")
def plane_server(tmp_path_factory: pytest.TempPathFactory, chromium_path: str) -> Iterator[str]:
    """A server whose one run is a short ring run in which D learns ten times faster than G: D soon wins."""
    runs = tmp_path_factory.mktemp("plane_runs")
    config = get_preset("ring-bce").config.replace(steps=40, sample_every=20, lr_d=1e-2, lr_g=2e-4)
    train_to(*open_run(runs / RUN, config))
    with local_server(runs, tmp_path_factory.mktemp("plane_log") / "server.log") as (url, _):
        yield url


def _fills_the_screen(page) -> None:
    """The whole plane on screen at once, square, in most of its height, with every layer in the legend."""
    page.wait_for_selector(".js-plotly-plot .nsewdrag")
    page.locator(".js-plotly-plot").first.evaluate("el => el.scrollIntoView({block: 'center'})")
    page.wait_for_timeout(500)
    area = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()  # the plot's data area
    assert area["height"] >= 0.6 * PROJECTOR["height"], area
    assert abs(area["width"] - area["height"]) <= 2, area  # equal aspect: the ring stays round
    assert 0 <= area["y"] and area["y"] + area["height"] <= PROJECTOR["height"], area  # all of it on screen
    legend = page.locator(".js-plotly-plot .legendtext").evaluate_all("els => els.map(e => e.textContent)")
    assert legend == LAYERS


def test_the_plane_fills_a_projector_screen_then_walks_a_run_d_wins_from_start_to_end(plane_server, browser):
    """The finished run's plane fills a 1280×720 screen; then the history slider walks the run D wins through its
    snapshots (steps 0, 20, 40): at each, the caption names the step and every layer is drawn. The screenshots are the
    issue's "plane at 0, mid-training and end". (One page for both: a page load is most of each check's time.)"""
    context = browser.new_context(viewport=PROJECTOR)
    page = context.new_page()
    try:
        page.goto(f"{plane_server}/training?run={RUN}")
        wait_idle(page)
        _fills_the_screen(page)
        assert_no_exception(page)
        screenshot(page, "plane-1280x720")

        page.get_by_text("Follow live", exact=True).click()  # off: the history slider appears
        wait_idle(page)
        thumb = page.locator("[data-testid=stSlider] input[type=range]").first  # react-aria's slider input
        thumb.wait_for(state="attached", timeout=60_000)  # the slider's code loads on first use
        thumb.focus()
        thumb.press("Home")
        for step in (0, 20, 40):
            page.get_by_text(f"step {step}: 512 samples", exact=False).wait_for()
            wait_idle(page)
            page.locator(".js-plotly-plot").first.evaluate("el => el.scrollIntoView({block: 'center'})")
            page.wait_for_timeout(300)
            traces = page.locator(".js-plotly-plot .legendtext").evaluate_all("els => els.map(e => e.textContent)")
            assert traces == LAYERS, (step, traces)
            assert_no_exception(page)
            screenshot(page, f"plane-step-{step}")
            if step < 40:
                thumb.focus()
                thumb.press("ArrowRight")
    finally:
        context.close()
