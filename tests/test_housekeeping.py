"""The runs folder's disk: the budget (oldest ended student runs first, never an active or the presenter's run),
snapshot thinning per run, leftovers of interrupted writes, and uploads that go with their runs."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from gan_core.config import ConfigError
from gan_core.runs import folder, housekeeping
from gan_core.runs.folder import RunStore
from gan_core.runs.housekeeping import RunDisk, over_budget
from gan_core.runs.manager import RunManager
from gan_core.runs.roles import Actor, RunRefused
from gan_core.runs.status import Status
from gan_core.runs.uploads import save_points_upload
from gan_core.train.records import SampleRecord
from tests.tiny import STUDENT_SLOW, TINY

STUDENT, OTHER = Actor("student-a", presenter=False), Actor("student-b", presenter=False)
# a browser session that typed the presenter key, and one on a server with no key (every session is the presenter)
PRESENTER, KEYLESS = Actor("teacher-session", presenter=True), Actor("laptop-session", presenter=True)


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[RunManager]:
    m = RunManager(tmp_path / "runs", max_runs=1, processes=False, session_runs=1)
    yield m
    m.shutdown()


def test_the_budget_picks_the_oldest_ended_student_runs_and_only_as_many_as_needed():
    runs = [RunDisk("presenter-old", None, False, 1.0, 500), RunDisk("student-running", "s", True, 2.0, 500),
            RunDisk("student-old", "s", False, 3.0, 300), RunDisk("student-mid", "t", False, 4.0, 300),
            RunDisk("student-new", "s", False, 5.0, 300)]
    assert over_budget(runs, 1900, 2000) == []
    assert [r.id for r in over_budget(runs, 2100, 2000)] == ["student-old"]
    assert [r.id for r in over_budget(runs, 2500, 2000)] == ["student-old", "student-mid"]
    # never the presenter's, never an active run: the budget may stay exceeded
    assert [r.id for r in over_budget(runs, 10_000, 10)] == ["student-old", "student-mid", "student-new"]


def test_the_budget_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(housekeeping.BUDGET_ENV, "250")
    assert housekeeping.budget_bytes() == 250_000_000
    monkeypatch.setenv(housekeeping.BUDGET_ENV, "0")
    assert housekeeping.budget_bytes() is None
    monkeypatch.delenv(housekeeping.BUDGET_ENV)
    assert housekeeping.budget_bytes() == housekeeping.DEFAULT_BUDGET_MB * 1_000_000
    for bad in ("lots", "-5", "1.5"):
        monkeypatch.setenv(housekeeping.BUDGET_ENV, bad)
        with pytest.raises(ConfigError, match=housekeeping.BUDGET_ENV):
            housekeeping.budget_bytes()


def test_past_the_budget_student_runs_go_oldest_first_and_the_rest_is_refused(manager, caplog):
    presenter = manager.start(TINY, "presenter", actor=PRESENTER)  # a presenter's browser session pressed Start
    manager.wait(presenter)
    old = manager.start(TINY, "old", actor=STUDENT)
    manager.wait(old)
    new = manager.start(TINY, "new", actor=OTHER)
    manager.wait(new)
    sizes = {i: housekeeping.folder_bytes(manager.runs_dir / i) for i in (presenter, old, new)}
    assert all(size > 0 for size in sizes.values())
    manager.disk_budget = sum(sizes.values()) - 1  # one byte over: only the oldest student run goes
    with caplog.at_level(logging.WARNING, logger="gan_core.runs.housekeeping"):
        manager.housekeeping()
    assert manager.ids() == [new, presenter] and not (manager.runs_dir / old).exists()
    assert any(old in r.getMessage() and "disk budget" in r.getMessage() for r in caplog.records)

    manager.disk_budget = 1  # nothing a student started is left to remove after `new`: the presenter's run stays
    manager.housekeeping()
    assert manager.ids() == [presenter]
    with pytest.raises(RunRefused, match="disk budget"):
        manager.start(TINY, "more", actor=STUDENT)
    manager.start(TINY, "presenter-again", actor=PRESENTER)  # the presenter may still start runs


def test_a_teacher_alone_on_a_laptop_keeps_every_run_past_the_budget(manager):
    """No presenter key: every browser session is the presenter, and the runs they start are the presenter's."""
    runs = [manager.start(TINY, f"lesson-{n}", actor=KEYLESS) for n in range(2)]
    runs += [manager.start(TINY, "cli")]  # and the server's own (the CLI's, a folder from before roles)
    for run_id in runs:
        manager.wait(run_id)
    manager.disk_budget = 1
    manager.housekeeping()
    assert sorted(manager.ids()) == sorted(runs) and all((manager.runs_dir / r).is_dir() for r in runs)
    assert all(manager.owner(r) is None for r in runs)


def test_an_active_student_run_is_never_removed_for_the_budget(manager):
    run_id = manager.start(STUDENT_SLOW, "busy", actor=STUDENT)
    manager.wait(run_id, lambda s: s.step >= 5)
    manager.disk_budget = 1
    manager.housekeeping()
    assert manager.status(run_id) is Status.RUNNING and (manager.runs_dir / run_id).is_dir()


def _record(step: int, n: int = 64) -> SampleRecord:
    return SampleRecord(step, np.random.default_rng(step).normal(size=(n, 2)).astype(np.float32), None)


def test_snapshots_on_disk_are_thinned_keeping_the_first_and_the_newest(tmp_path):
    store = RunStore(tmp_path / "run").create(TINY)
    for step in range(0, 3 * folder.MAX_SNAPSHOTS):
        store.save_samples(_record(step))
    steps = store.sample_steps()
    assert len(steps) <= folder.MAX_SNAPSHOTS
    assert steps[0] == 0 and steps[-1] == 3 * folder.MAX_SNAPSHOTS - 1
    assert len(set(np.diff(steps[:-1]))) == 1  # evenly spread over the whole run, as the curves are thinned


def test_large_snapshots_are_thinned_by_bytes_too(tmp_path, monkeypatch):
    store = RunStore(tmp_path / "run").create(TINY)
    store.save_samples(_record(0, 4096))
    size = (tmp_path / "run" / folder.SAMPLES_DIR / "step_00000000.npz").stat().st_size
    monkeypatch.setattr(folder, "MAX_SNAPSHOT_BYTES", 20 * size)
    for step in range(1, 100):
        store.save_samples(_record(step, 4096))
    assert len(store.sample_steps()) <= 20
    assert housekeeping.folder_bytes(tmp_path / "run" / folder.SAMPLES_DIR) <= 25 * size


def test_leftovers_of_interrupted_writes_are_removed_once_old(tmp_path):
    runs = tmp_path / "runs"
    store = RunStore(runs / "a-run").create(TINY)
    old_tmp = store.path / ".checkpoint.pt.k3j2.tmp"  # what atomic_write_bytes leaves when killed mid-write
    old_tmp.write_bytes(b"x" * 1000)
    (store.path / "samples").mkdir()
    old_sample = store.path / "samples" / ".step_00000010.npz.abc.tmp"
    old_sample.write_bytes(b"x")
    young = store.path / ".metrics.csv.new.tmp"  # maybe still being written
    young.write_bytes(b"x")
    top = runs / ".predictions.json.x7q.tmp"  # the room's shared files are rewritten in the top level
    top.write_bytes(b"{")
    young_top = runs / ".comparisons.json.a1.tmp"
    young_top.write_bytes(b"{")
    (runs / "predictions.json").write_text("{}")
    stale = time.time() - housekeeping.TEMP_AGE_S - 5
    for path in (old_tmp, old_sample, top, runs / "predictions.json"):
        os.utime(path, (stale, stale))
    trash = runs / f"{housekeeping.DELETING_PREFIX}gone-123"  # a delete cut short
    (trash / "samples").mkdir(parents=True)
    removed = housekeeping.remove_leftovers(runs)
    assert set(removed) == {old_tmp, old_sample, top, trash}
    assert young.exists() and young_top.exists() and (store.path / "config.json").exists()
    assert (runs / "predictions.json").exists()


def test_an_upload_goes_with_the_last_run_that_used_it(manager):
    csv = save_points_upload("points.csv", b"x,y\n" + b"".join(f"{i},{i % 7}\n".encode() for i in range(50)),
                             manager.runs_dir)
    config = TINY.replace(dataset="points", points_csv=str(csv))
    first, second = manager.start(config, "first"), manager.start(config, "second")
    manager.wait(first)
    manager.wait(second)
    manager.delete(first)
    assert csv.exists()  # the second run still reads it
    manager.delete(second)
    assert not csv.exists()


def test_unused_uploads_are_removed_once_old(tmp_path):
    runs = tmp_path / "runs"
    used = save_points_upload("used.csv", b"1,2\n3,4\n5,6\n", runs)
    unused = save_points_upload("unused.csv", b"1,1\n2,2\n3,3\n", runs)
    fresh = save_points_upload("fresh.csv", b"4,4\n5,5\n6,6\n", runs)
    stale = time.time() - housekeeping.UPLOAD_AGE_S - 5
    for path in (used, unused):
        os.utime(path, (stale, stale))
    assert housekeeping.remove_unused_uploads(runs, [str(used)]) == [unused]
    assert used.exists() and fresh.exists()
