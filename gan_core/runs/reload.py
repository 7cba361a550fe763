"""A run as the last process left it, read back from its folder: at the manager's start (after a restart or a crash) and
when the CLI trained a folder while the server ran. A damaged folder becomes a failed run that says why, so every other
run is still listed."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from gan_core.config import ConfigError, TrainConfig
from gan_core.data import load_dataset
from gan_core.runs.folder import CONFIG_FILE, RunStore
from gan_core.runs.state import RunState
from gan_core.runs.status import Status
from gan_core.runs.worker import REAL_POINTS
from gan_core.train.records import CheckpointError

log = logging.getLogger(__name__)


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
    except (KeyError, TypeError, ValueError):  # status.json only adds detail: a damaged one costs nothing else
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
        run.status, run.error = Status(status), str(saved.get("message", ""))
    elif run.step >= config.steps:
        run.status = Status.FINISHED
    else:
        run.status = Status.STOPPED  # it was queued, running or paused when the server stopped
        if status in (Status.QUEUED.value, Status.RUNNING.value, Status.PAUSED.value):  # not stopped cleanly
            run.error = "interrupted when the server stopped"
    return run


def _load_real(run: RunState, data_dir: str | None) -> None:
    if not run.config.dataset.is_2d:
        return
    data = load_dataset(run.config, data_dir)
    real, _ = data.sample(REAL_POINTS, torch.Generator().manual_seed(run.config.seed))
    run.real = real.numpy()
    run.modes = data.modes.numpy() if data.modes is not None else None
