"""How a sweep's cells ended: each run's status and, once it finished, the evaluation of its last checkpoint (what
`python -m gan_core eval` prints: 2D mixtures modes covered and high-quality share, images classes covered and FCD).

An evaluation takes a second or so (samples, then the classifier); it is cached in the run's folder as outcomes.json,
keyed by the checkpoint file's size and time, so a page that redraws every few seconds, or the next server, reads it
instead, and a run resumed to more steps is evaluated again. `rows` gives a page its table and `outcome_grid` one
figure over the grid (a heatmap's numbers); `follow` waits for a sweep's cells, calling back as each ends (the CLI's
progress lines); `write_summary` writes summary.csv and .json.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gan_core.config import ConfigError
from gan_core.evaluation.evaluate import evaluate_run
from gan_core.runs.folder import CHECKPOINT_FILE, DAMAGED, RunStore, atomic_write_bytes
from gan_core.runs.manager import RunManager
from gan_core.runs.status import Status
from gan_core.sweeps.record import Sweep, SweepCell
from gan_core.train.records import CheckpointError
from gan_core.train.trainer import Trainer

log = logging.getLogger(__name__)
OUTCOMES_FILE = "outcomes.json"
SUMMARY_CSV, SUMMARY_JSON = "summary.csv", "summary.json"
OUTCOMES_VERSION = 1  # a cached evaluation from another version of this file is computed again
EVAL_SEED = 0  # the same samples every time: a cell's numbers do not change from one look to the next
# The outcome figures a table shows, per kind of data (the rest of the evaluation is kept in summary.json).
KEYS_2D = ("modes_covered", "modes_total", "high_quality_fraction")
KEYS_IMAGES = ("classes_covered", "fcd")
_locks: dict[Path, threading.Lock] = {}  # two viewers of one finished run evaluate it once, not twice
_locks_guard = threading.Lock()


@dataclass(frozen=True)
class CellRow:
    """One cell as it stands: its run's status (None: the run was deleted), step and message, and the evaluation once
    it finished (None before, and for a run that ended otherwise)."""

    cell: SweepCell
    status: Status | None
    step: int
    message: str
    outcomes: Mapping[str, Any] | None

    @property
    def ended(self) -> bool:
        return self.status is None or not self.status.active

    def figures(self) -> dict[str, Any]:
        """The outcome figures a table shows (see KEYS_2D, KEYS_IMAGES); empty without outcomes."""
        found = self.outcomes or {}
        return {k: found[k] for k in (*KEYS_2D, *KEYS_IMAGES) if k in found}

    def describe(self) -> str:
        """The outcome in words for a progress line or a cell's caption: "modes 7/8 · high quality 41%", "classes 10/10 ·
        FCD 3.2"; the run's message when there is none."""
        found = self.outcomes or {}
        if "modes_covered" in found:
            return f"modes {found['modes_covered']}/{found['modes_total']} · high quality {found['high_quality_fraction']:.0%}"
        if "classes_covered" in found:
            total = len(found.get("class_histogram") or ()) or "?"
            return f"classes {found['classes_covered']}/{total} · FCD {found['fcd']:.3g}"
        return self.message


def run_outcomes(run_dir: str | os.PathLike, data_dir: str | os.PathLike | None = None, *,
                 compute: bool = True) -> dict[str, Any] | None:
    """The evaluation of the run's last checkpoint (None without one), from outcomes.json when it is of that
    checkpoint, else computed on the CPU and cached there (`compute` False: None instead). Call it for ended runs: a
    checkpoint being written is read whole (atomic replace), but would be evaluated again at once."""
    run_dir = Path(run_dir)
    try:
        stat = (run_dir / CHECKPOINT_FILE).stat()
    except FileNotFoundError:
        return None
    key = {"version": OUTCOMES_VERSION, "checkpoint_bytes": stat.st_size, "checkpoint_mtime_ns": stat.st_mtime_ns,
           "seed": EVAL_SEED}
    with _locks_guard:
        lock = _locks.setdefault(run_dir.resolve(), threading.Lock())
    with lock:
        cached = _read_cache(run_dir / OUTCOMES_FILE)
        if cached is not None and cached.get("key") == key and isinstance(cached.get("outcomes"), dict):
            return cached["outcomes"]
        if not compute:
            return None
        store = RunStore(run_dir)
        trainer = Trainer(store.read_config(), device="cpu", data_dir=data_dir)
        trainer.load_state_dict(store.load_checkpoint())
        outcomes = evaluate_run(trainer, seed=EVAL_SEED)
        try:
            atomic_write_bytes(run_dir / OUTCOMES_FILE, json.dumps({"key": key, "outcomes": outcomes}).encode())
        except OSError as err:  # a read-only folder costs the next look a recomputation, nothing else
            log.warning("cannot cache the outcomes of %s: %s", run_dir, err)
        return outcomes


def _read_cache(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except DAMAGED as err:
        log.warning("%s cannot be read (%s: %s): evaluating again", path, type(err).__name__, err)
        return None
    return data if isinstance(data, dict) else None


def row(manager: RunManager, cell: SweepCell, *, evaluate: bool = True) -> CellRow:
    """One cell's row; `evaluate`: compute a finished run's outcomes if they are not cached yet (else only the cached
    ones are read, None for the rest)."""
    if cell.run_id not in manager:
        manager.scan()  # a run the CLI trained into this folder while the server ran; a deleted one stays gone
    try:
        snap = manager.snapshot(cell.run_id)
    except ConfigError:  # no such run (any more): deleted, by hand or by the disk budget's housekeeping
        return CellRow(cell, None, 0, "the run was deleted", None)
    outcomes = None
    if snap.status is Status.FINISHED:
        try:
            outcomes = run_outcomes(snap.path, manager.data_dir, compute=evaluate)
        except (ConfigError, CheckpointError, OSError) as err:  # its folder was damaged since: the row says so
            return CellRow(cell, snap.status, snap.step, f"cannot evaluate: {err}", None)
    return CellRow(cell, snap.status, snap.step, snap.message, outcomes)


def rows(manager: RunManager, sweep: Sweep, *, evaluate: bool = True) -> list[CellRow]:
    """Every cell's row, in the sweep's order."""
    return [row(manager, cell, evaluate=evaluate) for cell in sweep.cells]


def follow(manager: RunManager, sweep: Sweep, on_end: Callable[[CellRow], None] | None = None,
           poll_s: float = 0.25, timeout: float | None = None) -> list[CellRow]:
    """Wait until every cell's run has ended, calling `on_end` with each cell's row (outcomes evaluated) as it ends;
    returns the rows in the sweep's order. TimeoutError after `timeout` seconds (None: no limit)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    done: dict[str, CellRow] = {}
    while len(done) < len(sweep.cells):
        for cell in sweep.cells:
            if cell.run_id in done:
                continue
            try:
                if manager.status(cell.run_id).active:
                    continue
            except ConfigError:  # deleted: ended, as far as the sweep goes
                pass
            done[cell.run_id] = row(manager, cell)
            if on_end is not None:
                on_end(done[cell.run_id])
        if len(done) < len(sweep.cells):
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"sweep {sweep.id}: {len(sweep.cells) - len(done)} cells still running "
                                   f"after {timeout} s")
            time.sleep(poll_s)
    return [done[cell.run_id] for cell in sweep.cells]


@dataclass(frozen=True)
class OutcomeGrid:
    """One outcome figure over the grid, averaged over seeds: a heatmap's numbers. `mean[i, j]` is row value i and
    column value j (one column when the sweep has one field); NaN where no seed has the figure yet."""

    key: str
    row_field: str
    row_values: tuple[Any, ...]
    column_field: str | None
    column_values: tuple[Any, ...]
    mean: np.ndarray  # (rows, columns) float
    seeds: np.ndarray  # (rows, columns) int: how many seeds the mean is over


def outcome_grid(sweep: Sweep, cell_rows: list[CellRow], key: str) -> OutcomeGrid:
    """`key` (one of KEYS_2D or KEYS_IMAGES) per grid point, averaged over the seeds that have it."""
    row_field, *rest = sweep.fields
    column_field = rest[0] if rest else None
    row_values = tuple(sweep.values(row_field))
    column_values = tuple(sweep.values(column_field)) if column_field else (None,)
    total = np.zeros((len(row_values), len(column_values)))
    seeds = np.zeros(total.shape, dtype=int)
    for r in cell_rows:
        value = (r.outcomes or {}).get(key)
        if value is None:
            continue
        i = row_values.index(r.cell.settings[row_field])
        j = column_values.index(r.cell.settings[column_field]) if column_field else 0
        total[i, j] += float(value)
        seeds[i, j] += 1
    with np.errstate(invalid="ignore"):  # 0 / 0: no seed has it yet, NaN by design
        mean = total / seeds
    return OutcomeGrid(key, row_field, row_values, column_field, column_values if column_field else (), mean, seeds)


def table(sweep: Sweep, cell_rows: list[CellRow]) -> list[dict[str, Any]]:
    """One flat dict per cell: cell, the grid values, seed, run_id, status, step, message, then the outcome figures."""
    return [{"cell": r.cell.name, **r.cell.settings, "seed": r.cell.seed, "run_id": r.cell.run_id,
             "status": "deleted" if r.status is None else r.status.value, "step": r.step, "message": r.message,
             **r.figures()} for r in cell_rows]


def write_summary(out_dir: str | os.PathLike, sweep: Sweep, cell_rows: list[CellRow]) -> tuple[Path, Path]:
    """summary.csv (the table) and summary.json (the sweep's record and each cell's whole evaluation) in `out_dir`."""
    out = Path(out_dir)
    flat = table(sweep, cell_rows)
    columns = list(dict.fromkeys(k for r in flat for k in r))  # every row's keys, first seen first
    text = io.StringIO()
    writer = csv.DictWriter(text, columns, lineterminator="\n")
    writer.writeheader()
    # true/false as the config's fields and the CLI's --set spell them, not Python's True/False
    writer.writerows({k: str(v).lower() if isinstance(v, bool) else v for k, v in r.items()} for r in flat)
    atomic_write_bytes(out / SUMMARY_CSV, text.getvalue().encode())
    full = [{**f, "outcomes": r.outcomes} for f, r in zip(flat, cell_rows, strict=True)]
    atomic_write_bytes(out / SUMMARY_JSON, json.dumps({"sweep": sweep.to_dict(), "rows": full}, indent=1).encode())
    return out / SUMMARY_CSV, out / SUMMARY_JSON
