"""A run another app process trains, as this one sees it: read from its folder.

Of the app processes sharing a runs folder only the lease holder trains (gan_core.classroom.lease); the others' viewers
read each run from what the trainer writes as it goes: status.json (the owner's word on its status), metrics.csv rows
(flushed at least every second), probes.jsonl and the samples/ snapshots. A FolderTail reads only what was added since
it last looked, at most every REFRESH_S, and reads the whole history again when a file shrank (a resume that went back
to its checkpoint).
"""

from __future__ import annotations

import csv
import logging
import time
import zipfile
from pathlib import Path

from gan_core.runs import probe_log
from gan_core.runs.folder import DAMAGED, METRICS_FILE, STATUS_FILE, RunStore
from gan_core.runs.probe_log import PROBES_FILE
from gan_core.runs.state import RunState
from gan_core.runs.status import Status
from gan_core.train.records import METRIC_COLUMNS, parse_row

log = logging.getLogger(__name__)
REFRESH_S = 0.5  # a viewer in a process that does not train sees a run at most this much (plus a flush) late


class FolderTail:
    """Where this process got to in one run's files; `refresh` brings the RunState up to what they hold now."""

    def __init__(self, folder: Path) -> None:
        # taken before the run is first read: rows written meanwhile are read again, and skipped by their step
        self.metrics_at = _size(folder / METRICS_FILE)
        self.probes_at = _size(folder / PROBES_FILE)
        self.status_mtime: float | None = None
        self.checked = 0.0

    def refresh(self, run: RunState, *, force: bool = False) -> None:
        """Read what the trainer added to the folder since the last look (at most every REFRESH_S unless `force`)."""
        now = time.monotonic()
        if not force and now - self.checked < REFRESH_S:
            return
        self.checked = now
        store = run.store
        try:
            mtime = (store.path / STATUS_FILE).stat().st_mtime
        except OSError:  # deleted by its trainer, or not written yet: the scan drops or lists it
            return
        with run.cond:
            changed = mtime != self.status_mtime and _read_status(run, store)
            if changed:
                self.status_mtime = mtime
            if run.status.active or changed:
                changed = self._read_progress(run) or changed
            if changed:
                run.changed()

    def _read_progress(self, run: RunState) -> bool:
        folder = run.store.path
        metrics, probes = _size(folder / METRICS_FILE), _size(folder / PROBES_FILE)
        if metrics < self.metrics_at or probes < self.probes_at:  # cut back to a checkpoint: read it all again
            self.metrics_at, self.probes_at = metrics, probes
            run.reload_history()
            return True
        records, self.metrics_at = _metric_rows(folder / METRICS_FILE, self.metrics_at)
        new = [r for r in records if r.step > run.step]
        for record in new:
            run.metrics.append(record)
            run.recent.append(record)
        if new:
            run.step = new[-1].step
        lines, self.probes_at = _lines(folder / PROBES_FILE, self.probes_at)
        last_probe = run.probes.items()[-1].step if len(run.probes) else -1
        for line in lines:
            try:
                record = probe_log.decode(line)
            except DAMAGED:
                continue
            if record.step > last_probe:
                run.probes.append(record)
                last_probe = record.step
        samples = self._read_samples(run)
        return bool(new) or bool(lines) or samples

    @staticmethod
    def _read_samples(run: RunState) -> bool:
        items = run.samples.items()
        last = items[-1].step if items else -1
        read = False
        for step in run.store.sample_steps():
            if step <= last:
                continue
            try:
                run.samples.append(run.store.load_samples(step))
                read = True
            except (OSError, ValueError, KeyError, zipfile.BadZipFile):  # being written now: the next look reads it
                break
        return read


def _read_status(run: RunState, store: RunStore) -> bool:
    """The trainer's word on the run (status.json), applied; False when it cannot be read (mid-replace, damaged)."""
    saved = store.read_status()
    try:
        status = Status(saved["status"])
    except (KeyError, ValueError):
        return False
    run.status, run.error = status, str(saved.get("message", ""))[:500]
    value = saved.get("checkpoint_step")
    if isinstance(value, int) and not isinstance(value, bool):
        run.checkpoint_step = value
    run.where, run.acceleration = str(saved.get("where", run.where)), str(saved.get("acceleration", run.acceleration))
    run.trained_elsewhere = bool(saved.get("worker", False))
    return True


def _size(file: Path) -> int:
    try:
        return file.stat().st_size
    except OSError:
        return 0


def _lines(file: Path, offset: int) -> tuple[list[bytes], int]:
    """The complete lines of `file` from byte `offset`, and the offset after the last of them."""
    try:
        with open(file, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except OSError:
        return [], offset
    end = data.rfind(b"\n") + 1
    return data[:end].split(b"\n")[:-1], offset + end


def _metric_rows(file: Path, offset: int) -> tuple[list, int]:
    lines, offset = _lines(file, offset)
    records = []
    for row in csv.reader(line.decode("utf-8", "replace") for line in lines):
        if tuple(row) == METRIC_COLUMNS:
            continue
        try:
            record = parse_row(row)
        except (ValueError, TypeError):
            log.warning("%s: skipping a damaged row", file)
            continue
        records.append(record)
    return records, offset
