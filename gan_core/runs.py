"""Runs: a Trainer bound to its run folder. `open_run` starts or resumes one; `train_to` trains it and records it.

The CLI and the dashboard's background runs share these two functions, so a run trained from either is the same run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from gan_core.config import TrainConfig
from gan_core.store import RunStore
from gan_core.trainer import CheckpointError, StepResult, Trainer


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
    every = trainer.config.checkpoint_every
    try:
        if trainer.step_count == 0 and not store.sample_steps():
            store.save_samples(trainer.snapshot())  # step 0: what G makes before any training
        while trainer.step_count < until:
            result = trainer.step()
            store.append_metrics(result.record)
            if result.samples is not None:
                store.save_samples(result.samples)
            stop = bool(on_step(result)) if on_step else False
            if trainer.step_count % every == 0 or trainer.step_count >= until or stop:
                store.save_checkpoint(trainer.state_dict())
            if stop:
                break
    finally:
        store.close()
    return trainer.step_count
