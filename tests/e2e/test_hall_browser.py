"""The lecture hall's launcher, end to end: `python -m gan_core serve --replicas 2` starts two app processes behind
HAProxy, a browser uses the dashboard through the balancer (its websocket included), the balancer keeps a browser on one
process and spreads new ones, and Ctrl-C stops every process it started."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from gan_core.runs.folder import RunStore
from tests.conftest import _missing
from tests.e2e.conftest import screenshot, wait_idle

REPO_ROOT = Path(__file__).resolve().parents[2]


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


@pytest.fixture(scope="module")
def hall(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen, int, list[int], list[str], Path]]:
    from gan_core import hall as launcher

    try:
        launcher.haproxy()
    except ValueError as err:
        _missing(str(err))
    port = launcher.free_port()
    runs = tmp_path_factory.mktemp("hall") / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "gan_core", "serve", "--replicas", "2", "--port", str(port),
                             "--address", "127.0.0.1", "--runs-dir", str(runs)], cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(line.strip() for line in proc.stdout), daemon=True)
    reader.start()  # a thread, as a terminal reads it: the launcher prints as it goes
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None and not any(line.startswith("lecture hall:")
                                                                          for line in lines):
        time.sleep(0.2)
    pids = [int(p) for line in lines for p in re.findall(r"pid (\d+)", line)]
    try:
        assert any(line.startswith("lecture hall:") for line in lines), "\n".join(lines)
        yield proc, port, pids, lines, runs
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        for pid in pids:
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)


def _served_by(port: int, cookie: str | None = None) -> str:
    """Which app process the balancer sent a request to: the cookie it sets (or the one we sent, which it keeps)."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/_stcore/health",
                                     headers={"Cookie": f"GANAPP={cookie}"} if cookie else {})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200
        set_cookie = " ".join(answer.headers.get_all("Set-Cookie") or [])
    found = re.search(r"GANAPP=(\w+)", set_cookie)
    return found.group(1) if found else cookie or ""


def test_the_launcher_starts_two_apps_behind_haproxy_and_a_browser_uses_them(hall, browser):
    proc, port, pids, lines, _ = hall
    assert len(pids) == 4, lines  # the presenter's app, two students' apps and the balancer, each with its pid
    assert all(not _gone(pid) for pid in pids)
    # new browsers are spread over the students' processes, never the presenter's; a browser keeps its process
    assert {_served_by(port) for _ in range(4)} == {"app1", "app2"}
    assert _served_by(port, "app2") == "app2"
    # /presenter sends the teacher's browser to a process of its own
    no_redirect = urllib.request.build_opener(type("Keep", (urllib.request.HTTPRedirectHandler,), {
        "redirect_request": lambda *args: None}))
    with pytest.raises(urllib.error.HTTPError) as redirect:
        no_redirect.open(f"http://127.0.0.1:{port}/presenter", timeout=10)
    assert redirect.value.code == 302 and "GANAPP=presenter" in redirect.value.headers.get("Set-Cookie", "")
    assert _served_by(port, "presenter") == "presenter"

    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    try:
        page.goto(f"http://127.0.0.1:{port}/")
        wait_idle(page, 90_000)  # the page ran: its websocket went through the balancer
        assert page.locator("[data-testid=stException]").count() == 0
        assert any(c["name"] == "GANAPP" for c in context.cookies())
        screenshot(page, "hall-home-1280x720")
    finally:
        context.close()


def test_a_browser_on_each_process_one_start_trains_once_and_both_see_it(hall, browser):
    """Two browsers, one on each app process (the balancer's cookie): the one on the process that does not train presses
    Train; the run trains once, in the other process, and both browsers watch its samples grow."""
    _, port, _, _, folder = hall
    url = f"http://127.0.0.1:{port}/"
    contexts, pages = [], []
    for app in ("app1", "app2"):  # app1's page opens first: its process builds the first run manager, and trains
        context = browser.new_context(viewport={"width": 1280, "height": 720})
        context.add_cookies([{"name": "GANAPP", "value": app, "url": url}])
        page = context.new_page()
        page.goto(url)
        wait_idle(page, 90_000)
        contexts.append(context)
        pages.append(page)
    trainer_page, other_page = pages
    try:
        other_page.get_by_role("button", name="Train the default GAN").click()
        other_page.wait_for_selector("[data-testid=stImage] img", timeout=30_000)
        first = other_page.locator("[data-testid=stImage] img").first.get_attribute("src")
        deadline, later = time.monotonic() + 45, first
        while later == first and time.monotonic() < deadline:  # read from the folder the other process writes
            time.sleep(0.5)
            later = other_page.locator("[data-testid=stImage] img").first.get_attribute("src")
        assert later != first, "the samples did not change in 45 s on the process that does not train"
        screenshot(other_page, "hall-second-process-training")
        trainer_page.reload()
        wait_idle(trainer_page, 60_000)
        sidebar = trainer_page.locator("[data-testid=stSidebar]")
        sidebar.get_by_text("running").first.wait_for(timeout=30_000)  # the same run, listed by the process training it
        for page in pages:
            assert page.locator("[data-testid=stException]").count() == 0
        other_page.locator("[data-testid=stSidebar]").get_by_role("button", name="Stop").click()
        other_page.locator("[data-testid=stSidebar] strong").filter(
            has_text=re.compile(r"^(stopped|finished)$")).first.wait_for(timeout=30_000)
    finally:
        for context in contexts:
            context.close()
    runs = [p for p in folder.iterdir() if p.is_dir() and (p / "config.json").is_file()]
    assert len(runs) == 1, runs  # one start, one run
    steps = [r.step for r in RunStore(runs[0]).read_metrics()]
    assert steps == list(range(1, len(steps) + 1)) and steps, steps[:5]  # trained once: no step twice


def test_ctrl_c_stops_every_process_the_launcher_started(hall):
    proc, _, pids, lines, _ = hall
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in its terminal sends
    assert proc.wait(60) == 0
    time.sleep(0.5)  # the reader thread takes the last lines
    assert lines[-1] == "lecture hall stopped", lines
    deadline = time.monotonic() + 10
    while not all(_gone(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert all(_gone(pid) for pid in pids), "a process outlived the hall"
