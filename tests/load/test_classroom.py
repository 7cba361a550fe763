"""A small classroom, fast enough for CI: five sessions watch one live run for 15 s over Streamlit's own protocol.

The full measurement (30 sessions, 5 minutes, speed and memory targets) is `python -m benchmarks.classroom`; this test
asserts only what must hold on any machine: no session sees an exception, and every chart keeps getting new data.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("websockets.asyncio.client", reason="websockets ≥ 13 (a Streamlit dependency) drives the sessions")

from benchmarks import classroom  # after the skip: it imports websockets

SESSIONS, SECONDS = 5, 15.0


@pytest.mark.timeout(180)
def test_a_small_classroom_watches_a_run_without_errors_and_every_chart_keeps_moving(tmp_path: Path) -> None:
    async def lesson(url: str) -> tuple[str, classroom.Watched]:
        run_id = await classroom.start_run(url)
        await classroom.wait_training(url, run_id)  # before it trains, a chart has nothing new to show
        watched = await classroom.watch(url, run_id, SESSIONS, SECONDS, ramp=2.0)
        await classroom.close_all(watched.sessions)
        return run_id, watched

    with classroom.local_server(tmp_path / "runs", tmp_path / "server.log") as (url, _):
        # a fresh thread for a fresh event loop: Playwright's sync API (the browser tests) leaves one running here
        with ThreadPoolExecutor(1) as pool:
            run_id, watched = pool.submit(asyncio.run, lesson(url)).result()

    errors = [f"session {i}: {e}" for i, s in enumerate(watched.sessions) for e in s.errors]
    assert not errors, errors[:5]
    for s in watched.sessions:
        assert f"Run {run_id}" in s.headings  # the ?run= link opened that run's panel
        # the loss and D(x) charts and the samples (the comparison follows nothing until runs are picked)
        assert {"image grid", "chart of D loss, G loss"} <= set(s.chart_updates) and len(s.chart_updates) >= 3, \
            list(s.chart_updates)
        assert s.steps[-1][1] > s.steps[0][1]  # the progress bar moved
    gaps = watched.max_gaps()
    assert max(gaps)[0] <= classroom.MAX_GAP_S, max(gaps)
