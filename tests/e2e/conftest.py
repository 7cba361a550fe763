"""A real server and a real browser: `streamlit run dashboard.py` on a free port, driven by Playwright over Chromium.

Screenshots land in tests/e2e/screenshots/ (git-ignored) so a person can look at every page after a run.
"""

from __future__ import annotations

import sys
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
        _keep_failed_pages(b)
        yield b
        b.close()


# What each browser showed when a test failed, for the failure's report: a CI log is all a flaky failure leaves behind.
_open_contexts: list[object] = []
_failed_pages: list[tuple[str, str]] = []  # (heading, the page's text), taken from contexts closed mid-failure


def _keep_failed_pages(browser: object) -> None:
    """Every context this browser opens is remembered until closed; one closed while an exception is on its way out (a
    test's `finally`) first leaves a screenshot and its pages' text for the report (pytest_runtest_makereport)."""
    new_context = browser.new_context

    def opened(*args: object, **kwargs: object) -> object:
        context = new_context(*args, **kwargs)
        close = context.close

        def closing(*args: object, **kwargs: object) -> None:
            if sys.exc_info()[0] is not None:  # closed by a `finally` while the test fails
                _failed_pages.extend(_page_texts(context))
            if context in _open_contexts:
                _open_contexts.remove(context)
            close(*args, **kwargs)

        context.close = closing
        _open_contexts.append(context)
        return context

    browser.new_context = opened


def _page_texts(context: object) -> list[tuple[str, str]]:
    out = []
    for page in list(getattr(context, "pages", [])):
        try:
            SCREENSHOTS.mkdir(exist_ok=True)
            shot = SCREENSHOTS / f"failed-{len(_failed_pages) + len(out)}.png"
            page.screenshot(path=str(shot), timeout=5_000)
            text = page.evaluate("() => (document.querySelector('[data-testid=stApp]') ?? document.body).innerText")
            out.append((f"{page.url} at the failure (screenshot {shot.name})", str(text)[:4000]))
        except Exception as err:  # noqa: BLE001 - a page already gone: say so, never hide the test's own failure
            out.append((f"{page.url} at the failure", f"(could not be read: {err})"))
    return out


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[pytest.TestReport]:
    report = yield
    if report.when == "call" and report.failed:
        for context in list(_open_contexts):  # still open (a fixture's): read them now
            _failed_pages.extend(_page_texts(context))
        for heading, text in _failed_pages:
            report.sections.append((f"browser page {heading}", text))
    if report.when == "call":
        _failed_pages.clear()
    return report


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
