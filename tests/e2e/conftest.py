"""A real server and a real browser: `streamlit run dashboard.py` on a free port, driven by Playwright over Chromium.

Screenshots land in tests/e2e/screenshots/ (git-ignored) so a person can look at every page after a run.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(__file__).parent / "screenshots"
FAILED_RUN = "broken-run"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, chromium_path: str) -> Iterator[str]:
    """The app's URL; the server runs with its own empty runs folder for the whole session."""
    port = _free_port()
    runs = tmp_path_factory.mktemp("e2e_runs")
    broken = runs / FAILED_RUN  # a damaged run folder: the app must list it as failed, and say why, on every page
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    log = tmp_path_factory.mktemp("e2e_log") / "server.log"
    env = {**os.environ, "GAN_RUNS_DIR": str(runs), "GAN_MAX_RUNS": "2"}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "dashboard.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
            cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


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
