"""Ctrl-C in the terminal of `streamlit run`, or a service manager's SIGTERM, end to end: the signal reaches the server
and its worker processes alike (one process group). Every running run must end checkpointed at its last step, with no
traceback; nothing is removed for the disk budget once the server is stopping; a run that was still queued stays queued
on disk, and the next start queues it again."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("websockets.asyncio.client", reason="websockets ≥ 13 (a Streamlit dependency) opens the page")

from benchmarks.browser_session import Session  # after the skip: it imports websockets
from gan_core.runs.folder import RunStore
from gan_core.runs.manager import RunManager
from gan_core.runs.status import Status
from support.server import REPO_ROOT, free_port
from tests.tiny import SLOW, TINY

pytestmark = pytest.mark.server  # each test signals a real `streamlit run`


STUDENT = "a-student-sessions-token"  # an owner as stored: a student's run (the disk budget may remove it once ended)


def _queued(runs: Path, name: str, config: object) -> RunStore:
    """A student's run folder as the dashboard leaves one it has queued: status.json says "queued"."""
    store = RunStore(runs / name).create(config)
    store.write_status({"status": "queued", "message": "", "step": 0, "checkpoint_step": 0, "created": time.time(),
                        "owner": STUDENT})
    return store


def _wait(what: str, check: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


async def _open(url: str) -> None:
    session = Session(url, "", fetch_media=False)
    await session.open()
    await session.wait_idle(90)
    await session.close()


def _gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.timeout(240)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_stop_signal_checkpoints_every_running_run_and_keeps_queued_runs_queued(tmp_path: Path, signum: int) -> None:
    runs = tmp_path / "runs"
    long = SLOW.replace(checkpoint_every=50)
    first = _queued(runs, "first", long)
    later = _queued(runs, "later", TINY)  # one worker (GAN_MAX_RUNS=1): it waits behind "first"
    port = free_port()
    log = tmp_path / "server.log"
    # a disk budget the student's run is over once it has ended: stopped by the signal, it must stay all the same
    env = {**os.environ, "GAN_RUNS_DIR": str(runs), "GAN_OFFLINE": "1", "GAN_MAX_RUNS": "1", "GAN_DISK_BUDGET_MB": "1"}
    with log.open("w") as out:
        # its own session and process group, as a shell gives a foreground job: Ctrl-C signals the whole group
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "dashboard.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1"],
            cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False

        _wait("the server", healthy, 90)
        # the first page builds the run manager, which queues both runs again. In a fresh thread: Playwright's sync
        # API (the browser tests, in the same pytest process) leaves an event loop running in this one
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, _open(url)).result()
        _wait("two checkpoints of the first run", lambda: len(first.read_metrics()) >= 2 * long.checkpoint_every + 5,
              120)
        os.killpg(server.pid, signum)  # what the terminal does on Ctrl-C; what systemd sends the group on stop
        assert server.wait(60) is not None
        _wait("the workers to exit", lambda: _gone(server.pid), 30)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
    text = log.read_text()
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text[-3000:]
    assert "disk budget: removed" not in text, text[-3000:]
    steps = [r.step for r in first.read_metrics()]
    assert int(first.load_checkpoint()["step"]) == steps[-1]  # checkpointed at its last step: nothing to lose
    assert first.read_status()["status"] == Status.STOPPED.value
    assert later.read_status()["status"] == Status.QUEUED.value

    m = RunManager(runs, max_runs=1, processes=False)  # the next start
    try:
        assert m.owner("later") == STUDENT
        assert m.wait("later", timeout=60).status is Status.FINISHED
        assert m.snapshot("first").status is Status.STOPPED and m.snapshot("first").step == steps[-1]
    finally:
        m.shutdown()
    assert json.loads((runs / "later" / "status.json").read_text())["status"] == Status.FINISHED.value
