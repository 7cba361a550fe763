"""Runs: a Trainer bound to its run folder. `open_run` starts or resumes one; `train_to` trains it and records it.

The CLI and the dashboard's background runs (RunManager, below) share these functions, so a run trained from either is
the same run, and the dashboard lists runs the CLI trained.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import numpy as np
import torch

from gan_core.config import ConfigError, TrainConfig
from gan_core.data import load_dataset
from gan_core.history import MetricHistory, Thinned, steps_per_second
from gan_core.probes import ProbeRecord
from gan_core.store import CONFIG_FILE, RunStore, default_runs_dir, sanitize_name
from gan_core.trainer import CheckpointError, Diverged, SampleRecord, StepRecord, StepResult, Trainer

log = logging.getLogger(__name__)


def open_run(path: str | os.PathLike, config: TrainConfig | None = None, *, steps: int | None = None,
             device: str = "cpu", data_dir: str | os.PathLike | None = None) -> tuple[RunStore, Trainer]:
    """With a config: a new run in `path`. Without: the run already there, at its last checkpoint (or step 0).

    `steps` changes a resumed run's total; the folder's config.json is updated to say so.
    """
    store = RunStore(Path(path))
    if config is not None:
        trainer = Trainer(config, device=device, data_dir=data_dir)  # load the data first: a bad dataset leaves no folder
        store.create(config)
        return store, trainer
    config = store.read_config()
    if steps is not None and steps != config.steps:
        config = config.replace(steps=steps)
    trainer = Trainer(config, device=device, data_dir=data_dir)
    if store.has_checkpoint():
        trainer.load_state_dict(store.load_checkpoint(map_location=trainer.device))
    elif store.read_metrics():
        raise CheckpointError(f"{store.path} has metrics but no checkpoint.pt to resume from")
    store.write_config(config)
    store.truncate_metrics(trainer.step_count)  # rows written after the checkpoint will be trained again
    store.drop_samples_after(trainer.step_count)
    return store, trainer


def train_to(store: RunStore, trainer: Trainer, until: int | None = None,
             on_step: Callable[[StepResult], bool | None] | None = None) -> int:
    """Train until step `until` (default: the config's total), recording every step; returns the step reached.

    `on_step` sees each result; returning True stops early (after a checkpoint). A Diverged error propagates with the
    last good checkpoint untouched on disk.
    """
    until = trainer.config.steps if until is None else until
    try:
        if trainer.step_count == 0 and not store.sample_steps():
            store.save_samples(trainer.snapshot())  # step 0: what G makes before any training
        while trainer.step_count < until:
            result = trainer.step()
            record_step(store, result)
            stop = bool(on_step(result)) if on_step else False
            checkpoint_if_due(store, trainer, until, force=stop)
            if stop:
                break
    finally:
        store.close()
    return trainer.step_count


def record_step(store: RunStore, result: StepResult) -> None:
    """Write one step to the run folder: its metrics row and its samples if any."""
    store.append_metrics(result.record)
    if result.samples is not None:
        store.save_samples(result.samples)


def checkpoint_if_due(store: RunStore, trainer: Trainer, until: int, force: bool = False) -> None:
    """Every checkpoint_every steps, at the last step, and whenever `force`d (a stop)."""
    if force or trainer.step_count % trainer.config.checkpoint_every == 0 or trainer.step_count >= until:
        store.save_checkpoint(trainer.state_dict())


# -- background runs ---------------------------------------------------------------------------------------------------
class Status(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    FINISHED = "finished"
    DIVERGED = "diverged"
    FAILED = "failed"

    @property
    def active(self) -> bool:
        """Holds a slot (or waits for one): a worker thread exists or is about to."""
        return self in (Status.QUEUED, Status.RUNNING, Status.PAUSED)


class StepKind(str, Enum):
    """The slow-motion controls of a paused run."""

    D = "d"  # one discriminator update: D's view of the plane moves, the fakes stay put
    G = "g"  # one generator update: the fakes move along G's gradient
    FULL = "full"  # one training step: the configured D updates, then one G update


class _Command(str, Enum):
    TRAIN = "train"
    STOP = "stop"


@dataclass(frozen=True)
class RunSnapshot:
    """An immutable copy of what a viewer needs of one run; taking one never waits for a training step."""

    id: str
    path: Path
    config: TrainConfig
    status: Status
    message: str
    step: int
    created: float  # seconds since the epoch
    version: int  # changes whenever anything below changes: a cache key for figures
    steps_per_s: float
    queue_position: int | None  # 1 = next to start
    metrics: Mapping[str, np.ndarray]  # history.COLUMNS, thinned
    probes: tuple[ProbeRecord, ...]
    samples: tuple[SampleRecord, ...]  # thinned; the last is the newest
    real: np.ndarray | None  # 2D data: a fixed sample of real points to draw behind the fakes
    modes: np.ndarray | None  # 2D mixtures: the true modes

    @property
    def total(self) -> int:
        return self.config.steps

    @property
    def progress(self) -> float:
        return min(1.0, self.step / max(1, self.config.steps))

    @property
    def latest_samples(self) -> SampleRecord | None:
        return self.samples[-1] if self.samples else None

    @property
    def label(self) -> str:
        """One line for pickers: name, status, step."""
        return f"{self.id} · {self.status.value} · {self.step:,}/{self.config.steps:,}"


class _Run:
    """One run's mutable state; every field is read and written under `cond`."""

    def __init__(self, run_id: str, store: RunStore, config: TrainConfig, created: float) -> None:
        self.id = run_id
        self.store = store
        self.config = config
        self.created = created
        self.cond = threading.Condition()
        self.status = Status.STOPPED
        self.error = ""  # the message of a diverged or failed run
        self.step = 0
        self.checkpoint_step = 0
        self.version = 0
        self.metrics = MetricHistory()
        self.recent: deque[StepRecord] = deque(maxlen=50)
        self.probes: Thinned[ProbeRecord] = Thinned(PROBE_CAPACITY)
        self.samples: Thinned[SampleRecord] = Thinned(SAMPLE_CAPACITY)
        self.real: np.ndarray | None = None
        self.modes: np.ndarray | None = None
        self.paused = False
        self.commands: deque[StepKind | _Command] = deque()
        self.thread: threading.Thread | None = None
        self._snapshot: RunSnapshot | None = None

    def changed(self) -> None:
        self.version += 1
        self.cond.notify_all()


PROBE_CAPACITY = 300
SAMPLE_CAPACITY = 60
REAL_POINTS = 1000  # real 2D points drawn behind the fakes


def default_max_runs() -> int:
    """GAN_MAX_RUNS, else one run per core beyond the one the server keeps for itself (at least one)."""
    text = os.environ.get("GAN_MAX_RUNS", "").strip()
    if text:
        try:
            value = int(text)
        except ValueError:
            raise ConfigError("GAN_MAX_RUNS", f"{text!r} is not a whole number") from None
        if value < 1:
            raise ConfigError("GAN_MAX_RUNS", f"{value} is below 1")
        return value
    return max(1, (os.cpu_count() or 2) - 1)


class RunManager:
    """Trains runs in background threads, at most `max_runs` at a time; the rest wait in a queue.

    Threads, not processes: the models are small, torch releases the GIL inside its kernels, and a snapshot is then a
    cheap copy of in-memory records rather than a round trip to another process (measured in the closing note of
    issue 3). Torch is held to `torch_threads` threads so the web server keeps a core for itself.
    """

    def __init__(self, runs_dir: str | os.PathLike | None = None, *, max_runs: int | None = None, device: str = "auto",
                 data_dir: str | os.PathLike | None = None, torch_threads: int = 1) -> None:
        self.runs_dir = Path(runs_dir) if runs_dir is not None else default_runs_dir()
        self.max_runs = default_max_runs() if max_runs is None else max_runs
        self.device = device
        self.data_dir = data_dir
        torch.set_num_threads(torch_threads)
        self._lock = threading.Lock()  # guards _runs and _queue; never held while waiting on a run's cond
        self._runs: dict[str, _Run] = {}
        self._queue: deque[str] = deque()
        self._closed = False
        self._scanned_mtime: float | None = None
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.scan()

    # -- what exists ---------------------------------------------------------------------------------------------------
    def scan(self) -> None:
        """Pick up run folders not yet known (after a restart, or trained by the CLI)."""
        try:
            mtime = self.runs_dir.stat().st_mtime
        except OSError:
            return
        if mtime == self._scanned_mtime:
            return
        self._scanned_mtime = mtime
        for folder in sorted(self.runs_dir.iterdir()):
            if folder.name in self._runs or not (folder / CONFIG_FILE).is_file():
                continue
            run = self._load(folder)
            with self._lock:
                self._runs.setdefault(run.id, run)

    def _load(self, folder: Path) -> _Run:
        """A run from its folder, as the last process left it. A damaged folder becomes a failed run that says why."""
        store = RunStore(folder)
        saved = store.read_status()
        created = float(saved.get("created", (folder / CONFIG_FILE).stat().st_mtime))
        try:
            config = store.read_config()
        except ConfigError as err:
            run = _Run(folder.name, store, TrainConfig(), created)
            run.status, run.error = Status.FAILED, f"cannot be opened: {err}"
            return run
        run = _Run(folder.name, store, config, created)
        try:
            for record in store.read_metrics():
                run.metrics.append(record)
                run.recent.append(record)
            run.step = run.recent[-1].step if run.recent else 0
            steps = store.sample_steps()
            for s in steps[:: max(1, len(steps) // SAMPLE_CAPACITY)] + steps[-1:]:
                if not run.samples.items() or run.samples.items()[-1].step != s:
                    run.samples.append(store.load_samples(s))
            run.checkpoint_step = int(saved.get("checkpoint_step", 0)) if store.has_checkpoint() else 0
            self._load_real(run)
        except (ConfigError, OSError, ValueError) as err:
            run.status, run.error = Status.FAILED, f"cannot be read: {err}"
            return run
        status = saved.get("status")
        if status in (Status.DIVERGED.value, Status.FAILED.value):
            run.status, run.error = Status(status), str(saved.get("message", ""))
        elif run.step >= config.steps:
            run.status = Status.FINISHED
        else:
            run.status = Status.STOPPED  # it was queued, running or paused when the server stopped
        return run

    def _load_real(self, run: _Run) -> None:
        if not run.config.dataset.is_2d:
            return
        data = load_dataset(run.config, self.data_dir)
        real, _ = data.sample(REAL_POINTS, torch.Generator().manual_seed(run.config.seed))
        run.real = real.numpy()
        run.modes = data.modes.numpy() if data.modes is not None else None

    def ids(self) -> list[str]:
        """Every run on this server, newest first."""
        self.scan()
        with self._lock:
            runs = list(self._runs.values())
        return [r.id for r in sorted(runs, key=lambda r: (r.created, r.id), reverse=True)]

    def snapshots(self) -> list[RunSnapshot]:
        return [self.snapshot(i) for i in self.ids()]

    def __contains__(self, run_id: str) -> bool:
        with self._lock:
            return run_id in self._runs

    # -- controls ------------------------------------------------------------------------------------------------------
    def start(self, config: TrainConfig, name: str | None = None) -> str:
        """Create a run folder and queue the run; returns its id at once (training happens in the background)."""
        base = sanitize_name(name or config.dataset.value)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        with self._lock:
            if self._closed:
                raise RuntimeError("the run manager has been shut down")
            run_id = f"{base}-{stamp}"[:64]
            n = 2
            while run_id in self._runs or (self.runs_dir / run_id).exists():
                run_id = f"{base}-{stamp}-{n}"[:64]
                n += 1
            store = RunStore(self.runs_dir / run_id).create(config)
            run = _Run(run_id, store, config, time.time())
            self._runs[run_id] = run
        self._queue_run(run)
        return run_id

    def resume(self, run_id: str, steps: int | None = None) -> None:
        """Continue a paused run; or reopen a stopped, diverged or failed run from its last checkpoint (queued again).

        `steps` raises a run's total, so a finished run can train on.
        """
        run = self._get(run_id)
        with run.cond:
            if run.status is Status.PAUSED:
                run.paused = False
                run.changed()
                return
            if run.status.active:
                return
            if steps is not None:
                run.config = run.config.replace(steps=steps)
            if run.step >= run.config.steps and run.status is Status.FINISHED:
                raise ConfigError("steps", f"the run already reached its {run.config.steps:,} steps; "
                                           "give a larger total to train on")
        self._queue_run(run)

    def pause(self, run_id: str) -> None:
        run = self._get(run_id)
        with run.cond:
            if run.status in (Status.RUNNING, Status.QUEUED):
                run.paused = True  # the worker says PAUSED once its current step is done
                run.changed()

    def stop(self, run_id: str) -> None:
        """Stop after the current step, with a checkpoint; a queued run leaves the queue."""
        run = self._get(run_id)
        with self._lock:
            if run_id in self._queue:
                self._queue.remove(run_id)
                with run.cond:
                    run.status = Status.STOPPED
                    run.changed()
                return
        with run.cond:
            if run.status in (Status.RUNNING, Status.PAUSED):
                run.commands.append(_Command.STOP)
                run.changed()

    def step(self, run_id: str, kind: StepKind = StepKind.FULL) -> None:
        """One slow-motion step of a paused run (see StepKind); ignored unless the run is paused."""
        run = self._get(run_id)
        with run.cond:
            if run.status is not Status.PAUSED:
                raise ConfigError("step", f"{run_id} is {run.status.value}; pause it first to step through it")
            run.commands.append(StepKind(kind))
            run.changed()

    def wait(self, run_id: str, until: Callable[[RunSnapshot], bool] | None = None, timeout: float = 60.0) -> RunSnapshot:
        """Block until `until(snapshot)` holds (default: the run is no longer active); for tests and scripts."""
        run = self._get(run_id)
        done = until or (lambda s: not s.status.active)
        deadline = time.monotonic() + timeout
        while True:
            snap = self.snapshot(run_id)
            if done(snap):
                return snap
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{run_id}: still {snap.status.value} at step {snap.step} after {timeout} s")
            with run.cond:
                if run.version == snap.version:
                    run.cond.wait(min(left, 0.5))

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop every run (each writes a checkpoint) and wait for the workers to end."""
        with self._lock:
            self._closed = True
            queued = list(self._queue)
            runs = list(self._runs.values())
        for run_id in queued:
            self.stop(run_id)
        for run in runs:
            with run.cond:
                if run.status in (Status.RUNNING, Status.PAUSED):
                    run.commands.append(_Command.STOP)
                    run.changed()
        for run in runs:
            if run.thread is not None:
                run.thread.join(timeout)

    # -- what a viewer reads -------------------------------------------------------------------------------------------
    def snapshot(self, run_id: str) -> RunSnapshot:
        run = self._get(run_id)
        with self._lock:
            position = self._queue.index(run_id) + 1 if run_id in self._queue else None
        with run.cond:
            cached = run._snapshot
            if cached is not None and cached.version == run.version and cached.queue_position == position:
                return cached
            snap = RunSnapshot(
                id=run.id, path=run.store.path, config=run.config, status=run.status,
                message=_message(run, position), step=run.step, created=run.created, version=run.version,
                steps_per_s=steps_per_second(list(run.recent)), queue_position=position,
                metrics=run.metrics.columns(), probes=tuple(run.probes.items()), samples=tuple(run.samples.items()),
                real=run.real, modes=run.modes,
            )
            run._snapshot = snap
            return snap

    # -- the worker ----------------------------------------------------------------------------------------------------
    def _get(self, run_id: str) -> _Run:
        with self._lock:
            run = self._runs.get(run_id)
        if run is None:
            raise ConfigError("run", f"no run named {run_id!r} on this server")
        return run

    def _queue_run(self, run: _Run) -> None:
        with run.cond:
            run.status, run.error, run.paused = Status.QUEUED, "", False
            run.commands.clear()
            run.changed()
        with self._lock:
            self._queue.append(run.id)
        self._admit()

    def _admit(self) -> None:
        """Start queued runs while slots are free."""
        while True:
            with self._lock:
                busy = sum(1 for r in self._runs.values() if r.thread is not None and r.thread.is_alive())
                if self._closed or busy >= self.max_runs or not self._queue:
                    return
                run = self._runs[self._queue.popleft()]
                run.thread = threading.Thread(target=self._work, args=(run,), name=f"run-{run.id}", daemon=True)
                with run.cond:
                    run.status = Status.PAUSED if run.paused else Status.RUNNING
                    run.changed()
                run.thread.start()

    def _work(self, run: _Run) -> None:
        try:
            self._train(run)
        except Diverged as err:
            self._end(run, Status.DIVERGED, f"{err}; the last good checkpoint (step {run.checkpoint_step:,}) is kept")
        except (ConfigError, CheckpointError) as err:
            self._end(run, Status.FAILED, str(err))
        except OSError as err:
            self._end(run, Status.FAILED, f"cannot write the run folder: {err}")
        except Exception as err:  # a bug: say so on the page, and keep the traceback for the server log
            log.exception("run %s failed", run.id)
            self._end(run, Status.FAILED, f"unexpected error: {type(err).__name__}: {err}")
        finally:
            run.store.close()
            self._admit_later(run)

    def _admit_later(self, run: _Run) -> None:
        # this thread is about to end; admit from a fresh thread so is_alive() no longer counts this one
        def admit() -> None:
            if run.thread is not None:
                run.thread.join()
            self._admit()

        threading.Thread(target=admit, daemon=True).start()

    def _train(self, run: _Run) -> None:
        store = run.store
        if not store.has_checkpoint():
            store.truncate_metrics(0)  # interrupted before its first checkpoint: start again from step 0
            store.drop_samples_after(-1)
        _, trainer = open_run(store.path, steps=run.config.steps, device=self.device, data_dir=self.data_dir)
        if run.real is None:
            self._load_real(run)
        with run.cond:
            if trainer.step_count < run.step or not run.metrics:  # resumed behind what we show: rebuild the history
                run.metrics, run.recent = MetricHistory(), deque(maxlen=50)
                for record in store.read_metrics():
                    run.metrics.append(record)
                    run.recent.append(record)
                run.samples = Thinned(SAMPLE_CAPACITY)
                for s in store.sample_steps():
                    run.samples.append(store.load_samples(s))
            run.step = run.checkpoint_step = trainer.step_count
            run.changed()
        if trainer.step_count == 0 and not store.sample_steps():
            self._push_samples(run, trainer.snapshot())
        self._write_status(run, Status.RUNNING)
        until = run.config.steps
        while True:
            command = self._next_command(run, trainer.step_count >= until)
            if command is _Command.STOP:
                store.save_checkpoint(trainer.state_dict())
                with run.cond:
                    run.checkpoint_step = trainer.step_count
                self._end(run, Status.STOPPED)
                return
            if command is None:
                self._end(run, Status.FINISHED)
                return
            if command is StepKind.D:
                trainer.d_update()
                self._push_samples(run, trainer.snapshot())
                continue
            result = trainer.step(d_updates=0 if command is StepKind.G else None)
            record_step(store, result)
            checkpoint_if_due(store, trainer, until, force=command is not _Command.TRAIN)
            with run.cond:
                if trainer.step_count % run.config.checkpoint_every == 0 or command is not _Command.TRAIN:
                    run.checkpoint_step = trainer.step_count
                run.metrics.append(result.record)
                run.recent.append(result.record)
                run.step = trainer.step_count
                if result.probe is not None:
                    run.probes.append(result.probe)
                if result.samples is not None:
                    run.samples.append(result.samples)
                elif command is not _Command.TRAIN:  # slow motion: show every step's effect
                    run.samples.append(trainer.snapshot())
                run.changed()

    def _next_command(self, run: _Run, done: bool) -> StepKind | _Command | None:
        """What the worker does next: a queued command, else train on (None once the run is done), waiting while paused."""
        with run.cond:
            while True:
                if run.commands:
                    return run.commands.popleft()
                if done and not run.paused:
                    return None
                if not run.paused:
                    if run.status is not Status.RUNNING:
                        run.status = Status.RUNNING
                        run.changed()
                    return _Command.TRAIN
                if run.status is not Status.PAUSED:
                    run.store.flush()  # a paused run's rows are all on disk
                    run.status = Status.PAUSED
                    run.changed()
                run.cond.wait()

    def _push_samples(self, run: _Run, record: SampleRecord) -> None:
        with run.cond:
            run.samples.append(record)
            run.changed()

    def _end(self, run: _Run, status: Status, error: str = "") -> None:
        with run.cond:
            run.status, run.error, run.paused = status, error, False
            run.commands.clear()
            run.changed()
        self._write_status(run, status)

    def _write_status(self, run: _Run, status: Status) -> None:
        try:
            run.store.write_status({"status": status.value, "message": run.error, "step": run.step,
                                    "checkpoint_step": run.checkpoint_step, "created": run.created})
        except OSError:
            log.warning("run %s: could not write its status file", run.id)


def _message(run: _Run, position: int | None) -> str:
    """A human sentence for the run's status, with its current numbers."""
    total = run.config.steps
    match run.status:
        case Status.QUEUED:
            return f"waiting for a free slot: number {position} in the queue" if position else "starting"
        case Status.RUNNING:
            return f"training: step {run.step:,} of {total:,}"
        case Status.PAUSED:
            return f"paused at step {run.step:,}: resume it, or step through it one update at a time"
        case Status.STOPPED:
            return (f"stopped at step {run.step:,} of {total:,}; resuming continues from the checkpoint at step "
                    f"{run.checkpoint_step:,}")
        case Status.FINISHED:
            return f"finished {run.step:,} steps"
        case _:
            return run.error or run.status.value
