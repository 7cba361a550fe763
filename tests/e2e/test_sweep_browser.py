"""The Sweep page in a real Chromium at a projector's size: launch a small grid, watch its cells fill in, see the
heatmap of outcomes once they end, and open a cell's run."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import assert_no_exception, screenshot, wait_idle

pytestmark = pytest.mark.browser
OPEN = re.compile(r"^\W*(open_in_new)?\s*Open\s*$")  # a cell's link: its icon's name, then its label
CELL_LINKS = "[data-testid=stPageLink] a:visible"


def test_a_sweep_from_the_form_to_the_heatmap(server, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    try:
        page.goto(f"{server}/sweep")
        wait_idle(page)
        page.locator("input[aria-label='Steps per run']").fill("60")
        page.locator("input[aria-label='Seeds']").fill("0,1")
        page.get_by_role("button", name="Launch the sweep").click()
        page.get_by_text("of 4 runs ended").wait_for(timeout=30_000)
        opens = page.locator(CELL_LINKS).filter(has_text=OPEN)
        # the cells' links come with or just after the progress line, in the same rerun (seen on a busy machine:
        # counted the moment the line showed, there were none yet)
        opens.nth(3).wait_for(timeout=30_000)
        assert opens.count() == 4, opens.all_inner_texts()
        page.get_by_text("4 of 4 runs ended").wait_for(timeout=120_000)
        page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)  # the heatmap, once a cell is evaluated
        page.get_by_text("modes covered", exact=True).first.wait_for()
        assert_no_exception(page)
        screenshot(page, "sweep")
        page.locator(CELL_LINKS).filter(has_text=OPEN).first.click()
        page.wait_for_url("**/training**", timeout=30_000)
        heading = page.get_by_role("heading", name="Run lr_g")  # the cell's run, on the Training page
        heading.first.wait_for(timeout=30_000)  # the address changes before the page is drawn (seen in CI)
        wait_idle(page)
        assert heading.count() == 1
        assert_no_exception(page)
    finally:
        context.close()
