"""Crashes mid-run, end to end: nothing lost, nothing crashes.

Truncated or corrupt checkpoints and metrics files; losses that really become NaN or infinite; writes that fail (disk
full, read-only); a resumed run whose history the server reads late. kill -9 of the server or a worker: test_kills.py.
The unit-level versions of these live in test_store.py, test_training.py and test_manager.py.
"""

from __future__ import annotations

import errno
import math
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from gan_core.config import ConfigError
from gan_core.runs.folder import CHECKPOINT_FILE, METRICS_FILE, SAMPLES_DIR, RunStore
from gan_core.runs.manager import RunManager
from gan_core.runs.status import Status
from gan_core.runs.train_run import open_run, record_step, train_to
from gan_core.train import losses
from gan_core.train.trainer import Trainer
from tests.tiny import TINY, tiny

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[RunManager]:
    m = RunManager(tmp_path / "runs", max_runs=2, processes=False)
    yield m
    m.shutdown()


def _steps(path: Path) -> list[int]:
    return [r.step for r in RunStore(path).read_metrics()]


def _checkpoint_step(path: Path) -> int:
    return int(RunStore(path).load_checkpoint()["step"])


def _all_finite(state: dict) -> bool:
    tensors = [v for net in ("generator", "discriminator") for v in state[net].values() if v.is_floating_point()]
    return all(bool(torch.isfinite(t).all()) for t in tensors)


# -- a resume the server hears of late ---------------------------------------------------------------------------------
def test_a_resume_the_server_hears_of_late_shows_each_step_once(manager, monkeypatch, one_thread):
    """Under load the worker may have trained and flushed steps past its checkpoint before the server reads the folder
    for the resumed run's history; those steps must not be shown twice (once from the file, once from the events)."""
    run_id = "cut"
    store, trainer = open_run(manager.runs_dir / run_id, TINY)
    train_to(store, trainer, until=20)
    for _ in range(5):  # steps past the checkpoint, as a kill leaves them
        record_step(store, trainer.step(), trainer.config)
    store.close()
    assert run_id in manager.ids() and manager.snapshot(run_id).step == 25
    real_apply = RunManager._apply

    def slow_apply(self, event, *rest):
        if event[0] == "started":
            time.sleep(1.5)  # meanwhile the worker trains its 20 steps and flushes them with its last checkpoint
        real_apply(self, event, *rest)

    monkeypatch.setattr(RunManager, "_apply", slow_apply)
    manager.resume(run_id, steps=40)
    done = manager.wait(run_id, timeout=60)
    assert list(done.metrics["step"]) == list(range(1, 41)) and _steps(done.path) == list(range(1, 41))
    assert [s.step for s in done.samples] == [0, 10, 20, 30, 40]
    assert [p.step for p in done.probes] == list(range(5, 41, 5))  # the file's up to 20, then the worker's


# -- damaged files -------------------------------------------------------------------------------------------------------
def _garbage(data: bytes) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _empty(data: bytes) -> bytes:
    return b""


def _garbled(data: bytes) -> bytes:  # text, but a row in the middle is nonsense
    lines = data.split(b"\n")
    lines[len(lines) // 2] = b"this,is,not,a,metrics,row"
    return b"\n".join(lines)


DAMAGE = {
    "checkpoint-garbage": (CHECKPOINT_FILE, _garbage, "cannot be read safely"),
    "checkpoint-truncated": (CHECKPOINT_FILE, _truncated, "cannot be read safely"),
    "checkpoint-empty": (CHECKPOINT_FILE, _empty, "cannot be read safely"),
    "metrics-garbage": (METRICS_FILE, _garbage, "is damaged: it is not text"),
    "metrics-truncated": (METRICS_FILE, _truncated, "before the checkpoint at step 30: the file was cut short"),
    "metrics-empty": (METRICS_FILE, _empty, "ends at step 0, before the checkpoint at step 30"),
    "metrics-garbled": (METRICS_FILE, _garbled, "is damaged"),
}


def _damage(folder: Path, kind: str) -> str:
    name, how, _ = DAMAGE[kind]
    file = folder / name
    file.write_bytes(how(file.read_bytes()))
    return name


@pytest.fixture(scope="module")
def stopped_at_30(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TINY run stopped at step 30 with a checkpoint there, trained once for every test that copies it."""
    store, trainer = open_run(tmp_path_factory.mktemp("stopped") / "run", TINY)
    assert train_to(store, trainer, until=30) == 30
    return store.path


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_a_damaged_checkpoint_or_metrics_file_fails_that_run_only(tmp_path, kind, one_thread, stopped_at_30):
    runs = tmp_path / "runs"
    for name in ("victim", "late", "good"):  # each stopped at step 30, with a checkpoint there
        shutil.copytree(stopped_at_30, runs / name)
    file = _damage(runs / "victim", kind)
    expected = DAMAGE[kind][2]

    m = RunManager(runs, max_runs=1, processes=False)
    try:
        assert set(m.ids()) == {"victim", "late", "good"}
        victim = m.snapshot("victim")
        assert victim.status is Status.FAILED and not victim.resumable
        assert file in victim.message and expected in victim.message
        with pytest.raises(ConfigError, match="cannot be resumed"):
            m.resume("victim")

        # damaged after the server listed it: the resume fails with the same clear message, not a traceback
        assert m.snapshot("late").status is Status.STOPPED
        _damage(runs / "late", kind)
        m.resume("late")
        late = m.wait("late", timeout=60)
        assert late.status is Status.FAILED and file in late.message and expected in late.message
        assert "Traceback" not in late.message and "unexpected error" not in late.message

        m.resume("good")
        good = m.wait("good", timeout=60)
        assert good.status is Status.FINISHED and _steps(runs / "good") == list(range(1, 61))
        new = m.start(TINY, "new")
        assert m.wait(new, timeout=60).status is Status.FINISHED and _steps(runs / new) == list(range(1, 61))
        assert m.snapshot("victim").status is Status.FAILED  # and it still says so
    finally:
        m.shutdown()


def test_an_unreadable_sample_or_status_file_does_not_take_the_server_down(tmp_path, one_thread, caplog, stopped_at_30):
    runs = tmp_path / "runs"
    for name in ("samples", "status", "good"):
        shutil.copytree(stopped_at_30, runs / name)
    (runs / "samples" / SAMPLES_DIR / "step_00000020.npz").write_bytes(b"not a zip file")
    (runs / "status" / "status.json").write_text('{"created": "yesterday"}')
    m = RunManager(runs, max_runs=1, processes=False)
    try:
        assert set(m.ids()) == {"samples", "status", "good"}
        snap = m.snapshot("samples")  # a snapshot is only a picture: the others are shown, the run resumes
        assert snap.status is Status.STOPPED and snap.resumable
        assert [r.step for r in snap.samples] == [0, 10, 30]
        for run_id in ("samples", "status", "good"):  # status.json only adds detail
            assert m.snapshot(run_id).status is Status.STOPPED
            m.resume(run_id)
            assert m.wait(run_id, timeout=60).status is Status.FINISHED
        assert "skipping the damaged sample snapshot of step 20" in caplog.text
    finally:
        m.shutdown()


# -- NaN and inf ---------------------------------------------------------------------------------------------------------
# Measured: with no gradient penalty, a learning rate of 1 and a deep narrow critic, the critic's scores grow without
# bound and its loss overflows to inf/NaN around step 20 (deterministic on the CPU with seed 0).
# Diverges by construction, not by one CPU's rounding: G hardly moves (lr_g 1e-7) and the critic has no penalty, so its
# objective E[D(x)] − E[D(G(z))] is unbounded against a G that stays put. Adam moves every weight of the 9-layer critic by
# about lr_d a step in a steady direction, its outputs grow by orders of magnitude (1e5 by step 3, 1e15 by step 20), and
# a gradient overflows float32 (at step 40-44 over seeds 0-4 on one machine; the test needs only 5 < step < 300).
EXPLODING = tiny("ring-wgan", steps=300, gp_lambda=0.0, lr_g=1e-7, lr_d=0.03, lr_final=1.0, d_steps=1, d_depth=8,
                 batch_size=32, checkpoint_every=5, probe_every=5, sample_every=5, n_samples=16)


def _assert_diverged_with_the_last_good_checkpoint(snap, every: int) -> int:
    assert snap.status is Status.DIVERGED
    match = re.fullmatch(r"diverged at step (\d+): (D|G) loss is not a finite number; "
                         r"the last good checkpoint \(step (\d+)\) is kept", snap.message)
    assert match, snap.message
    n, ckpt = int(match[1]), int(match[3])
    assert n > every, "diverged before its first checkpoint: the test would check nothing"
    assert ckpt == (n - 1) // every * every and snap.step == n - 1
    state = RunStore(snap.path).load_checkpoint()
    assert state["step"] == ckpt and _all_finite(state)
    Trainer(snap.config).load_state_dict(state)  # it loads
    assert _steps(snap.path) == list(range(1, n))  # the metrics end before the step that diverged
    assert max(RunStore(snap.path).sample_steps()) <= n - 1
    return n


@pytest.mark.slow
def test_a_run_that_really_diverges_says_at_which_step_and_keeps_its_last_good_checkpoint(manager, one_thread):
    run_id = manager.start(EXPLODING, "exploding")
    snap = manager.wait(run_id, timeout=60)
    n = _assert_diverged_with_the_last_good_checkpoint(snap, EXPLODING.checkpoint_every)
    assert n < EXPLODING.steps
    again = RunManager(manager.runs_dir, processes=False, max_runs=1)  # remembered across a restart
    try:
        assert again.snapshot(run_id).message == snap.message and again.snapshot(run_id).status is Status.DIVERGED
    finally:
        again.shutdown()


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_a_loss_that_turns_non_finite_makes_the_run_diverge(manager, monkeypatch, bad, one_thread):
    real_g_loss, calls = losses.BCELoss.g_loss, {"n": 0}

    def g_loss(self, fake):  # the 33rd G update's loss is non-finite: step 33 diverges, the checkpoint at 20 stays
        terms = real_g_loss(self, fake)
        calls["n"] += len(fake) == TINY.batch_size  # G updates only: the sample snapshots' arrows draw 16 points
        if calls["n"] == 33 and len(fake) == TINY.batch_size:
            terms["loss"] = terms["loss"] * bad if not math.isnan(bad) else terms["loss"] + bad
        return terms

    monkeypatch.setattr(losses.BCELoss, "g_loss", g_loss)
    run_id = manager.start(TINY.replace(n_samples=16))
    snap = manager.wait(run_id, timeout=60)
    assert snap.message.startswith("diverged at step 33: G loss is not a finite number")
    _assert_diverged_with_the_last_good_checkpoint(snap, TINY.checkpoint_every)


def test_weights_that_turn_non_finite_at_a_checkpoint_do_not_replace_the_last_good_one(manager, monkeypatch, one_thread):
    real_step = Trainer.step

    def step(self, d_updates=None):  # an update whose loss was finite but whose step overflowed (an infinite gradient)
        result = real_step(self, d_updates)
        if self.step_count == 40:
            with torch.no_grad():
                next(self.G.parameters()).view(-1)[0] = math.nan
        return result

    monkeypatch.setattr(Trainer, "step", step)
    run_id = manager.start(TINY)
    snap = manager.wait(run_id, timeout=60)
    assert snap.status is Status.DIVERGED
    assert snap.message == "diverged at step 40: a weight is not a finite number; the last good checkpoint (step 20) is kept"
    state = RunStore(snap.path).load_checkpoint()
    assert state["step"] == 20 and _all_finite(state)
    monkeypatch.undo()
    manager.resume(run_id)
    done = manager.wait(run_id, timeout=60)
    assert done.status is Status.FINISHED and _steps(snap.path) == list(range(1, 61))


# -- failed writes -------------------------------------------------------------------------------------------------------
class _Watcher:
    """Takes snapshots of every run all the time, as open pages do; collects anything that raised."""

    def __init__(self, m: RunManager) -> None:
        self.m, self.errors, self.done = m, [], threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        while not self.done.wait(0.02):
            try:
                for snap in self.m.snapshots():
                    _ = snap.message, snap.metrics, snap.label
            except Exception as err:  # noqa: BLE001 - the point is that nothing raises
                self.errors.append(err)

    def stop(self) -> list[Exception]:
        self.done.set()
        self.thread.join(5)
        return self.errors


def _fail_writes(monkeypatch: pytest.MonkeyPatch, what: str, code: int) -> None:
    """Writes to a run folder named victim-… fail with `code` (ENOSPC, EROFS) once the run is past its step-20 checkpoint."""
    def error(path: Path) -> OSError:
        return OSError(code, os.strerror(code), str(path))

    if what == "metrics":
        real_append = RunStore.append_metrics

        def append_metrics(self, record, force_flush=False):
            if self.path.name.startswith("victim") and record.step > 25:
                raise error(self.path / METRICS_FILE)
            real_append(self, record, force_flush)

        monkeypatch.setattr(RunStore, "append_metrics", append_metrics)
    elif what == "status":
        real_status = RunStore.write_status

        def write_status(self, status):
            if self.path.name.startswith("victim"):
                raise error(self.path / "status.json")
            real_status(self, status)

        monkeypatch.setattr(RunStore, "write_status", write_status)
    else:  # checkpoint or samples: the disk fills while an atomic write syncs its temp file
        real_fsync, seen = os.fsync, {"n": 0}

        def fsync(fd):
            target = os.readlink(f"/proc/self/fd/{fd}")
            inside = "/victim" in target and (f".{CHECKPOINT_FILE}." in target if what == "checkpoint"
                                               else f"/{SAMPLES_DIR}/" in target)
            if inside:
                seen["n"] += 1
                if seen["n"] > (1 if what == "checkpoint" else 3):  # the step-20 checkpoint, samples 0, 10 and 20
                    raise error(target)
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.parametrize("what", ["metrics", "checkpoint", "samples"])
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS], ids=["disk-full", "read-only"])
def test_a_failed_write_stops_that_run_with_a_message_and_nothing_else(manager, monkeypatch, what, code, one_thread):
    watcher = _Watcher(manager)
    _fail_writes(monkeypatch, what, code)
    victim = manager.start(TINY, "victim")
    bystander = manager.start(TINY, "bystander")
    failed = manager.wait(victim, timeout=60)
    assert failed.status is Status.FAILED, failed.message
    file = {"metrics": METRICS_FILE, "checkpoint": CHECKPOINT_FILE, "samples": f"{SAMPLES_DIR}/step_00000030.npz"}[what]
    assert failed.message.startswith(f"could not write {failed.path / file}: {os.strerror(code)}; ")
    assert f": {os.strerror(code)}; resuming continues from the last checkpoint (step 20)" in failed.message
    assert manager.wait(bystander, timeout=60).status is Status.FINISHED
    assert _steps(manager.runs_dir / bystander) == list(range(1, 61))

    # nothing already saved is lost: the step-20 checkpoint loads and the rows reach it; no temp file is left behind
    assert _checkpoint_step(failed.path) == 20
    steps = _steps(failed.path)
    assert steps == list(range(1, len(steps) + 1)) and 20 <= steps[-1] < 60
    assert not [f for f in failed.path.rglob("*.tmp")]

    monkeypatch.undo()  # space freed: it resumes from its checkpoint and finishes
    manager.resume(victim)
    assert manager.wait(victim, timeout=60).status is Status.FINISHED and _steps(failed.path) == list(range(1, 61))
    assert watcher.stop() == []


def test_a_status_file_that_cannot_be_written_does_not_stop_the_run(manager, monkeypatch, one_thread):
    watcher = _Watcher(manager)
    _fail_writes(monkeypatch, "status", errno.ENOSPC)
    victim = manager.start(TINY, "victim")
    done = manager.wait(victim, timeout=60)
    assert done.status is Status.FINISHED and _steps(done.path) == list(range(1, 61))
    assert watcher.stop() == []


def test_a_runs_folder_that_cannot_hold_a_run(tmp_path, one_thread):
    # the runs "folder" is a file: the server still starts and lists nothing; start says why, in a ConfigError
    not_a_folder = tmp_path / "runs"
    not_a_folder.write_text("oops")
    m = RunManager(not_a_folder, max_runs=1, processes=False)
    try:
        assert m.ids() == []
        with pytest.raises(ConfigError, match=r"cannot create a run: could not write .*runs/ring-.*: Not a directory"):
            m.start(TINY)
    finally:
        m.shutdown()

    # the folder disappears under a running server (an unmounted disk): its runs stay listed, new ones are refused,
    # and once the folder is back everything works again
    runs = tmp_path / "real-runs"
    m = RunManager(runs, max_runs=1, processes=False)
    try:
        done = m.start(TINY.replace(steps=10), "done")
        m.wait(done, timeout=60)
        moved = runs.rename(tmp_path / "elsewhere")
        runs.write_text("not a folder")
        assert m.ids() == [done] and m.snapshot(done).status is Status.FINISHED
        with pytest.raises(ConfigError, match="cannot create a run"):
            m.start(TINY)
        runs.unlink()
        moved.rename(runs)
        again = m.start(TINY.replace(steps=10), "again")
        assert m.wait(again, timeout=60).status is Status.FINISHED
        assert set(m.ids()) == {done, again}
    finally:
        m.shutdown()
