"""A run folder trained from start to finish: `open_run` starts or resumes one at its last checkpoint, `train_to` trains
it step by step, writing each step's metrics row, probe record and samples and a checkpoint every `checkpoint_every`
steps.

`python -m gan_core train` is these two calls; a dashboard worker (gan_core.runs.worker) runs the same ones.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch

from gan_core.config import ConfigError, TrainConfig
from gan_core.runs import probe_log
from gan_core.runs.folder import RunStore
from gan_core.train.records import CheckpointError, Diverged, StepResult
from gan_core.train.trainer import Trainer


def open_run(path: str | os.PathLike | RunStore, config: TrainConfig | None = None, *, steps: int | None = None,
             device: str = "cpu", data_dir: str | os.PathLike | None = None) -> tuple[RunStore, Trainer]:
    """With a config: a new run in `path`. Without: the run already there, at its last checkpoint (or step 0).

    `path` may be a store already (a Ray worker's relay store: gan_core.runs.ray_relay). `steps` changes a resumed
    run's total (never below the steps done); the folder's config.json is updated to say so.
    """
    store = path if isinstance(path, RunStore) else RunStore(Path(path))
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
        store.check_metrics_reach(trainer.step_count)
        if steps is not None and steps < trainer.step_count:  # checked before config.json is rewritten
            raise ConfigError("steps", f"{steps:,} is fewer than the {trainer.step_count:,} steps this run has done; "
                                       "a run cannot train backwards")
    elif store.metrics_end() is not None:
        raise CheckpointError(f"{store.path} has metrics but no checkpoint.pt to resume from")
    store.write_config(config)
    store.truncate_metrics(trainer.step_count)  # rows written after the checkpoint will be trained again
    store.truncate_probes(trainer.step_count)
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
            record_step(store, result, trainer.config)
            stop = bool(on_step(result)) if on_step else False
            checkpoint_if_due(store, trainer, until, force=stop)
            if stop:
                break
    finally:
        store.close()
    return trainer.step_count


def record_step(store: RunStore, result: StepResult, config: TrainConfig) -> None:
    """Write one step to the run folder: its metrics row, and its probe record and samples if any (the probe record
    only where probe_log.kept says, so the file stays bounded)."""
    store.append_metrics(result.record)
    if result.probe is not None:
        store.append_probe(result.probe, keep=probe_log.kept(result.probe.step, config))
    if result.samples is not None:
        store.save_samples(result.samples)


def checkpoint_if_due(store: RunStore, trainer: Trainer, until: int, force: bool = False) -> None:
    """Every checkpoint_every steps, at the last step, and whenever `force`d (a stop)."""
    if force or trainer.step_count % trainer.config.checkpoint_every == 0 or trainer.step_count >= until:
        save_checkpoint(store, trainer)


def save_checkpoint(store: RunStore, trainer: Trainer) -> None:
    """Checkpoint the trainer, unless its weights are no longer finite: an update whose loss was finite can still
    overflow (an infinite gradient makes Adam's step NaN), and writing that would replace the last good checkpoint."""
    state = trainer.state_dict()
    largest = [t.detach().abs().amax().float() for net in ("generator", "discriminator") for t in state[net].values()
               if t.is_floating_point() and t.numel()]  # amax passes a NaN on
    if largest and not bool(torch.isfinite(torch.stack(largest)).all()):  # one device sync for every tensor
        raise Diverged(trainer.step_count, "a weight")
    store.save_checkpoint(state)


