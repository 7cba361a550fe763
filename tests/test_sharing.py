"""Several app processes on one runs folder, one of which trains (gan_core.runs.sharing): the others send it their
starts and controls and read the runs from the folder; when it is killed, one of them takes over within seconds and
the runs go on from their checkpoints, none trained twice."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from gan_core.runs.folder import RunStore
from gan_core.runs.manager import RunManager
from gan_core.runs.roles import Actor, RunRefused
from gan_core.runs.status import Status, StepKind
from support.trainer import trainer_process
from tests.tiny import SLOW, STUDENT_SLOW, TINY


def _steps(path: Path) -> list[int]:
    return [r.step for r in RunStore(path).read_metrics()]


def test_a_second_manager_sends_its_controls_to_the_one_that_trains_and_reads_the_runs(tmp_path, one_thread):
    runs = tmp_path / "runs"
    owner = RunManager(runs, max_runs=1, processes=False, session_runs=1)
    other = RunManager(runs, max_runs=1, processes=False)
    try:
        assert owner.trains and not other.trains
        run_id = other.start(TINY, "sent")
        assert run_id in other and run_id in owner  # listed at once where it was asked, trained where the lease is
        done = other.wait(run_id, timeout=60)
        assert done.status is Status.FINISHED and list(done.metrics["step"]) == list(range(1, 61))
        assert done.samples[-1].step == 60 and done.probes[-1].step == 60
        assert _steps(runs / run_id) == list(range(1, 61))  # trained once

        slow = other.start(SLOW, "slow")
        other.wait(slow, lambda s: s.status is Status.RUNNING and s.step >= 5, timeout=60)
        other.pause(slow)
        at = other.wait(slow, lambda s: s.status is Status.PAUSED, timeout=30).step
        other.step(slow, StepKind.FULL)
        # a slow-motion step's picture reaches the other process too (within a look or two of its metrics row)
        stepped = other.wait(slow, lambda s: s.step == at + 1 and s.samples[-1].step == at + 1, timeout=30)
        assert list(stepped.metrics["step"])[-1] == at + 1
        other.stop(slow)
        assert other.wait(slow, timeout=30).status is Status.STOPPED

        student = Actor(session="a student", presenter=False)
        with pytest.raises(RunRefused, match="only the presenter or the session that started"):
            other.delete(slow, actor=student)  # the rules travel with the order
        mine = other.start(STUDENT_SLOW, "mine", actor=student)
        with pytest.raises(RunRefused, match="already has 1 active run"):
            other.start(TINY, "second", actor=student)
        other.stop(mine, actor=student)
        other.wait(mine, timeout=30)
        other.delete(slow)
        assert slow not in other.ids() and slow not in owner.ids()
    finally:
        other.shutdown()
        owner.shutdown()




@pytest.mark.server
def test_kill_9_of_the_process_that_trains_hands_the_runs_to_another(tmp_path, one_thread):
    runs, every = tmp_path / "runs", 10
    config, waiting = TINY.replace(steps=600, checkpoint_every=every), TINY.replace(steps=40)
    follower = None
    with trainer_process(runs, config, waiting, tmp_path / "owner.log") as (trainer, started):
        try:
            ids = started["ids"]
            follower = RunManager(runs, max_runs=1, processes=False)
            assert not follower.trains
            assert follower.snapshot(ids[0]).status is Status.RUNNING
            assert follower.snapshot(ids[1]).status is Status.QUEUED

            os.kill(trainer.pid, signal.SIGKILL)
            killed = time.monotonic()
            while not follower.trains and time.monotonic() - killed < 10:
                time.sleep(0.1)
            assert follower.trains, "no process took the runs over within 10 s of the kill"

            for run_id, total in zip(ids, (600, 40), strict=True):
                done = follower.wait(run_id, timeout=120)
                assert done.status is Status.FINISHED and done.step == total, done.message
                assert _steps(runs / run_id) == list(range(1, total + 1))  # no step twice, none missing
                assert list(done.metrics["step"]) == list(range(1, total + 1))
        finally:
            if follower is not None:
                follower.shutdown()


def _terminate_lease_connection(admin: object) -> None:
    """What a blip does to the trainer's lease on PostgreSQL: the session holding the advisory lock ends."""
    from gan_core.classroom.lease import ADVISORY_KEY

    held = "FROM pg_locks WHERE locktype = 'advisory' AND objid = ? AND pid <> pg_backend_pid()"
    admin.run(f"SELECT pg_terminate_backend(pid) {held}", (ADVISORY_KEY,))
    deadline = time.monotonic() + 10
    while admin.rows(f"SELECT pid {held}", (ADVISORY_KEY,)):  # the session ends a moment after it is told to
        assert time.monotonic() < deadline, "the lease's session did not end"
        time.sleep(0.02)


@pytest.mark.server
def test_a_lease_lost_in_a_database_blip_is_taken_again_by_its_holder_not_by_another_process(postgres_url):
    """PostgreSQL's advisory lock goes with its connection. A blip that ends the holder's connection frees it; another
    process that asks within TAKEOVER_AFTER_S of the holder's last beat is refused, and the holder's next beat takes
    it again. A lock free for longer is taken by the other process, and the holder then hears it lost it."""
    from gan_core.classroom.lease import AdvisoryLease
    from gan_core.classroom.store import open_store

    admin = open_store(postgres_url)
    holder, other = AdvisoryLease(open_store(postgres_url)), AdvisoryLease(open_store(postgres_url))
    try:
        assert holder.try_acquire() and holder.holds() is True
        _terminate_lease_connection(admin)
        assert not other.try_acquire()  # free, but beaten a moment ago: the holder's
        assert holder.holds() is True  # its beat found the connection gone, and took the lock again
        assert not other.try_acquire()

        _terminate_lease_connection(admin)
        admin.run("UPDATE trainer_beat SET seen = seen - 60")  # as after a minute-long outage
        assert other.try_acquire()
        assert holder.holds() is False  # another process trains now: the holder must step down

        other.release()  # a clean release: the next asker need not wait out the beat
        assert holder.try_acquire()
    finally:
        holder.release()
        other.release()
        admin.close()


@pytest.mark.server
def test_a_trainer_that_lost_its_lease_steps_down_and_the_new_one_carries_the_run_on_once(tmp_path, monkeypatch,
                                                                                          postgres_url, one_thread):
    """Two managers on one runs folder, the room on PostgreSQL: the trainer's lease is lost for longer than the beat
    allows (its session ended, its last beat old). The other process takes the lease and the runs; the first stops
    training within a beat and reads the runs from the folder; the run finishes with every step recorded once."""
    from gan_core.classroom.lease import STEP_DOWN_S
    from gan_core.classroom.store import URL_ENV
    from support.postgres import fresh_database, lease_taken_away

    monkeypatch.setenv(URL_ENV, fresh_database(postgres_url))
    runs, total = tmp_path / "runs", 600
    first = RunManager(runs, max_runs=1, processes=True)  # a worker process, as a server has: killed on stepping down
    second = RunManager(runs, max_runs=1, processes=False)
    try:
        assert first.trains and not second.trains
        run_id = first.start(TINY.replace(steps=total, checkpoint_every=10), "blip")
        first.wait(run_id, lambda s: s.step >= 30, timeout=60)
        with lease_taken_away(os.environ[URL_ENV]):  # someone else has the lock, the trainer's last beat is old
            lost = time.monotonic()
            while first.trains and time.monotonic() - lost < 10:
                time.sleep(0.05)
            assert not first.trains, "the trainer that lost its lease still trains"
            stepped_down_s = time.monotonic() - lost
        # the lock is free, its last beat old: the second process takes it
        while not second.trains and time.monotonic() - lost < 20:
            time.sleep(0.05)
        assert second.trains, "no process took the runs over"
        assert stepped_down_s <= STEP_DOWN_S, stepped_down_s
        done = second.wait(run_id, timeout=120)
        assert done.status is Status.FINISHED and done.step == total, done.message
        assert _steps(runs / run_id) == list(range(1, total + 1))  # no step twice, none missing
        assert first.snapshot(run_id).status is Status.FINISHED  # the first reads it from the folder now
    finally:
        first.shutdown()
        second.shutdown()
