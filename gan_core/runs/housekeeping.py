"""The runs folder's disk: a budget, and the leftovers a crash or a delete can leave behind.

A classroom fills a disk without meaning to: thirty students' runs, snapshots, uploads. The RunManager calls these
functions at its start and every HOUSEKEEPING_S seconds: past the budget the oldest ended student runs go first (never
an active run, never the presenter's), temp files of writes cut short by a kill are removed once old enough that no
writer can still hold them, and uploads no run uses are removed. Every removal is logged.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from gan_core.config import ConfigError
from gan_core.runs.uploads import UPLOADS_DIR

log = logging.getLogger(__name__)

BUDGET_ENV = "GAN_DISK_BUDGET_MB"
DEFAULT_BUDGET_MB = 5_000  # a classroom term of runs is ~1 GB (BENCHMARKS.md); a laptop spares 5 GB without notice
HOUSEKEEPING_S = 30.0
TEMP_AGE_S = 300.0  # a temp file this old has no writer left: the largest checkpoint is written in seconds
UPLOAD_AGE_S = 3600.0  # an upload no run uses after an hour was never going to be used
DELETING_PREFIX = ".deleting-"  # a run folder being removed: renamed first, so it is never listed again


def budget_bytes() -> int | None:
    """GAN_DISK_BUDGET_MB in bytes (default DEFAULT_BUDGET_MB); 0 turns the budget off (None)."""
    raw = os.environ.get(BUDGET_ENV, "").strip()
    if not raw:
        return DEFAULT_BUDGET_MB * 1_000_000
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(BUDGET_ENV, f"{raw!r} is not a whole number of megabytes (0 turns the budget off)") from None
    if value < 0:
        raise ConfigError(BUDGET_ENV, f"{value} is below 0 (0 turns the budget off)")
    return value * 1_000_000 if value else None


def folder_bytes(path: Path) -> int:
    """Bytes in the files under `path` (links not followed); a file that vanishes meanwhile counts 0."""
    total = 0
    try:
        entries = list(os.scandir(path))
    except OSError:
        return 0
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                total += folder_bytes(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                total += entry.stat(follow_symlinks=False).st_size
        except OSError:
            continue
    return total


@dataclass(frozen=True)
class RunDisk:
    """What the budget needs to know of one run."""

    id: str
    owner: str | None  # None: the presenter's (or the CLI's): never removed for the budget
    active: bool  # queued, running or paused: never removed
    created: float
    bytes: int


def over_budget(runs: Iterable[RunDisk], used: int, budget: int) -> list[RunDisk]:
    """The runs to remove to bring `used` bytes within `budget`: the oldest ended student runs first, as few as needed.
    May not reach the budget: what is left is active or the presenter's."""
    victims: list[RunDisk] = []
    for run in sorted((r for r in runs if r.owner is not None and not r.active), key=lambda r: (r.created, r.id)):
        if used <= budget:
            break
        victims.append(run)
        used -= run.bytes
    return victims


def keep_budget(runs_dir: Path, runs: list[RunDisk], budget: int, remove: Callable[[str], None]) -> str:
    """Remove (with `remove(run_id)`, logged) the runs over_budget picks; returns why students may not start runs now:
    "" within the budget, else the figures and what to do."""
    used = sum(r.bytes for r in runs) + folder_bytes(runs_dir / UPLOADS_DIR)
    for victim in over_budget(runs, used, budget):
        try:
            remove(victim.id)
        except ConfigError as err:  # started again, or deleted, since the sizes were taken
            log.info("disk budget: kept %s: %s", victim.id, err)
            continue
        used -= victim.bytes
        log.warning("disk budget: removed the run %s (%.1f MB, started by a student session) to keep %s within %.0f MB",
                    victim.id, victim.bytes / 1e6, runs_dir, budget / 1e6)
    if used <= budget:
        return ""
    return (f"the runs folder is over its disk budget ({used / 1e6:,.0f} MB of {budget / 1e6:,.0f} MB, {BUDGET_ENV}) "
            "with nothing a student started left to remove: ask the presenter to delete runs")


def remove_leftovers(runs_dir: Path, *, min_age_s: float = TEMP_AGE_S) -> list[Path]:
    """Remove what interrupted writes and deletes left in the runs folder: `.<name>.*.tmp` files (atomic writes cut
    short) in its top level (predictions.json, comparisons.json), in run folders, their samples/ and uploads/, older
    than `min_age_s`; and `.deleting-*` folders. Returns what was removed."""
    removed: list[Path] = []
    now = time.time()
    try:
        folders = [p for p in runs_dir.iterdir() if p.is_dir() and not p.is_symlink()]
    except OSError:
        return removed
    for folder in [None, *folders]:  # None: the top level itself
        if folder is not None and folder.name.startswith(DELETING_PREFIX):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
            continue
        for place in (runs_dir,) if folder is None else (folder, folder / "samples"):
            for tmp in place.glob(".*.tmp") if place.is_dir() else ():
                try:
                    if tmp.is_file() and now - tmp.stat().st_mtime >= min_age_s:
                        tmp.unlink()
                        removed.append(tmp)
                except OSError:
                    continue
    for path in removed:
        log.warning("removed %s: left by a write or delete that did not finish", path)
    return removed


def remove_unused_uploads(runs_dir: Path, used: Iterable[str], *, min_age_s: float = UPLOAD_AGE_S) -> list[Path]:
    """Remove uploaded CSVs that no run's config names (`used`: the runs' points_csv values), once `min_age_s` old (an
    upload is made just before its run is started). Returns what was removed."""
    folder = runs_dir / UPLOADS_DIR
    if not folder.is_dir():
        return []
    keep = {resolved(p) for p in used if p}
    now = time.time()
    removed = []
    for path in folder.glob("*.csv"):
        try:
            if resolved(path) not in keep and now - path.stat().st_mtime >= min_age_s:
                path.unlink()
                removed.append(path)
        except OSError:
            continue
    for path in removed:
        log.warning("removed the upload %s: no run uses it", path)
    return removed


def remove_upload_of(runs_dir: Path, upload: str, others: Iterable[str]) -> None:
    """A deleted run's uploaded CSV goes with it, unless another run uses it too."""
    if not upload or resolved(upload).parent != resolved(runs_dir / UPLOADS_DIR):
        return
    if resolved(upload) not in {resolved(p) for p in others if p}:
        Path(upload).unlink(missing_ok=True)


def resolved(path: str | os.PathLike) -> Path:
    """`path` made absolute with links resolved: two spellings of one file compare equal."""
    try:
        return Path(path).resolve()
    except OSError:
        return Path(path)
