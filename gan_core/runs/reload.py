"""A run as the last process left it, read back from its folder: at the manager's start (after a restart or a crash) and
when the CLI trained a folder while the server ran. A damaged folder becomes a failed run that says why, so every other
run is still listed. FolderScanner finds the folders to read: new ones only, never a link or a name that is not a run id."""

from __future__ import annotations

import logging
import math
from collections.abc import Container
from pathlib import Path

import torch

from gan_core.config import ConfigError, TrainConfig
from gan_core.data import load_dataset
from gan_core.runs.folder import CONFIG_FILE, DAMAGED, RunStore, is_run_id
from gan_core.runs.state import RunState
from gan_core.runs.status import Status
from gan_core.runs.worker import REAL_POINTS
from gan_core.train.records import CheckpointError

log = logging.getLogger(__name__)

MESSAGE_MAX = 500  # a saved failure message is shown in the sidebar: a damaged or forged one is cut here


class FolderScanner:
    """The run folders in `runs_dir` not seen before; cheap when nothing changed (one stat of the folder)."""

    def __init__(self, runs_dir: Path) -> None:
        self.runs_dir = runs_dir
        self._mtime: float | None = None
        self._skipped: set[str] = set()  # folders not listed, each logged once
        self.present: set[str] | None = None  # every name in the folder at its last listing

    def rescan(self) -> None:
        """List the folder at the next call even if its time stamp did not change (two changes within its resolution)."""
        self._mtime = None

    def new_folders(self, known: Container[str]) -> list[Path]:
        try:
            mtime = self.runs_dir.stat().st_mtime
        except OSError:
            return []
        if mtime == self._mtime:
            return []
        try:
            folders = sorted(self.runs_dir.iterdir())
        except OSError as err:  # not a folder (any more): nothing new to list
            log.warning("cannot list the runs folder %s: %s", self.runs_dir, err)
            return []
        self._mtime = mtime
        self.present = {folder.name for folder in folders}
        found = []
        for folder in folders:
            if folder.name in known or not (folder / CONFIG_FILE).is_file():
                continue
            if folder.is_symlink() or folder.resolve().parent != self.runs_dir.resolve():
                # a link would list (and serve the files of) a folder anywhere on the machine
                self._skip_once(folder, "it is a symbolic link, or resolves outside the runs folder")
            elif not is_run_id(folder.name):
                # a folder renamed or made by hand: its name would be shown (as Markdown) on every page
                self._skip_once(folder, "its name is not a run id (lower-case letters, digits, - and _; at most 64)")
            else:
                found.append(folder)
        return found

    def _skip_once(self, folder: Path, why: str) -> None:
        if folder.name not in self._skipped:
            self._skipped.add(folder.name)
            log.warning("not listing the run folder %s: %s", folder, why)


def load_run(folder: Path, data_dir: str | None = None) -> tuple[RunState, str | None]:
    """The run in `folder` and the session that owns it (None: the presenter's alone)."""
    try:
        run = _load(folder, data_dir)
    except Exception as err:
        log.exception("cannot load the run in %s", folder)
        run = RunState(folder.name, RunStore(folder), TrainConfig(), 0.0)
        run.status, run.error, run.resumable = Status.FAILED, f"cannot be read: {err}", False
    owner = RunStore(folder).read_status().get("owner")
    return run, owner if isinstance(owner, str) else None


def _load(folder: Path, data_dir: str | None) -> RunState:
    """A run from its folder, as the last process left it. A damaged folder becomes a failed run that says why."""
    store = RunStore(folder)
    saved = store.read_status()
    try:
        created = float(saved["created"])
        if not math.isfinite(created):  # 1e999 reads as inf: no date to show or sort by
            raise ValueError(created)
    except DAMAGED:  # status.json only adds detail: a damaged one costs nothing else
        created = (folder / CONFIG_FILE).stat().st_mtime
    try:
        config = store.read_config()
    except ConfigError as err:
        run = RunState(folder.name, store, TrainConfig(), created)
        run.status, run.error, run.resumable = Status.FAILED, f"cannot be opened: {err}", False
        return run
    run = RunState(folder.name, store, config, created)
    try:
        run.reload_history()
        run.checkpoint_step = int(store.load_checkpoint()["step"]) if store.has_checkpoint() else 0
        store.check_metrics_reach(run.checkpoint_step, list(run.recent))
        _load_real(run, data_dir)
    except (ConfigError, CheckpointError, OSError, ValueError, KeyError) as err:
        run.status, run.error, run.resumable = Status.FAILED, f"cannot be read: {err}", False
        return run
    status = saved.get("status")
    if status in (Status.DIVERGED.value, Status.FAILED.value):
        run.status, run.error = Status(status), str(saved.get("message", ""))[:MESSAGE_MAX]
    elif run.step >= config.steps:
        run.status = Status.FINISHED
    elif status == Status.QUEUED.value:
        run.status = Status.QUEUED  # it never had a worker: the manager queues it again
    else:
        run.status = Status.STOPPED  # it was running or paused when the server stopped
        if status in (Status.RUNNING.value, Status.PAUSED.value):  # not stopped cleanly
            run.error = "interrupted when the server stopped"
    return run


def _load_real(run: RunState, data_dir: str | None) -> None:
    if not run.config.dataset.is_2d:
        return
    data = load_dataset(run.config, data_dir)
    real, _ = data.sample(REAL_POINTS, torch.Generator().manual_seed(run.config.seed))
    run.real = real.numpy()
    run.modes = data.modes.numpy() if data.modes is not None else None
