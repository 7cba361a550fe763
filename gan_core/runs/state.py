"""What the manager knows of one run: its mutable state (RunState, fed by a worker's events) and the immutable
RunSnapshot a viewer draws, with the sentence that describes its status."""

from __future__ import annotations

import logging
import threading
import time
import zipfile
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gan_core.config import TrainConfig
from gan_core.runs.folder import RunStore
from gan_core.runs.history import MetricHistory, Thinned, steps_per_second
from gan_core.runs.probe_log import PROBE_CAPACITY
from gan_core.runs.status import Status, StepKind
from gan_core.train.probes import ProbeRecord
from gan_core.train.records import SampleRecord, StepRecord

if TYPE_CHECKING:
    from gan_core.runs.processes import Worker

log = logging.getLogger(__name__)
SAMPLE_CAPACITY = 60


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
    resumable: bool = True  # False when its folder cannot be read: resuming would only fail again
    owner: str | None = None  # the session that started it; None: the presenter's (or the CLI's)
    where: str = ""  # where it trains or last trained: "local", "ray: <node ip>"; "" before it has since the start
    acceleration: str = ""  # what runs its steps there: "cuda graphs (...)" or "eager: why"; "" likewise

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
        """One line for pickers: name, status, step, and where it trains when that is not this machine."""
        where = f" · {self.where}" if self.where not in ("", "local") else ""
        return f"{self.id} · {self.status.value} · {self.step:,}/{self.config.steps:,}{where}"


class RunState:
    """One run's mutable state in the manager; every field is read and written under `cond`."""

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
        self.paused = False  # to start paused when it gets a worker (a slow-motion step of a run with none)
        self.pending_steps: list[StepKind] = []  # slow-motion steps asked of a paused run before it had a worker
        self.paused_since = 0.0  # time.monotonic() of its last pause or step: a run paused long gives its worker back
        self.releasing = False  # told to checkpoint and give its worker back, still paused
        self.resume_when_released = False  # resumed while it was giving its worker back: queue it once it has
        self.resumable = True
        self.worker: Worker | None = None
        self.owner: str | None = None  # the session that started it (None: the presenter's alone); set once
        self.where = ""  # RunSnapshot.where
        self.acceleration = ""  # RunSnapshot.acceleration
        self.mirrored = False  # another app process trains it; this one reads it from its folder (runs.mirror)
        self.trained_elsewhere = False  # mirrored, and a worker of that process holds it
        self._snapshot: RunSnapshot | None = None

    def changed(self) -> None:
        self.version += 1
        self.cond.notify_all()

    def apply(self, event: tuple) -> None:
        """What a worker's event says (see gan_core.runs.worker for the events), applied; the caller holds `cond`."""
        kind = event[0]
        if kind == "started":
            info = event[2]
            # it went back to its checkpoint, or we hold no history of a resumed run: show what the folder holds.
            # (Never for a new run: the worker may already have written its step-0 samples, which the next
            # progress event brings too.)
            if info["step"] < self.step or (info["step"] > 0 and not len(self.metrics)):
                self.reload_history(upto=info["step"])
            self.step = self.checkpoint_step = info["step"]
            self.real, self.modes = info["real"], info["modes"]
            self.where = info.get("where", "local")
            self.acceleration = info.get("steps", "")
        elif kind == "progress":
            _, _, records, probes, samples, self.checkpoint_step = event
            for record in records:
                self.metrics.append(record)
                self.recent.append(record)
            if records:
                self.step = records[-1].step
            for probe in probes:
                self.probes.append(probe)
            for sample in samples:
                self.samples.append(sample)
        elif kind == "status":
            self.status = event[2]
            if self.status is Status.PAUSED:
                self.paused_since = time.monotonic()
        elif kind == "end":
            _, _, self.status, self.error, self.checkpoint_step = event
            self.paused = self.releasing = False

    def snapshot(self, queue_position: int | None) -> RunSnapshot:
        """An immutable copy for viewers; the same object until anything in it changes."""
        with self.cond:
            cached = self._snapshot
            if cached is not None and cached.version == self.version and cached.queue_position == queue_position:
                return cached
            snap = RunSnapshot(
                id=self.id, path=self.store.path, config=self.config, status=self.status,
                message=status_message(self, queue_position), step=self.step, created=self.created,
                version=self.version, steps_per_s=steps_per_second(list(self.recent)), queue_position=queue_position,
                metrics=self.metrics.columns(), probes=tuple(self.probes.items()), samples=tuple(self.samples.items()),
                real=self.real, modes=self.modes, resumable=self.resumable, owner=self.owner, where=self.where,
                acceleration=self.acceleration,
            )
            self._snapshot = snap
            return snap

    def write_status(self) -> None:
        """The run's status.json: what a restart reads back (reload.load_run). A failure is logged, not raised: the run
        goes on, and only a restart would miss the newest word."""
        try:
            self.store.write_status({"status": self.status.value, "message": self.error, "step": self.step,
                                     "checkpoint_step": self.checkpoint_step, "created": self.created,
                                     "owner": self.owner, "where": self.where, "acceleration": self.acceleration,
                                     "worker": self.worker is not None})
        except OSError:
            log.warning("run %s: could not write its status file", self.id)

    def reload_history(self, upto: int | None = None) -> None:
        """Rebuild the history from the run folder (after a restart, or a resume that went back to a checkpoint).

        `upto`: the step the worker started from. It may already have written later steps, which its progress events
        bring too: reading them here as well would show them twice.
        """
        self.metrics, self.recent = MetricHistory(), deque(maxlen=50)
        for record in self.store.read_metrics():
            if upto is not None and record.step > upto:
                break
            self.metrics.append(record)
            self.recent.append(record)
        self.step = self.recent[-1].step if self.recent else self.store.origin_step()  # continued: from its file
        self.samples = Thinned(SAMPLE_CAPACITY)
        steps = [s for s in self.store.sample_steps() if upto is None or s <= upto]
        for s in sorted(set(steps[:: max(1, len(steps) // SAMPLE_CAPACITY)] + steps[-1:])):
            try:
                self.samples.append(self.store.load_samples(s))
            except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
                # a snapshot is a picture of the past: a damaged one is skipped, the run (weights, curves) is intact
                log.warning("run %s: skipping the damaged sample snapshot of step %d: %s", self.id, s, err)
        self.probes = Thinned(PROBE_CAPACITY)
        try:
            probes = self.store.read_probes()  # none in a folder written before probes were saved
        except OSError as err:  # like a snapshot, a picture of the past: the run is intact without them
            log.warning("run %s: cannot read its probe records: %s", self.id, err)
            probes = []
        for probe in probes:
            if probe.step > self.step:  # past the last metrics row: a kill can leave the probes flushed a little later
                break
            self.probes.append(probe)


def status_message(run: RunState, position: int | None) -> str:
    """A human sentence for the run's status, with its current numbers."""
    total = run.config.steps
    match run.status:
        case Status.QUEUED if run.mirrored:
            return "waiting for a free slot"  # the queue's order is known to the process that trains
        case Status.QUEUED:
            return f"waiting for a free slot: number {position} in the queue" if position else "starting"
        case Status.RUNNING:
            return f"training{_on(run.where)}{_graphs(run.acceleration)}: step {run.step:,} of {total:,}"
        case Status.PAUSED if run.worker is None and not run.pending_steps and not run.trained_elsewhere:
            return (f"paused at step {run.step:,}; its worker went to a waiting run, so resuming or stepping queues it "
                    "for the next free one")
        case Status.PAUSED:
            return f"paused{_on(run.where)} at step {run.step:,}: resume it, or step through it one update at a time"
        case Status.STOPPED:
            return (f"{run.error or 'stopped'} at step {run.step:,} of {total:,}; resuming continues from the checkpoint "
                    f"at step {run.checkpoint_step:,}")
        case Status.FINISHED:
            return f"all {run.step:,} steps trained"  # after "**finished** —": the word once
        case _:
            return run.error or run.status.value


def _graphs(acceleration: str) -> str:
    """' with CUDA graphs' where its steps replay as graphs; nothing for eager steps (the CPU's, said nowhere)."""
    return " with CUDA graphs" if acceleration.startswith("cuda graphs") else ""


def _on(where: str) -> str:
    """' on Ray node 10.0.0.5' for a run on a cluster; nothing for one on this machine (the default, said nowhere)."""
    return f" on Ray node {where.removeprefix('ray: ')}" if where.startswith("ray: ") else ""
