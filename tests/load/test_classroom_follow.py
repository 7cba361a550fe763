"""A small classroom follows its presenter, fast enough for CI: four students over Streamlit's own protocol, with the
follower's polling fragment ticking as a browser ticks it, through the four slides of benchmarks.classroom_follow.

The full measurement (30 students, the median and p95 seconds to follow) is `python -m benchmarks.classroom_follow`;
this test asserts only what must hold on any machine: every student reaches every slide (its page and its run), and
no session sees an error.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("websockets.asyncio.client", reason="websockets ≥ 13 (a Streamlit dependency) drives the sessions")

from benchmarks import classroom_follow  # after the skip: it imports websockets

STUDENTS = 4


@pytest.mark.timeout(300)
def test_a_small_classroom_follows_the_presenter_through_four_slides(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    classroom_follow.train_runs(runs, steps=20)
    with classroom_follow.local_server(runs, tmp_path / "server.log",
                                       {"GAN_PRESENTER_KEY": classroom_follow.KEY}) as (url, pid):
        # a fresh thread for a fresh event loop: Playwright's sync API (the browser tests) leaves one running here
        with ThreadPoolExecutor(1) as pool:
            report = pool.submit(asyncio.run, classroom_follow.follow_lesson(
                url, pid, STUDENTS, settle_s=1.0, ramp_s=1.0, log=lambda line: None)).result()
    assert not report.errors, report.errors[:5]
    assert report.missed == 0
    assert len(report.latencies) == STUDENTS * len(classroom_follow.SLIDES)
