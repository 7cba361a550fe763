"""The run folder: config.json, metrics.csv, probes.jsonl, checkpoint.pt and sample snapshots, written so a crash
loses little, and TensorBoard event files beside them (gan_core.runs.tensorboard_log) written with the metrics and
samples.

metrics.csv and probes.jsonl (gan_core.runs.probe_log) are appended and flushed as training goes, so a crash can tear
only their last line, which readers skip; checkpoint.pt is written to a temp file and os.replace'd, so a reader sees the
old checkpoint or the new one, never half of one; checkpoints are read with weights_only=True.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import re
import tempfile
import time
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan_core.config import ConfigError, TrainConfig
from gan_core.runs import probe_log
from gan_core.runs.history import Thinned
from gan_core.runs.probe_log import PROBE_CAPACITY, PROBES_FILE
from gan_core.runs.tensorboard_log import EventLog
from gan_core.train.probes import ProbeRecord
from gan_core.train.records import METRIC_COLUMNS, CheckpointError, SampleRecord, StepRecord, parse_row

log = logging.getLogger(__name__)

# What reading and checking a file that a crash, a hand or a forger may have damaged can raise: not there or unreadable
# (OSError), not JSON or not text (ValueError), values of the wrong kind or missing (TypeError, KeyError, IndexError,
# AttributeError), 1e999 made a whole number (OverflowError), arrays nested past the parser's depth (RecursionError).
# Every reader of such a file treats each of these as "damaged": logged, the file named, a documented fallback.
DAMAGED = (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, RecursionError)

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.csv"
CHECKPOINT_FILE = "checkpoint.pt"
STATUS_FILE = "status.json"  # the dashboard's last word on the run (e.g. diverged, and why), so a restart can say it
ORIGIN_FILE = "origin.json"  # a run continued from a checkpoint made elsewhere: the step its history starts after
SAMPLES_DIR = "samples"
# A run keeps at most this many sample snapshots on disk, and about this many bytes of them: past either, every second
# older snapshot is removed (the first and the newest stay), as the curves are thinned. Without it `sample_every=1`
# with 4,096 samples wrote ~4 GB an hour. The dashboard draws at most 60 of them (state.SAMPLE_CAPACITY).
MAX_SNAPSHOTS = 120
MAX_SNAPSHOT_BYTES = 200_000_000
FLUSH_SECONDS = 1.0  # metrics rows reach the disk at least this often


def default_runs_dir() -> Path:
    return Path(os.environ.get("GAN_RUNS_DIR", "runs"))


def sanitize_name(name: str) -> str:
    """A run name safe as one folder name: lower-case [a-z0-9_-], no dots, no slashes, 1–64 characters."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    text = re.sub(r"[^a-z0-9_-]+", "-", text)[:64].strip("-_")
    if not text:
        raise ConfigError("name", f"{name!r} has no letters or digits to name a run with")
    return text


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _load_failure(err: Exception) -> str:
    """Why torch.load refused a file, in one short line (torch's own text is a page long, with terminal colours)."""
    text = _ANSI.sub("", str(err)).strip()
    if "Weights only load failed" in text:
        return "it holds objects other than tensors, numbers and strings, which are refused (loading them could run code)"
    first = text.splitlines()[0] if text else type(err).__name__
    return first[:200]


def is_run_id(name: str) -> bool:
    """Whether a folder name is one sanitize_name could have made: only such folders are listed as runs, because a
    run's id is shown on every page (a name with Markdown or HTML in it would be drawn as such)."""
    try:
        return sanitize_name(name) == name
    except ConfigError:
        return False


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a unique temp file beside `path`, then os.replace it: readers see the old file or the new, never half."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno is not None:  # name the file, not its temp: "…/checkpoint.pt: No space…"
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise


def read_json_section(path: Path, key: str, meanwhile: str) -> dict[str, Any] | None:
    """The object under `key` in the JSON file at `path`; None when the file is missing, unreadable or has no such
    object (the last two logged, saying `meanwhile`: what the reader does instead). Never raises: a damaged file of
    the server's shared state must cost only that state, never a page."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except DAMAGED as err:
        log.warning("%s cannot be read (%s: %s): %s", path, type(err).__name__, err, meanwhile)
        return None
    section = data.get(key) if isinstance(data, dict) else None
    if not isinstance(section, dict):
        log.warning("%s holds no '%s' object: %s", path, key, meanwhile)
        return None
    return section


class RunStore:
    """One run's folder. Creating a store does not touch the disk; `create` and the writers do."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._metrics_fh: io.TextIOWrapper | None = None
        self._probes_fh: io.TextIOWrapper | None = None
        self._unwritten_probe: ProbeRecord | None = None  # the newest probe record, when thinning left it out
        self._last_flush = 0.0
        self.events = EventLog(self.path)

    # -- config ------------------------------------------------------------------------------------------------------
    def create(self, config: TrainConfig) -> RunStore:
        """Start a new run here; refuses a folder that already holds one (resume it instead)."""
        if (self.path / CONFIG_FILE).exists():
            raise FileExistsError(f"{self.path} already holds a run; resume it or choose another folder")
        self.path.mkdir(parents=True, exist_ok=True)
        self.write_config(config)
        return self

    def exists(self) -> bool:
        return (self.path / CONFIG_FILE).is_file()

    def write_config(self, config: TrainConfig) -> None:
        atomic_write_bytes(self.path / CONFIG_FILE, json.dumps(config.to_dict(), indent=2).encode())

    def read_config(self) -> TrainConfig:
        file = self.path / CONFIG_FILE
        try:
            values = json.loads(file.read_text())
        except FileNotFoundError:
            raise ConfigError("run", f"{self.path} holds no run ({CONFIG_FILE} is missing)") from None
        except DAMAGED as err:
            raise ConfigError("run", f"{file} cannot be read: {type(err).__name__}: {err}"[:300]) from None
        if not isinstance(values, dict):
            raise ConfigError("run", f"{file} does not hold a configuration object")
        return TrainConfig.from_dict(values)

    # -- status -----------------------------------------------------------------------------------------------------
    def write_status(self, status: dict[str, Any]) -> None:
        atomic_write_bytes(self.path / STATUS_FILE, json.dumps(status).encode())

    def read_status(self) -> dict[str, Any]:
        """The saved status dict, or {} when there is none or it cannot be read (it only adds detail)."""
        try:
            values = json.loads((self.path / STATUS_FILE).read_text())
        except FileNotFoundError:
            return {}
        except DAMAGED as err:
            log.warning("%s cannot be read (%s): the run is listed from its other files", self.path / STATUS_FILE,
                        type(err).__name__)
            return {}
        return values if isinstance(values, dict) else {}

    # -- origin ------------------------------------------------------------------------------------------------------
    def write_origin(self, step: int, source: str) -> None:
        """Mark a run continued from a checkpoint made elsewhere (an upload): its metrics start after `step`."""
        atomic_write_bytes(self.path / ORIGIN_FILE, json.dumps({"step": int(step), "source": source}).encode())

    def origin_step(self) -> int:
        """The step this run's history starts after: 0, unless it was continued from a checkpoint made elsewhere."""
        try:
            step = json.loads((self.path / ORIGIN_FILE).read_text()).get("step", 0)
        except DAMAGED:  # absent (every run trained here) or damaged: from the start
            return 0
        return step if isinstance(step, int) and not isinstance(step, bool) and step >= 0 else 0

    # -- metrics -----------------------------------------------------------------------------------------------------
    def append_metrics(self, record: StepRecord, force_flush: bool = False) -> None:
        if self._metrics_fh is None:
            file = self.path / METRICS_FILE
            new = not file.exists() or file.stat().st_size == 0
            self._metrics_fh = open(file, "a", newline="")
            if new:
                self._metrics_fh.write(",".join(METRIC_COLUMNS) + "\n")
        self._metrics_fh.write(_row(record))
        self.events.add_metrics(record)
        now = time.monotonic()
        if force_flush or now - self._last_flush >= FLUSH_SECONDS:
            self.flush()
            self._last_flush = now

    def flush(self) -> None:
        if self._metrics_fh is not None:
            self._metrics_fh.flush()
        if self._probes_fh is not None:
            self._probes_fh.flush()
        self.events.flush()

    def close(self) -> None:
        """Write what is pending (the newest probe record among them: a restart then shows where the run got to) and
        close the files."""
        self.events.close()
        try:
            if self._unwritten_probe is not None:
                self._write_probe(self._unwritten_probe)
        finally:
            for name in ("_metrics_fh", "_probes_fh"):
                fh = getattr(self, name)
                if fh is not None:
                    setattr(self, name, None)  # even when the last flush fails (disk full): never reused
                    fh.close()

    def read_metrics(self) -> list[StepRecord]:
        """Every complete row; a torn last line (a crash mid-write) is skipped, a damaged row raises ConfigError."""
        file = self.path / METRICS_FILE
        if not file.exists():
            return []
        self.flush()
        try:
            text = file.read_text()
        except UnicodeDecodeError:
            raise ConfigError("run", f"{file} is damaged: it is not text") from None
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        elif lines:
            lines.pop()  # no newline at the end: the last row was cut off mid-write
        rows = list(csv.reader(lines))
        if not rows:
            return []
        if tuple(rows[0]) != METRIC_COLUMNS:
            raise ConfigError("run", f"{file} has an unexpected header {rows[0][:4]}…")
        records: list[StepRecord] = []
        for lineno, row in enumerate(rows[1:], start=2):
            try:
                records.append(parse_row(row))
            except (ValueError, TypeError):
                raise ConfigError("run", f"{file} line {lineno} is damaged") from None
            if len(records) > 1 and records[-1].step <= records[-2].step:
                raise ConfigError("run", f"{file} line {lineno} is damaged: its step {records[-1].step} does not follow "
                                         f"step {records[-2].step}")
        return records

    def metrics_end(self) -> int | None:
        """The step the run's history reaches: its last complete metrics row, else the step it was continued from
        (origin_step); None when there is neither."""
        records = self.read_metrics()
        return records[-1].step if records else (self.origin_step() or None)

    def check_metrics_reach(self, step: int, records: list[StepRecord] | None = None) -> None:
        """Rows are flushed before every checkpoint, so rows that end before the checkpoint's step mean a cut file."""
        last = (self.metrics_end() or 0) if records is None else records[-1].step if records else self.origin_step()
        if last < step:
            raise ConfigError("run", f"{self.path / METRICS_FILE} ends at step {last:,}, before the checkpoint at step "
                                     f"{step:,}: the file was cut short, so the run's history is incomplete")

    def truncate_metrics(self, last_step: int) -> None:
        """Drop rows after `last_step` (written after the checkpoint a resume starts from)."""
        self.close()
        rows = self.read_metrics()
        kept = [r for r in rows if r.step <= last_step]
        file = self.path / METRICS_FILE
        if not kept:
            file.unlink(missing_ok=True)
        elif len(kept) < len(rows) or not _ends_a_line(file):  # atomic: a crash here loses no row
            atomic_write_bytes(file, (",".join(METRIC_COLUMNS) + "\n" + "".join(map(_row, kept))).encode())

    # -- probes ------------------------------------------------------------------------------------------------------
    def append_probe(self, record: ProbeRecord, keep: bool) -> None:
        """Append the record to probes.jsonl if `keep` (probe_log.kept: the file stays bounded); flushed with the
        metrics. A record left out is still written by `close` if no later one comes: the file ends where the run did."""
        if keep:
            self._write_probe(record)
        else:
            self._unwritten_probe = record

    def _write_probe(self, record: ProbeRecord) -> None:
        self._unwritten_probe = None
        if self._probes_fh is None:
            self._probes_fh = open(self.path / PROBES_FILE, "a", encoding="utf-8", newline="\n")
        self._probes_fh.write(probe_log.encode(record))

    def read_probes(self) -> list[ProbeRecord]:
        """Every readable probe record, oldest first; none for a folder written before probes were saved. A torn last
        line (a crash mid-write) or a damaged one is skipped with a warning: probes are pictures of the past, and the
        run (weights, curves) does not depend on them."""
        return [record for _, record in self._probe_lines()]

    def truncate_probes(self, last_step: int) -> None:
        """Drop records after `last_step` (a resume trains those steps again), and torn or damaged lines; thin the rest
        to PROBE_CAPACITY (history.Thinned), so resumes that raise a run's total keep the file bounded."""
        self.close()
        file = self.path / PROBES_FILE
        if not file.exists():
            return
        thinned: Thinned[bytes] = Thinned(PROBE_CAPACITY)
        for line, record in self._probe_lines():
            if record.step <= last_step:
                thinned.append(line)
        kept = thinned.items()
        if not kept:
            file.unlink(missing_ok=True)
        elif b"".join(kept) != file.read_bytes():  # atomic: a crash here loses no record
            atomic_write_bytes(file, b"".join(kept))

    def _probe_lines(self) -> list[tuple[bytes, ProbeRecord]]:
        """Each good line of probes.jsonl (with its newline) and its record."""
        file = self.path / PROBES_FILE
        if not file.exists():
            return []
        self.flush()
        lines = file.read_bytes().split(b"\n")
        if lines[-1]:
            log.warning("%s: skipping its last line, cut off mid-write", file)
        out: list[tuple[bytes, ProbeRecord]] = []
        for lineno, line in enumerate(lines[:-1], start=1):
            try:
                record = probe_log.decode(line)
            except DAMAGED as err:
                log.warning("%s: skipping line %d, which is damaged: %s", file, lineno, str(err)[:200])
                continue
            if out and record.step <= out[-1][1].step:
                log.warning("%s: skipping line %d: its step %d does not follow step %d", file, lineno, record.step,
                            out[-1][1].step)
                continue
            out.append((line + b"\n", record))
        return out

    # -- checkpoints -------------------------------------------------------------------------------------------------
    def save_checkpoint(self, state: dict[str, Any]) -> None:
        self.save_checkpoint_bytes(checkpoint_bytes(state))

    def save_checkpoint_bytes(self, data: bytes) -> None:
        """Write a checkpoint made by checkpoint_bytes (here, or by a worker on another machine)."""
        self.flush()  # metrics on disk always reach at least as far as the checkpoint
        atomic_write_bytes(self.path / CHECKPOINT_FILE, data)

    def has_checkpoint(self) -> bool:
        return (self.path / CHECKPOINT_FILE).is_file()

    def load_checkpoint(self, map_location: str | torch.device = "cpu") -> dict[str, Any]:
        """The checkpoint dict, read with weights_only=True (a pickle that runs code is refused)."""
        file = self.path / CHECKPOINT_FILE
        if not file.is_file():
            raise CheckpointError(f"{file} does not exist")
        return load_checkpoint_from(file, file, map_location)

    # -- samples -----------------------------------------------------------------------------------------------------
    def save_samples(self, record: SampleRecord) -> Path:
        folder = self.path / SAMPLES_DIR
        folder.mkdir(exist_ok=True)
        file = folder / f"step_{record.step:08d}.npz"
        arrays = {k: v for k, v in {
            "samples": record.samples.astype(np.float16), "labels": record.labels, "field": record.field,
            "arrows": record.arrows, "extent": None if record.extent is None else np.asarray(record.extent),
            "manifold": record.manifold,
        }.items() if v is not None}
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        atomic_write_bytes(file, buffer.getvalue())
        self._thin_samples(buffer.tell())
        self.events.add_samples(record)
        return file

    def _thin_samples(self, newest_bytes: int) -> None:
        """Keep the snapshots evenly spaced, as state.Thinned keeps them in memory: past the limit every second one
        goes (the first, what G drew untrained, stays), so the spacing doubles; a snapshot off that spacing is kept only
        while it is the newest."""
        steps = self.sample_steps()
        if len(steps) < 3:
            return
        keep = max(8, min(MAX_SNAPSHOTS, MAX_SNAPSHOT_BYTES // max(1, newest_bytes)))
        gap, older = steps[1] - steps[0], steps[:-1]
        drop = [s for s in older if (s - steps[0]) % gap]
        grid = [s for s in older if not (s - steps[0]) % gap]
        if len(grid) + 1 > keep:
            drop += grid[1::2]
        for s in drop:
            (self.path / SAMPLES_DIR / f"step_{s:08d}.npz").unlink(missing_ok=True)

    def sample_steps(self) -> list[int]:
        folder = self.path / SAMPLES_DIR
        if not folder.is_dir():
            return []
        return sorted(int(f.stem.split("_")[1]) for f in folder.glob("step_*.npz") if f.stem.split("_")[1].isdigit())

    def load_samples(self, step: int) -> SampleRecord:
        with np.load(self.path / SAMPLES_DIR / f"step_{step:08d}.npz", allow_pickle=False) as z:
            extent = tuple(float(v) for v in z["extent"]) if "extent" in z else None
            return SampleRecord(step, z["samples"].astype(np.float32), z["labels"] if "labels" in z else None,
                                z["field"] if "field" in z else None, extent, z["arrows"] if "arrows" in z else None,
                                z["manifold"] if "manifold" in z else None)  # absent from folders written before it

    def drop_samples_after(self, step: int) -> None:
        for s in self.sample_steps():
            if s > step:
                (self.path / SAMPLES_DIR / f"step_{s:08d}.npz").unlink(missing_ok=True)


def checkpoint_bytes(state: dict[str, Any]) -> bytes:
    """A checkpoint dict as the bytes of a checkpoint.pt."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def load_checkpoint_from(source: Path | io.BytesIO, name: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint dict read from a file or from bytes (`name` for messages), with weights_only=True: a pickle that
    runs code is refused."""
    try:
        state = torch.load(source, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for a truncated or hostile file
        raise CheckpointError(f"{name} cannot be read safely: {_load_failure(err)}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{name} does not hold a checkpoint dict")
    return state


def _row(record: StepRecord) -> str:
    """One metrics.csv line; a NaN (no gradient penalty) is an empty cell."""
    values = (getattr(record, c) for c in METRIC_COLUMNS)
    return ",".join("" if isinstance(v, float) and math.isnan(v) else f"{v:.6g}" if isinstance(v, float) else str(v)
                    for v in values) + "\n"


def _ends_a_line(file: Path) -> bool:
    with open(file, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"
