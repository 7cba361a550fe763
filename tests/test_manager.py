"""RunManager: background runs with pause/resume/stop/step, a concurrency limit with a queue, and recovery after restart."""

from __future__ import annotations

import math
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from gan_core.config import ConfigError, get_preset
from gan_core.runs.folder import RunStore
from gan_core.runs.history import MetricHistory, Thinned
from gan_core.runs.manager import RunManager
from gan_core.runs.state import RunState
from gan_core.runs.status import Status, StepKind
from gan_core.train.records import Diverged, StepRecord
from gan_core.train.trainer import Trainer
from tests.tiny import SLOW, TINY


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[RunManager]:
    # worker threads: the same loop as the worker processes, without a 2-3 s torch import per manager (and patchable)
    m = RunManager(tmp_path / "runs", max_runs=1, processes=False)
    yield m
    m.shutdown()


def test_a_run_trains_in_the_background_and_finishes(manager):
    run_id = manager.start(TINY, "my ring")
    assert run_id.startswith("my-ring-")
    snap = manager.wait(run_id, timeout=60)
    assert snap.status is Status.FINISHED and snap.step == 60 and snap.progress == 1.0
    assert "all 60 steps trained" in snap.message
    assert list(snap.metrics["step"]) == list(range(1, 61))
    assert np.isfinite(snap.metrics["g_loss_smooth"]).all()
    assert [p.step for p in snap.probes] == list(range(5, 61, 5))
    assert [s.step for s in snap.samples] == [0, 10, 20, 30, 40, 50, 60]
    assert snap.real is not None and snap.real.shape == (1000, 2) and snap.modes.shape == (8, 2)
    assert snap.steps_per_s > 0
    with pytest.raises(ValueError):
        snap.metrics["step"][0] = 5  # a snapshot is read-only


def test_snapshot_is_a_stable_copy(manager):
    run_id = manager.start(SLOW)
    first = manager.wait(run_id, lambda s: s.step >= 5)
    n = len(first.metrics["step"])
    later = manager.wait(run_id, lambda s: s.step >= first.step + 10)
    assert len(first.metrics["step"]) == n and later.version > first.version
    assert manager.snapshot(run_id) is manager.snapshot(run_id) or manager.snapshot(run_id).step >= later.step


def test_pause_step_resume_stop(manager):
    run_id = manager.start(SLOW)
    manager.wait(run_id, lambda s: s.step >= 3)
    manager.pause(run_id)
    paused = manager.wait(run_id, lambda s: s.status is Status.PAUSED)
    assert "paused at step" in paused.message
    before = manager.snapshot(run_id)
    assert manager.wait(run_id, lambda s: True).step == before.step  # paused: no progress

    manager.step(run_id, StepKind.D)  # a D update changes D's field but is not a training step
    after_d = manager.wait(run_id, lambda s: s.version > before.version and len(s.samples) > len(before.samples))
    assert after_d.step == before.step
    assert not np.array_equal(after_d.samples[-1].field, before.samples[-1].field)

    manager.step(run_id, StepKind.G)
    after_g = manager.wait(run_id, lambda s: s.step == before.step + 1)
    assert after_g.metrics["step"][-1] == before.step + 1
    assert not np.array_equal(after_g.samples[-1].samples, after_d.samples[-1].samples)  # the fakes moved

    manager.step(run_id, StepKind.FULL)
    manager.wait(run_id, lambda s: s.step == before.step + 2)
    assert manager.snapshot(run_id).status is Status.PAUSED

    manager.resume(run_id)
    manager.wait(run_id, lambda s: s.status is Status.RUNNING and s.step > before.step + 5)
    manager.stop(run_id)
    stopped = manager.wait(run_id)
    assert stopped.status is Status.STOPPED and "resuming continues from the checkpoint" in stopped.message
    assert RunStore(stopped.path).load_checkpoint()["step"] == stopped.step  # a stop writes a checkpoint


def test_step_needs_a_paused_run(manager):
    run_id = manager.start(TINY)
    manager.wait(run_id)
    with pytest.raises(ConfigError, match="pause it first"):
        manager.step(run_id, StepKind.G)
    with pytest.raises(ConfigError, match="no run named"):
        manager.snapshot("nope")


def test_the_limit_queues_extra_runs(manager):
    first = manager.start(SLOW, "first")
    second = manager.start(TINY, "second")
    third = manager.start(TINY, "third")
    manager.wait(first, lambda s: s.status is Status.RUNNING)
    assert manager.snapshot(second).status is Status.QUEUED
    assert manager.snapshot(second).queue_position == 1 and manager.snapshot(third).queue_position == 2
    assert "number 2 in the queue" in manager.snapshot(third).message
    manager.stop(third)  # leaving the queue
    assert manager.snapshot(third).status is Status.STOPPED and manager.snapshot(second).queue_position == 1
    manager.stop(first)
    assert manager.wait(second, timeout=60).status is Status.FINISHED  # a freed slot starts the next in line
    assert manager.snapshot(third).step == 0


def test_a_run_says_what_runs_its_steps(manager, tmp_path):
    snap = manager.wait(manager.start(TINY), timeout=60)
    assert snap.acceleration == "eager: CUDA graphs need a CUDA device, and this Trainer runs on the cpu"
    run = RunState("gpu-run", RunStore(tmp_path / "gpu-run"), TINY, created=0.0)  # what a GPU's worker says
    run.apply(("started", run.id, {"step": 0, "real": None, "modes": None, "where": "local",
                                    "steps": "cuda graphs (warm-up and capture took 1.50 s)"}))
    run.apply(("status", run.id, Status.RUNNING))
    assert run.snapshot(None).message == f"training with CUDA graphs: step 0 of {TINY.steps:,}"


def test_runs_are_listed_newest_first(manager):
    a = manager.start(TINY, "a")
    b = manager.start(TINY, "b")
    assert manager.ids()[:2] == [b, a]


def test_restart_lists_runs_with_their_curves_and_resumes_them(tmp_path):
    runs = tmp_path / "runs"
    m = RunManager(runs, max_runs=2, processes=False)
    done = m.start(TINY, "done")
    cut = m.start(SLOW, "cut")
    m.wait(done)
    m.wait(cut, lambda s: s.step >= 45)
    m.shutdown()  # like a server restart: the worker stops after its step with a checkpoint

    m2 = RunManager(runs, max_runs=2, processes=False)
    try:
        assert set(m2.ids()) == {done, cut}
        old = m2.snapshot(done)
        assert old.status is Status.FINISHED and list(old.metrics["step"]) == list(range(1, 61))
        assert old.samples[-1].step == 60
        interrupted = m2.snapshot(cut)
        assert interrupted.status is Status.STOPPED and interrupted.step >= 45
        m2.resume(cut, steps=interrupted.step + 10)
        resumed = m2.wait(cut, timeout=60)
        assert resumed.status is Status.FINISHED and resumed.step == interrupted.step + 10
        assert list(resumed.metrics["step"]) == list(range(1, resumed.step + 1))
        with pytest.raises(ConfigError, match="larger total"):
            m2.resume(done)
    finally:
        m2.shutdown()


def test_a_run_killed_between_checkpoints_resumes_from_its_last_one(tmp_path):
    runs = tmp_path / "runs"
    m = RunManager(runs, max_runs=1, processes=False)
    run_id = m.start(SLOW)
    m.wait(run_id, lambda s: s.step >= 30)
    m.pause(run_id)
    m.wait(run_id, lambda s: s.status is Status.PAUSED)
    store = RunStore(runs / run_id)
    store_rows = len(store.read_metrics())
    ckpt = store.load_checkpoint()["step"]
    assert store_rows > ckpt  # rows past the checkpoint: what a kill -9 leaves behind
    # the folder as a kill -9 of its server leaves it, under a new server (one that shares the folder with a live one
    # sends it its controls instead: test_sharing.py)
    after = tmp_path / "after"
    shutil.copytree(runs / run_id, after / run_id)
    m2 = RunManager(after, max_runs=1, processes=False)
    try:
        assert m2.snapshot(run_id).status is Status.STOPPED
        m2.resume(run_id, steps=ckpt + 5)
        resumed = m2.wait(run_id, timeout=60)
        assert resumed.step == ckpt + 5 and list(resumed.metrics["step"]) == list(range(1, ckpt + 6))
    finally:
        m.shutdown()
        m2.shutdown()


def test_a_diverged_run_says_so_and_keeps_its_checkpoint(manager, monkeypatch):
    real_step = Trainer.step

    def step_that_diverges(self, d_updates=None):  # the engine's own NaN check is tested in test_trainer.py
        if self.step_count == 25:
            raise Diverged(26, "G loss")
        return real_step(self, d_updates)

    monkeypatch.setattr(Trainer, "step", step_that_diverges)
    run_id = manager.start(TINY)
    snap = manager.wait(run_id, timeout=60)
    assert snap.status is Status.DIVERGED and snap.step == 25
    assert snap.message == ("diverged at step 26: G loss is not a finite number; "
                            "the last good checkpoint (step 20) is kept")
    assert RunStore(snap.path).load_checkpoint()["step"] == 20
    assert RunManager(manager.runs_dir, processes=False).snapshot(run_id).status is Status.DIVERGED  # remembered across a restart
    monkeypatch.undo()
    manager.resume(run_id)
    resumed = manager.wait(run_id, timeout=60)
    assert resumed.status is Status.FINISHED and list(resumed.metrics["step"]) == list(range(1, 61))


def test_a_failing_run_fails_with_a_message_and_others_work(tmp_path, monkeypatch):
    m = RunManager(tmp_path / "runs", max_runs=1, data_dir=tmp_path / "nothing-here", processes=False)
    try:
        monkeypatch.setenv("GAN_OFFLINE", "1")
        bad = m.start(get_preset("first-gan").config.replace(steps=5))  # MNIST is not in data_dir
        snap = m.wait(bad, timeout=30)
        assert snap.status is Status.FAILED and "mnist" in snap.message.lower()
        good = m.start(TINY)
        assert m.wait(good, timeout=60).status is Status.FINISHED
    finally:
        m.shutdown()


def test_a_damaged_run_folder_is_listed_as_failed(tmp_path):
    runs = tmp_path / "runs"
    (runs / "broken").mkdir(parents=True)
    (runs / "broken" / "config.json").write_text("{not json")
    m = RunManager(runs, max_runs=1, processes=False)
    snap = m.snapshot("broken")
    assert snap.status is Status.FAILED and "cannot be" in snap.message and not snap.resumable
    with pytest.raises(ConfigError, match="cannot be resumed"):
        m.resume("broken")


@pytest.mark.parametrize("name", ["**bold** [link](x)", "Upper", "a b", "<img src=x>", "x" * 65])
def test_a_folder_whose_name_is_not_a_run_id_is_not_listed(tmp_path, caplog, name):
    """A run's id is drawn as Markdown on every page: a hand-made folder name must not become markup."""
    from gan_core.runs.train_run import open_run, train_to

    runs = tmp_path / "runs"
    store, trainer = open_run(runs / "fine", TINY.replace(steps=5))
    train_to(store, trainer)
    (runs / "fine").rename(runs / name)
    open_run(runs / "fine", TINY.replace(steps=5))  # a well-named neighbour is still listed
    m = RunManager(runs, max_runs=1, processes=False)
    try:
        assert m.ids() == ["fine"]
        assert "is not a run id" in caplog.text and name in caplog.text
    finally:
        m.shutdown()


def test_runs_trained_elsewhere_appear(manager, tmp_path):
    from gan_core.runs.train_run import open_run, train_to

    store, trainer = open_run(manager.runs_dir / "from-cli", TINY.replace(steps=10))
    train_to(store, trainer)
    assert "from-cli" in manager.ids()
    assert manager.snapshot("from-cli").status is Status.FINISHED


def test_max_runs_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GAN_MAX_RUNS", "3")
    m = RunManager(tmp_path, processes=False)
    assert m.max_runs == 3 and len(m._pool.workers) == 3
    m.shutdown()
    monkeypatch.setenv("GAN_MAX_RUNS", "zero")
    with pytest.raises(ConfigError, match="GAN_MAX_RUNS"):
        RunManager(tmp_path, processes=False)


def test_thinned_keeps_memory_flat_and_spread_evenly():
    t: Thinned[int] = Thinned(100)
    for i in range(1_000_000):
        t.append(i)
    items = t.items()
    assert len(items) <= 101 and items[0] == 0 and items[-1] == 999_999
    gaps = np.diff(items[:-1])
    assert len(set(gaps)) == 1  # evenly spaced


def test_metric_history_smooths_over_every_step():
    h = MetricHistory(capacity=10)
    for i in range(1, 1001):
        h.append(StepRecord(i, i / 100, 1.0, 2.0 if i % 2 else 4.0, 0.5, 0.5, 0.5, 0.5, math.nan))
    cols = h.columns()
    assert len(cols["step"]) <= 11 and cols["step"][-1] == 1000
    assert cols["d_loss_smooth"][-1] == pytest.approx(1.0)
    assert cols["g_loss_smooth"][-1] == pytest.approx(3.0, abs=0.1)


@pytest.mark.server
def test_worker_processes_train_and_a_killed_one_is_replaced(tmp_path):
    """The default: runs train in worker processes; a worker that dies fails its run with a message, not the server."""
    m = RunManager(tmp_path / "runs", max_runs=1)
    try:
        victim = m.start(SLOW, "victim")
        m.wait(victim, lambda s: s.step >= 10, timeout=90)  # the first start includes the worker importing torch
        m.pause(victim)
        paused = m.wait(victim, lambda s: s.status is Status.PAUSED)
        m.step(victim, StepKind.G)
        assert m.wait(victim, lambda s: s.step == paused.step + 1).status is Status.PAUSED
        os.kill(m._pool.workers[0].handle.pid, signal.SIGKILL)
        failed = m.wait(victim, timeout=30)
        assert failed.status is Status.FAILED and "stopped unexpectedly" in failed.message
        after = m.start(TINY, "after")
        assert m.wait(after, timeout=90).status is Status.FINISHED  # a fresh worker took over
    finally:
        m.shutdown()


def test_a_symlink_in_the_runs_folder_is_not_listed(tmp_path):
    from gan_core.runs.train_run import open_run, train_to

    elsewhere = tmp_path / "elsewhere" / "outside-run"
    store, trainer = open_run(elsewhere, TINY.replace(steps=5))
    train_to(store, trainer)
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "outside-run").symlink_to(elsewhere, target_is_directory=True)
    store, trainer = open_run(runs / "inside-run", TINY.replace(steps=5))
    train_to(store, trainer)
    (runs / "second-name").symlink_to(runs / "inside-run", target_is_directory=True)  # a link inside is still a link
    m = RunManager(runs, max_runs=1, processes=False)
    try:
        assert m.ids() == ["inside-run"]
    finally:
        m.shutdown()
