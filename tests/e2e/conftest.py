"""A real server and a real browser: `streamlit run dashboard.py` on a free port, driven by Playwright over Chromium.

Screenshots land in tests/e2e/screenshots/ (git-ignored) so a person can look at every page after a run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.server import local_server

SCREENSHOTS = Path(__file__).parent / "screenshots"
FAILED_RUN = "broken-run"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, chromium_path: str) -> Iterator[str]:
    """The app's URL; the server runs with its own empty runs folder for the whole session."""
    runs = tmp_path_factory.mktemp("e2e_runs")
    broken = runs / FAILED_RUN  # a damaged run folder: the app must list it as failed, and say why, on every page
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    log = tmp_path_factory.mktemp("e2e_log") / "server.log"
    with local_server(runs, log, {"GAN_MAX_RUNS": "2"}) as (url, _):
        yield url


@pytest.fixture
def failed_run(server: str) -> str:
    return FAILED_RUN


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, args=LAUNCH_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1400, "height": 2200})
    pg = context.new_page()
    yield pg
    context.close()


def wait_idle(page: object, timeout_ms: int = 30_000) -> None:
    """Wait until the script run has finished (fragments may go on refreshing afterwards)."""
    page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]", timeout=timeout_ms)
    # widgets still loading show as grey skeletons: wait for them too, so screenshots show the real page
    page.wait_for_function("() => !document.querySelector('[data-testid=stSkeleton]')", timeout=timeout_ms)


def assert_no_exception(page: object) -> None:
    errors = page.locator("[data-testid=stException]")
    assert errors.count() == 0, errors.first.inner_text()[:2000]


def screenshot(page: object, name: str) -> Path:
    """The page as the browser shows it (the viewport is tall enough for a whole page: Streamlit scrolls inside its
    main block, so a "full page" shot would only show the top)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.wait_for_timeout(500)  # let the newest chart update finish drawing
    page.screenshot(path=str(path))
    return path
