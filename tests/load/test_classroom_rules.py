"""The classroom's rules over Streamlit's own websocket protocol, as a browser (or a forged client) speaks it: students
pressing Start stay within their quota and the queue's bound, each refusal saying why; a student's forged click on a
control of the presenter's run (drawn disabled for it) changes nothing: Streamlit discards a disabled widget's value on
the server, and the manager would refuse the action anyway (tests/test_presenter_page.py forges the click past Streamlit). The
full measurement is `python -m benchmarks.classroom_starts`."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("websockets.asyncio.client", reason="websockets ≥ 13 (a Streamlit dependency) drives the sessions")

from benchmarks import classroom_starts  # after the skip: it imports websockets
from benchmarks.browser_session import Session
from benchmarks.classroom import PAGE, wait_training
from gan_core.runs.folder import RunStore
from gan_core.runs.roles import KEY_ENV
from support.server import local_server
from tests.tiny import tiny

MAX_QUEUED = 2


def _status(runs: Path, run_id: str) -> str:
    return json.loads((runs / run_id / "status.json").read_text())["status"]


@pytest.mark.timeout(240)
def test_students_within_quota_and_queue_and_a_forged_click_changes_nothing(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    lesson = classroom_starts.LESSON
    store = RunStore(runs / lesson).create(tiny("digits", steps=10_000_000))
    store.write_status({"status": "queued", "created": time.time(), "owner": None})  # the presenter's, queued again

    async def scenario(url: str) -> classroom_starts.Tally:
        opener = Session(url, "", fetch_media=False)
        await opener.open()
        await opener.wait_idle(90)
        await opener.close()
        await wait_training(url, lesson, min_step=20)
        tally = classroom_starts.Tally()
        for _ in range(4):  # one after another: the order of refusals is then known
            await classroom_starts.student(url, 2, tally)

        forger = Session(url, PAGE, query=urllib.parse.urlencode({"run": lesson}), fetch_media=False)
        await forger.open()
        try:
            await forger.wait_idle()
            await forger.click("Pause")  # disabled in its page; the message is sent anyway, as a forged client can
            await forger.click("Stop")
            assert not forger.errors, forger.errors
        finally:
            await forger.close()
        return tally

    env = {KEY_ENV: "a-test-key", "GAN_MAX_RUNS": "1", "GAN_MAX_QUEUED": str(MAX_QUEUED)}
    with local_server(runs, tmp_path / "server.log", env) as (url, _):
        with ThreadPoolExecutor(1) as pool:  # a fresh event loop (Playwright's sync API may hold this thread's)
            tally = pool.submit(asyncio.run, scenario(url)).result()
        steps_then = len(store.read_metrics())
        time.sleep(2.5)  # metrics reach the disk every second
        assert _status(runs, lesson) == "running" and len(store.read_metrics()) > steps_then  # the forgery did nothing

    assert not tally.errors and not tally.unexplained, (tally.errors, tally.unexplained)
    assert tally.started == MAX_QUEUED  # the one worker is the presenter's: two students' runs queue, then it is full
    reasons = " | ".join(tally.refused)
    assert "the queue is full" in reasons and "this browser already has" in reasons, tally.refused
    assert sum(tally.refused.values()) == 8 - MAX_QUEUED
