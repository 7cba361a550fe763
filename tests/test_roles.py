"""Roles (gan_core.runs.roles), enforced by RunManager: ownership, the student quota, the queue's bound, delete, and the
presenter key's check. A manager used without an actor (the CLI, the other tests, a keyless server) may do everything."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gan_core.config import ConfigError
from gan_core.runs.folder import RunStore
from gan_core.runs.manager import RunManager
from gan_core.runs.roles import (
    LOCAL,
    Actor,
    Guess,
    KeyGuard,
    RunRefused,
    max_queued_limit,
    owner_token,
    session_runs_limit,
)
from gan_core.runs.status import Status, StepKind
from tests.tiny import SLOW, STUDENT_SLOW, TINY

ALICE, BOB = Actor("alice", presenter=False), Actor("bob", presenter=False)
TEACHER = Actor("teacher", presenter=True)


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[RunManager]:
    m = RunManager(tmp_path / "runs", max_runs=1, processes=False, session_runs=1, max_queued=1)
    yield m
    m.shutdown()


def test_a_student_controls_only_its_own_runs(manager):
    mine = manager.start(STUDENT_SLOW, "mine", actor=ALICE)
    manager.wait(mine, lambda s: s.step >= 3)
    assert manager.owner(mine) == owner_token("alice") != "alice"  # an opaque token, never the session id
    assert manager.may_control(ALICE, mine) and not manager.may_control(BOB, mine) and manager.may_control(TEACHER, mine)
    for control in (lambda: manager.pause(mine, actor=BOB), lambda: manager.stop(mine, actor=BOB),
                    lambda: manager.resume(mine, actor=BOB), lambda: manager.step(mine, StepKind.D, actor=BOB),
                    lambda: manager.delete(mine, actor=BOB)):
        with pytest.raises(RunRefused, match=f"only the presenter or the session that started {mine} can"):
            control()
    assert manager.status(mine) is Status.RUNNING  # nothing changed
    manager.pause(mine, actor=ALICE)
    manager.wait(mine, lambda s: s.status is Status.PAUSED)
    manager.stop(mine, actor=TEACHER)  # the presenter controls every run
    assert manager.wait(mine).status is Status.STOPPED


def test_the_quota_counts_a_sessions_active_runs(manager):
    first = manager.start(STUDENT_SLOW, "first", actor=ALICE)
    with pytest.raises(RunRefused, match=r"already has 1 active run \(the limit is 1, GAN_SESSION_RUNS\)"):
        manager.start(TINY, "second", actor=ALICE)
    other = manager.start(TINY, "bobs", actor=BOB)  # a quota per session
    manager.stop(first, actor=ALICE)
    manager.wait(first)
    manager.wait(other)
    again = manager.start(STUDENT_SLOW, "again", actor=ALICE)  # its run ended: it may start another
    with pytest.raises(RunRefused, match="GAN_SESSION_RUNS"):
        manager.resume(first, actor=ALICE)  # reopening a run counts too
    manager.stop(again, actor=ALICE)
    manager.wait(again)
    manager.resume(first, actor=ALICE)
    manager.stop(first)


def test_a_comparison_starts_whole_or_not_at_all(manager):
    before = set(manager.ids())
    with pytest.raises(RunRefused, match="this needs 2 runs at once; a student may have 1 active run"):
        manager.start_many([(TINY, "a"), (TINY, "b")], actor=ALICE)
    assert set(manager.ids()) == before and not any(p.is_dir() for p in manager.runs_dir.iterdir())  # no run folder
    ids = manager.start_many([(TINY, "a"), (TINY, "b")], actor=TEACHER)
    # the presenter's runs are the presenter's, whichever session pressed the button
    assert [i.split("-")[0] for i in ids] == ["a", "b"] and all(manager.owner(i) is None for i in ids)


def test_watch_only(tmp_path):
    m = RunManager(tmp_path / "runs", max_runs=1, processes=False, session_runs=0)
    try:
        with pytest.raises(RunRefused, match="watch only .GAN_SESSION_RUNS=0"):
            m.start(TINY, actor=ALICE)
        m.start(TINY, actor=TEACHER)
    finally:
        m.shutdown()


def test_the_queue_is_bounded_for_students(manager):
    running = manager.start(SLOW, "busy", actor=TEACHER)
    manager.wait(running, lambda s: s.status is Status.RUNNING)
    waiting = manager.start(TINY, "waits", actor=ALICE)
    assert manager.snapshot(waiting).queue_position == 1
    with pytest.raises(RunRefused, match=r"the queue is full: 1 run waiting \(the limit is 1, GAN_MAX_QUEUED\)"):
        manager.start(TINY, "refused", actor=BOB)
    assert manager.start(TINY, "teacher", actor=TEACHER)  # the presenter is never refused
    manager.stop(running)


def test_delete(manager):
    mine = manager.start(STUDENT_SLOW, "mine", actor=ALICE)
    with pytest.raises(ConfigError, match="stop it first"):
        manager.delete(mine, actor=ALICE)
    manager.stop(mine, actor=ALICE)
    manager.wait(mine)
    folder = manager.runs_dir / mine
    assert folder.is_dir()
    manager.delete(mine, actor=ALICE)  # its own, stopped
    assert mine not in manager and mine not in manager.ids() and not folder.exists()
    assert [p for p in manager.runs_dir.iterdir() if p.is_dir()] == []  # no run folder left
    theirs = manager.start(TINY, "theirs", actor=BOB)
    manager.wait(theirs)
    with pytest.raises(RunRefused):
        manager.delete(theirs, actor=ALICE)
    manager.delete(theirs, actor=TEACHER)
    with pytest.raises(ConfigError, match="no run named"):
        manager.resume(theirs)


def test_ownership_survives_a_restart_and_old_runs_are_the_presenters(tmp_path):
    runs = tmp_path / "runs"
    m = RunManager(runs, max_runs=1, processes=False)
    owned = m.start(TINY, "owned", actor=ALICE)
    old = m.start(TINY, "old")  # by the server itself (LOCAL): no owner, like a folder from before roles or the CLI
    m.wait(owned)
    m.wait(old)
    m.shutdown()
    assert RunStore(runs / owned).read_status()["owner"] == owner_token("alice")
    assert "alice" not in (runs / owned / "status.json").read_text()  # the session id never reaches the disk
    m2 = RunManager(runs, max_runs=1, processes=False)
    try:
        assert m2.owner(owned) == owner_token("alice") and m2.owner(old) is None
        assert m2.may_control(ALICE, owned) and not m2.may_control(ALICE, old) and m2.may_control(TEACHER, old)
    finally:
        m2.shutdown()


def test_without_an_actor_everything_is_allowed(tmp_path):
    m = RunManager(tmp_path / "runs", max_runs=1, processes=False, session_runs=0, max_queued=0)
    try:
        ids = [m.start(SLOW, f"r{i}") for i in range(3)]  # LOCAL: no quota, no queue bound
        assert LOCAL.presenter and all(m.may_control(LOCAL, i) for i in ids)
        for i in ids:
            m.stop(i)
    finally:
        m.shutdown()


def test_limits_from_the_environment(monkeypatch):
    monkeypatch.delenv("GAN_SESSION_RUNS", raising=False)
    monkeypatch.delenv("GAN_MAX_QUEUED", raising=False)
    assert session_runs_limit() == 1 and max_queued_limit() == 8
    monkeypatch.setenv("GAN_SESSION_RUNS", "0")
    monkeypatch.setenv("GAN_MAX_QUEUED", "3")
    assert session_runs_limit() == 0 and max_queued_limit() == 3
    for bad in ("-1", "two"):
        monkeypatch.setenv("GAN_SESSION_RUNS", bad)
        with pytest.raises(ValueError, match="GAN_SESSION_RUNS must be a whole number"):
            session_runs_limit()


def test_the_key_guard_compares_and_slows_wrong_guesses():
    slept: list[float] = []
    guard = KeyGuard("s3cret", delay_s=1.0, cap_s=5.0, sleep=slept.append)
    assert guard.check("s3cret") is Guess.RIGHT and slept == [0.0]
    slept.clear()
    assert guard.check("s3cre", earlier_failures=2) is Guess.WRONG
    assert slept == [2.0, 1.0]  # before the comparison (this session's count), and after it (server-wide)
    slept.clear()
    assert guard.check("", earlier_failures=50) is Guess.WRONG and slept == [5.0, 1.0]  # capped
    assert guard.check("s3cret\udcff") is Guess.WRONG  # any string, even one that cannot be encoded as it is


def test_thirty_guessers_neither_delay_the_right_key_nor_learn_anything_from_a_refusal():
    """Thirty sessions at one address guess at once: two are admitted (and held, here, until released), the rest are
    BUSY at once without a comparison (the right key too, from that address); the presenter's browser at its own
    address is compared and accepted while the wrong guesses still wait."""
    release = threading.Event()
    guard = KeyGuard("s3cret", waiting=8, per_address=2, sleep=lambda s: release.wait(10) if s else None)
    with ThreadPoolExecutor(30) as pool:
        answers = [pool.submit(guard.check, f"guess {n}", 0, "10.0.0.9") for n in range(30)]
        deadline = time.monotonic() + 10
        while sum(a.done() for a in answers) < 28:  # all but the two admitted are answered at once
            assert time.monotonic() < deadline, [a.done() for a in answers]
            time.sleep(0.01)
        assert guard.check("s3cret", 0, "10.0.0.9") is Guess.BUSY  # the guessers' address is full: not compared
        assert guard.check("s3cret", 0, "10.0.0.2") is Guess.RIGHT  # the presenter's: at once, past the waiting two
        assert not all(a.done() for a in answers)
        release.set()
        results = [a.result() for a in answers]
    assert results.count(Guess.WRONG) == 2 and results.count(Guess.BUSY) == 28


def test_the_key_guard_bounds_the_guesses_waiting_server_wide():
    release = threading.Event()
    guard = KeyGuard("s3cret", waiting=3, per_address=2, sleep=lambda s: release.wait(10) if s else None)
    with ThreadPoolExecutor(4) as pool:
        held = [pool.submit(guard.check, "no", 0, f"10.0.0.{n}") for n in range(3)]  # three addresses, one each
        deadline = time.monotonic() + 10
        while sum(guard._by_address.values()) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert guard.check("s3cret", 0, "10.0.0.7") is Guess.BUSY  # three wait: not even the right key is compared
        release.set()
        assert [h.result() for h in held] == [Guess.WRONG] * 3
    assert guard.check("s3cret", 0, "10.0.0.7") is Guess.RIGHT and guard._by_address == {}


def test_behind_the_halls_balancer_a_client_is_the_address_haproxy_forwarded():
    from ui.roles import forwarded_client

    assert forwarded_client("127.0.0.1", ["10.0.0.7"]) == "10.0.0.7"  # through HAProxy on this machine
    assert forwarded_client("127.0.0.1", ["1.2.3.4, 10.0.0.7"]) == "10.0.0.7"  # a forged first entry is not believed
    assert forwarded_client("127.0.0.1", ["6.6.6.6", "10.0.0.8"]) == "10.0.0.8"
    assert forwarded_client("10.0.0.9", ["6.6.6.6"]) == "10.0.0.9"  # not from the balancer: the header means nothing
    assert forwarded_client("127.0.0.1", []) == "127.0.0.1"  # this machine itself
    assert forwarded_client(None, ["6.6.6.6"]) is None


def test_wrong_key_guesses_are_paced_across_the_rooms_app_processes(tmp_path):
    """Two app processes (two stores on one room's file, as two processes open it) each answer wrong guesses: the room
    answers one a second between them, not one a second each."""
    from gan_core.classroom.pace import RoomPace
    from gan_core.classroom.store import open_store

    url = f"sqlite:///{tmp_path / 'classroom.db'}"
    now = [1000.0]
    slept: list[float] = []
    guards = [KeyGuard("s3cret", pace=RoomPace(open_store(url), clock=lambda: now[0], sleep=slept.append),
                       sleep=lambda s: None) for _ in range(2)]
    for n in range(4):  # four wrong guesses at the same moment, alternating between the processes
        assert guards[n % 2].check(f"guess {n}") is Guess.WRONG
    assert slept == [1.0, 2.0, 3.0, 4.0]  # each answered a second after the room's previous one
    now[0] += 10  # the room has been quiet: the next wrong guess waits only its own second
    assert guards[0].check("again") is Guess.WRONG and slept[-1] == 1.0
