"""Who gets a worker: a paused run gives its worker back to a waiting run and takes the next free one when resumed or
stepped; a paused queued run leaves the queue; runs queued when the server stopped are queued again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gan_core.runs import run_queue
from gan_core.runs.folder import RunStore
from gan_core.runs.manager import RunManager
from gan_core.runs.roles import Actor, RunRefused
from gan_core.runs.status import Status, StepKind
from tests.tiny import SLOW, STUDENT_SLOW, TINY


@pytest.fixture
def manager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunManager]:
    monkeypatch.setattr(run_queue, "RELEASE_AFTER_S", 0.5)  # the classroom's 10 s, shortened for the test
    m = RunManager(tmp_path / "runs", max_runs=1, processes=False)
    yield m
    m.shutdown()


def _steps(m: RunManager, run_id: str) -> list[int]:
    return [r.step for r in RunStore(m.runs_dir / run_id).read_metrics()]


@pytest.mark.slow
def test_a_paused_run_gives_its_worker_to_a_waiting_run_and_continues_where_it_was(manager):
    paused = manager.start(SLOW.replace(steps=400), "paused")
    manager.wait(paused, lambda s: s.step >= 30)
    manager.pause(paused)
    at = manager.wait(paused, lambda s: s.status is Status.PAUSED).step
    waiting = manager.start(TINY, "waiting")  # one worker: before, it waited until someone resumed the paused run
    assert manager.wait(waiting, timeout=60).status is Status.FINISHED
    parked = manager.snapshot(paused)
    assert parked.status is Status.PAUSED and parked.step == at and "worker went to a waiting run" in parked.message
    assert RunStore(parked.path).read_status()["status"] == "paused"

    manager.resume(paused)  # the worker is free again: it takes it, from the checkpoint written when it left
    done = manager.wait(paused, timeout=90)
    assert done.status is Status.FINISHED and _steps(manager, paused) == list(range(1, 401))  # no step lost or doubled


def test_a_step_of_a_run_without_a_worker_queues_it_and_takes_the_step(manager):
    paused = manager.start(SLOW, "paused")
    manager.wait(paused, lambda s: s.step >= 10)
    manager.pause(paused)
    at = manager.wait(paused, lambda s: s.status is Status.PAUSED).step
    other = manager.start(SLOW, "other")
    manager.wait(other, lambda s: s.status is Status.RUNNING and s.step >= 3, timeout=60)
    manager.step(paused, StepKind.G)  # no worker free: it waits in the queue, paused, with the step asked
    assert manager.snapshot(paused).status is Status.QUEUED
    manager.stop(other)
    stepped = manager.wait(paused, lambda s: s.step == at + 1, timeout=60)
    assert stepped.status is Status.PAUSED  # it took the one step and stays paused
    manager.stop(paused)
    assert manager.wait(paused).status is Status.STOPPED


def test_pausing_a_queued_run_takes_it_out_of_the_queue(manager):
    running = manager.start(SLOW, "running")
    queued = manager.start(TINY, "queued")
    manager.pause(queued)
    assert manager.snapshot(queued).status is Status.PAUSED and manager.snapshot(queued).queue_position is None
    manager.stop(running)
    manager.wait(running)
    manager.resume(queued)
    assert manager.wait(queued, timeout=60).status is Status.FINISHED


def test_runs_queued_when_the_server_stopped_are_queued_again_with_their_owner(tmp_path):
    student = Actor("a-student", presenter=False)
    m = RunManager(tmp_path / "runs", max_runs=1, processes=False, session_runs=2)
    try:
        first = m.start(SLOW, "first")
        m.wait(first, lambda s: s.step >= 5)
        later = m.start(TINY, "later", actor=student)
        assert m.snapshot(later).status is Status.QUEUED
    finally:
        m.shutdown()  # "first" is stopped with a checkpoint; "later" never had a worker
    again = RunManager(tmp_path / "runs", max_runs=1, processes=False)
    try:
        assert again.owner(later) == student.owner
        assert again.wait(later, timeout=60).status is Status.FINISHED
        assert again.snapshot(first).status is Status.STOPPED
    finally:
        again.shutdown()


STUDENT = Actor("a-students-browser", presenter=False)  # every tab of one browser is this one actor
TEACHER = Actor("the-teachers-browser", presenter=True)


@pytest.mark.slow
def test_the_presenters_runs_wait_ahead_of_students_and_a_student_is_passed_never_dropped(tmp_path):
    m = RunManager(tmp_path / "runs", max_runs=1, processes=False, session_runs=2)
    other = Actor("another-browser", presenter=False)
    try:
        busy = m.start(SLOW, "busy")  # the presenter's own long run holds the one worker
        m.wait(busy, lambda s: s.status is Status.RUNNING)
        students = [m.start(TINY, "first", actor=STUDENT), m.start(TINY, "second", actor=other)]
        lesson = m.start_many([(TINY, "with"), (TINY, "without")], actor=TEACHER)
        assert [m.snapshot(r).queue_position for r in lesson + students] == [1, 2, 3, 4]
        m.stop(busy)
        for run_id in lesson + students:
            assert m.wait(run_id, timeout=60).status is Status.FINISHED
        ended = {r: RunStore(m.runs_dir / r).read_status() for r in lesson + students}
        assert all(s["status"] == "finished" for s in ended.values())
    finally:
        m.shutdown()


@pytest.mark.slow
def test_a_students_running_run_gives_its_worker_to_the_lesson_and_goes_on_from_its_checkpoint(tmp_path):
    """One browser with twelve tabs: one active run (its quota is per browser); the presenter's comparison does not
    wait for it: the student's run checkpoints, gives its worker, and trains on from that step once the lesson's end."""
    m = RunManager(tmp_path / "runs", max_runs=1, processes=False, session_runs=1)
    try:
        theirs = m.start(SLOW.replace(steps=2_000), "theirs", actor=STUDENT)
        m.wait(theirs, lambda s: s.step >= 30)
        for _ in range(11):  # the other tabs
            with pytest.raises(RunRefused, match="already has 1 active run"):
                m.start(STUDENT_SLOW, "more", actor=STUDENT)
        lesson = m.start_many([(TINY, "with"), (TINY, "without")], actor=TEACHER)
        for run_id in lesson:
            assert m.wait(run_id, timeout=60).status is Status.FINISHED
        gave = RunStore(m.runs_dir / theirs).load_checkpoint()["step"]
        assert gave >= 30
        again = m.wait(theirs, lambda s: s.status is Status.RUNNING and s.step > gave, timeout=60)
        assert again.step > gave and min(_steps(m, theirs)[-5:]) > gave - 20  # on from its checkpoint, not from 0
        m.stop(theirs, actor=STUDENT)
    finally:
        m.shutdown()


def test_a_students_steps_count_not_only_its_runs(tmp_path):
    m = RunManager(tmp_path / "runs", max_runs=1, processes=False, session_runs=8, session_steps=20_000)
    try:
        with pytest.raises(RunRefused, match=r"needs 100,000 steps of training, and a student may have 20,000 active"):
            m.start(TINY.replace(steps=100_000), "one-long-cell", actor=STUDENT)
        assert m.ids() == []
        m.start(TINY.replace(steps=15_000), "fits", actor=STUDENT)
        with pytest.raises(RunRefused, match=r"GAN_SESSION_STEPS; 15,000 already"):
            m.start(TINY.replace(steps=6_000), "over", actor=STUDENT)
        m.start(TINY.replace(steps=100_000), "the-presenters")  # the presenter has no such limit
    finally:
        m.shutdown()
