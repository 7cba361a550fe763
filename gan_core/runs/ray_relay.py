"""A run folder at a distance: what a Ray worker trains from, and how its writes reach the server's folder.

A Ray cluster shares no filesystem with the dashboard's server, and the server stays the one writer of run folders. So
the server reads what a worker needs to open a run (`RelaySeed.read`: config, checkpoint bytes, where metrics.csv ends,
the sample snapshots' steps, an uploaded CSV's bytes) into its "train" order; the worker opens a `RelayStore` on it,
which answers the same reads and turns every write into a ("store", run_id, method, args) event; the server replays
those, in order with the other events, on a real RunStore (`replay`). The training loop (gan_core.runs.worker) and
open_run (gan_core.runs.train_run) run unchanged on either store.

Datasets: the bundled digits and the 2D mixtures are made on the worker; an uploaded CSV travels in the seed (at most
data.MAX_CSV_POINTS rows); MNIST and Fashion-MNIST are read (or downloaded) where the worker runs, under its data_dir.
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from gan_core.config import TrainConfig
from gan_core.runs.folder import CHECKPOINT_FILE, RunStore, checkpoint_bytes, load_checkpoint_from
from gan_core.train.probes import ProbeRecord
from gan_core.train.records import CheckpointError, SampleRecord, StepRecord

# the RunStore writers a relay store reports, and so the only methods `replay` calls
REPLAYED = frozenset({"write_config", "truncate_metrics", "truncate_probes", "drop_samples_after", "append_metrics",
                      "append_probe", "save_samples", "save_checkpoint_bytes", "flush", "close"})


class EventSink(Protocol):
    def put(self, item: Any) -> None: ...


@dataclass(frozen=True)
class RelaySeed:
    """What a worker elsewhere needs of a run folder to open it (all picklable)."""

    path: str  # the folder on the server: named in messages, never opened by the worker
    config: dict[str, Any]
    checkpoint: bytes | None
    metrics_end: int | None
    sample_steps: list[int] = field(default_factory=list)
    points_csv: bytes | None = None  # an uploaded CSV's content

    @classmethod
    def read(cls, path: str | os.PathLike) -> RelaySeed:
        store = RunStore(path)
        config = store.read_config()
        file = store.path / CHECKPOINT_FILE
        checkpoint = file.read_bytes() if file.is_file() else None
        points = Path(config.points_csv).read_bytes() if config.points_csv else None
        return cls(str(store.path), config.to_dict(), checkpoint, store.metrics_end(), store.sample_steps(), points)

    def store(self, events: EventSink, run_id: str) -> RelayStore:
        return RelayStore(self, events, run_id)


class RelayStore(RunStore):
    """A RunStore that reads from a RelaySeed and reports its writes as events; it never touches the worker's disk
    (except an uploaded CSV, written to a temp file for the data loader)."""

    def __init__(self, seed: RelaySeed, events: EventSink, run_id: str) -> None:
        super().__init__(seed.path)
        self._seed, self._events, self._id = seed, events, run_id
        self._config = TrainConfig.from_dict(seed.config)
        self._checkpoint = seed.checkpoint
        self._metrics_end = seed.metrics_end
        self._sample_steps = sorted(seed.sample_steps)
        self._csv_here: str | None = None
        if seed.points_csv is not None:
            fd, self._csv_here = tempfile.mkstemp(prefix="gan-points-", suffix=".csv")
            with os.fdopen(fd, "wb") as fh:
                fh.write(seed.points_csv)

    def _relay(self, method: str, *args: Any) -> None:
        assert method in REPLAYED, method
        self._events.put(("store", self._id, method, args))

    # -- reads, from the seed ----------------------------------------------------------------------------------------
    def exists(self) -> bool:
        return True

    def read_config(self) -> TrainConfig:
        return self._config.replace(points_csv=self._csv_here) if self._csv_here else self._config

    def has_checkpoint(self) -> bool:
        return self._checkpoint is not None

    def load_checkpoint(self, map_location: Any = "cpu") -> dict[str, Any]:
        if self._checkpoint is None:
            raise CheckpointError(f"{self.path / CHECKPOINT_FILE} does not exist")
        return load_checkpoint_from(io.BytesIO(self._checkpoint), self.path / CHECKPOINT_FILE, map_location)

    def metrics_end(self) -> int | None:
        return self._metrics_end

    def sample_steps(self) -> list[int]:
        return list(self._sample_steps)

    # -- writes, relayed -----------------------------------------------------------------------------------------------
    def write_config(self, config: TrainConfig) -> None:
        if self._csv_here:  # the server's config names the server's copy of the CSV
            config = config.replace(points_csv=self._config.points_csv)
        self._config = config
        self._relay("write_config", config)

    def truncate_metrics(self, last_step: int) -> None:
        if self._metrics_end is not None and self._metrics_end > last_step:
            self._metrics_end = last_step if last_step > 0 else None
        self._relay("truncate_metrics", last_step)

    def truncate_probes(self, last_step: int) -> None:
        self._relay("truncate_probes", last_step)

    def drop_samples_after(self, step: int) -> None:
        self._sample_steps = [s for s in self._sample_steps if s <= step]
        self._relay("drop_samples_after", step)

    def append_metrics(self, record: StepRecord, force_flush: bool = False) -> None:
        self._metrics_end = record.step
        self._relay("append_metrics", record, force_flush)

    def append_probe(self, record: ProbeRecord, keep: bool) -> None:
        self._relay("append_probe", record, keep)

    def save_samples(self, record: SampleRecord) -> Path:
        self._sample_steps = sorted({*self._sample_steps, record.step})
        self._relay("save_samples", record)
        return self.path / "samples" / f"step_{record.step:08d}.npz"

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        self.save_checkpoint_bytes(checkpoint_bytes(state))

    def save_checkpoint_bytes(self, data: bytes) -> None:
        self._checkpoint = data
        self._relay("save_checkpoint_bytes", data)

    def flush(self) -> None:
        self._relay("flush")

    def close(self) -> None:
        self._relay("close")
        if self._csv_here:
            Path(self._csv_here).unlink(missing_ok=True)
            self._csv_here = None


def replay(store: RunStore, event: tuple) -> None:
    """Apply a relay store's ("store", run_id, method, args) event to the server's RunStore."""
    _, _, method, args = event
    if method not in REPLAYED:  # an event names a method: only the writers, never anything else on the store
        raise ValueError(f"not a run folder write: {method!r}")
    getattr(store, method)(*args)
