"""A small classroom follows its presenter, fast enough for CI: four students over Streamlit's own protocol, with the
follower's polling fragment ticking as a browser ticks it, through the four slides of benchmarks.classroom_follow; then
students on a second app process of the same room follow a presenter on the first.

The full measurement (30 students, the median and p95 seconds to follow) is `python -m benchmarks.classroom_follow`;
these tests assert only what must hold on any machine: every student reaches every slide (its page and its run), and
no session sees an error.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("websockets.asyncio.client", reason="websockets ≥ 13 (a Streamlit dependency) drives the sessions")

from benchmarks import classroom_follow, vote_storm  # after the skip: they import websockets

STUDENTS = 4
# the second test's slides, a page and a run each: no page that trains a classifier on its first draw (10 s a process)
SLIDES = (("training", "lesson-a"), ("batch_norm", "lesson-b"), ("training", "lesson-b"))


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, int, str]]:
    """Two `streamlit run` processes on one runs folder (the presenter's two runs trained in it): one room."""
    runs = tmp_path_factory.mktemp("follow") / "runs"
    classroom_follow.train_runs(runs, steps=20)
    logs = tmp_path_factory.mktemp("follow_logs")
    env = {"GAN_PRESENTER_KEY": classroom_follow.KEY}
    with classroom_follow.local_server(runs, logs / "first.log", env) as (first, pid), \
            classroom_follow.local_server(runs, logs / "second.log", env) as (second, _):
        yield runs, first, pid, second


def _lesson(url: str, pid: int, **options: object) -> classroom_follow.FollowReport:
    # a fresh thread for a fresh event loop: Playwright's sync API (the browser tests) leaves one running here
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, classroom_follow.follow_lesson(
            url, pid, STUDENTS, settle_s=1.0, ramp_s=1.0, log=lambda line: None, **options)).result()


@pytest.mark.timeout(300)
def test_a_small_classroom_follows_the_presenter_through_four_slides(room) -> None:
    _, first, pid, _ = room
    report = _lesson(first, pid)
    assert not report.errors, report.errors[:5]
    assert report.missed == 0
    assert len(report.latencies) == STUDENTS * len(classroom_follow.SLIDES)


@pytest.mark.timeout(300)
def test_students_on_a_second_app_process_follow_the_presenter_on_the_first(room) -> None:
    """The stage is a row of the room's classroom store (gan_core.classroom), so students served by the other process
    follow the presenter through every slide, to pages no session of their process had opened."""
    runs, first, pid, second = room
    report = _lesson(first, pid, student_urls=[second, first], slides=SLIDES)
    assert not report.errors, report.errors[:5]
    assert report.missed == 0  # half the students are on the second process: none missed a slide
    assert len(report.latencies) == STUDENTS * len(SLIDES)
    assert (runs / "classroom.db").is_file()


@pytest.mark.timeout(300)
def test_answers_through_both_app_processes_are_all_counted(room) -> None:
    """A vote storm in short (benchmarks.vote_storm at 120): students on both processes answer at once, and the
    presenter's tally counts every answer, because each is a row of the room's store."""
    _, first, _, second = room
    with ThreadPoolExecutor(1) as pool:
        seen = pool.submit(asyncio.run, vote_storm.storm([first, second], 8, key=classroom_follow.KEY,
                                                         log=lambda line: None)).result()
    assert not seen["errors"], seen["errors"][:5]
    assert seen["answers"] == 8, seen  # four of each choice, from either process
    assert re.search(r"(?<!no )batch norm 4\b", seen["tally"]) and "no batch norm 4" in seen["tally"], seen
