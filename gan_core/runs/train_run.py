"""A run folder trained from start to finish: `open_run` starts or resumes one at its last checkpoint, `train_loop` trains
it step by step, writing each step's metrics row, probe record and samples and a checkpoint every `checkpoint_every`
steps.

This is the one training loop. `python -m gan_core train` runs it through `train_to` (a progress bar; stop early by
returning True); a dashboard worker (gan_core.runs.worker), on this machine or on a Ray node, through `train_loop` with
hooks of its own (events to the server, pause and slow-motion steps, stop and release orders, the server-gone check).
What differs between them lives in `Hooks`; what a step writes, when a checkpoint is due and how a run ends live here.

The loop steps through `cuda_graphs.accelerate(trainer, "auto")`: on a CUDA device each step is replayed as a CUDA graph
where the step can be captured, otherwise (the CPU, or a failed capture, logged once) the Trainer's own eager step;
`Hooks.started` is told which. Checkpoints are the stepper's state_dict, which holds the GPU's generator too.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from enum import Enum
from pathlib import Path

import torch

from gan_core.config import ConfigError, TrainConfig
from gan_core.runs import probe_log
from gan_core.runs.folder import RunStore
from gan_core.runs.status import StepKind
from gan_core.train.cuda_graphs import Accelerate, EagerSteps, GraphSteps, accelerate
from gan_core.train.records import CheckpointError, Diverged, SampleRecord, StepResult
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


class Next(Enum):
    """What the loop does next, as its hooks answer before each step (or a StepKind: one slow-motion step)."""

    STEP = "step"  # one training step; at `until`, the end
    WAIT = "wait"  # nothing yet (the hooks waited, e.g. while paused): ask again
    STOP = "stop"  # checkpoint now and end before `until`


class Hooks:
    """What a caller adds to the loop. These defaults train straight to `until`; the CLI overrides `started` and
    `stepped` (its line on stderr and its progress bar), a dashboard worker every method."""

    def started(self, stepper: EagerSteps) -> None:
        """Before step 0's samples and the first step. `stepper.acceleration` says what runs the steps ("eager: why",
        or "cuda graphs (...)"); `stepper.trainer` is at the step the run resumes from."""

    def sampled(self, samples: SampleRecord) -> None:
        """Step 0's samples (what G makes before any training), just written to the folder."""

    def next(self, left: int) -> Next | StepKind:
        """Asked before each step, with the steps `left` until `until` (0: Next.STEP ends the run)."""
        return Next.STEP

    def stepped(self, result: StepResult | None, manual: StepKind | None) -> bool | None:
        """After each step, once it is written to the folder and checkpointed if due. `manual` is the slow-motion step
        it was (None for a Next.STEP); `result` is None for a D update alone, which records nothing. True: stop now
        (after a checkpoint)."""
        return None

    def checkpointed(self, step: int) -> None:
        """A checkpoint at `step` is on disk (the last good one a divergence or a failed write falls back to)."""


def train_loop(store: RunStore, trainer: Trainer, until: int | None = None, hooks: Hooks | None = None) -> int:
    """Train until step `until` (default: the config's total), or until the hooks stop it; returns the step reached.

    Each step is written as it is made; a checkpoint every `checkpoint_every` steps, at `until`, after a slow-motion
    step, and at a stop. A Diverged error propagates with the last good checkpoint untouched on disk. The store is left
    open (train_to closes it; a worker closes it once it has reported how the run ended).
    """
    until = trainer.config.steps if until is None else until
    hooks = hooks if hooks is not None else Hooks()
    stepper = accelerate(trainer, Accelerate.AUTO)
    if isinstance(stepper, GraphSteps) and store.has_checkpoint():
        # open_run loaded the Trainer's part of the checkpoint; the GPU generator's state ("rng_device") lives in the
        # stepper, so a resumed accelerated run draws what an uninterrupted one would
        stepper.load_state_dict(store.load_checkpoint(map_location=trainer.device))
    stepper.prepare()  # capture now (if at all), so that `started` can say which steps run
    hooks.started(stepper)
    if trainer.step_count == 0 and not store.sample_steps():
        first = trainer.snapshot()  # step 0: what G makes before any training
        store.save_samples(first)
        hooks.sampled(first)
    while True:
        action = hooks.next(max(0, until - trainer.step_count))
        if action is Next.WAIT:
            continue
        if action is Next.STOP:
            _checkpoint(store, stepper, hooks)
            return trainer.step_count
        if action is Next.STEP and trainer.step_count >= until:
            return trainer.step_count
        manual = action if isinstance(action, StepKind) else None
        result, saved = None, False
        if manual is StepKind.D:
            trainer.d_update()  # D's update alone counts no step: nothing to record (an eager one beside any graphs)
        else:  # a G step alone is an eager Trainer step with no D update; a full one runs as any other step
            result = stepper.step(0 if manual is StepKind.G else None)
            record_step(store, result, trainer.config)
            saved = checkpoint_if_due(store, stepper, until, force=manual is not None)
            if saved:
                hooks.checkpointed(trainer.step_count)
        if hooks.stepped(result, manual):
            if not saved:
                _checkpoint(store, stepper, hooks)
            return trainer.step_count


def train_to(store: RunStore, trainer: Trainer, until: int | None = None,
             on_step: Callable[[StepResult], bool | None] | Hooks | None = None) -> int:
    """train_loop, then close the store: `python -m gan_core train`. `on_step` sees each result (returning True stops
    early, after a checkpoint), or is a Hooks for more (the CLI's says which steps run)."""
    try:
        return train_loop(store, trainer, until, on_step if isinstance(on_step, Hooks) else _OnStep(on_step))
    finally:
        store.close()


class _OnStep(Hooks):
    def __init__(self, on_step: Callable[[StepResult], bool | None] | None) -> None:
        self.on_step = on_step

    def stepped(self, result: StepResult | None, manual: StepKind | None) -> bool | None:
        return self.on_step(result) if self.on_step is not None and result is not None else None


def _checkpoint(store: RunStore, stepper: EagerSteps, hooks: Hooks) -> None:
    save_checkpoint(store, stepper)
    hooks.checkpointed(stepper.trainer.step_count)


def record_step(store: RunStore, result: StepResult, config: TrainConfig) -> None:
    """Write one step to the run folder: its metrics row, and its probe record and samples if any (the probe record
    only where probe_log.kept says, so the file stays bounded)."""
    store.append_metrics(result.record)
    if result.probe is not None:
        store.append_probe(result.probe, keep=probe_log.kept(result.probe.step, config))
    if result.samples is not None:
        store.save_samples(result.samples)


def checkpoint_if_due(store: RunStore, steps: Trainer | EagerSteps, until: int, force: bool = False) -> bool:
    """Every checkpoint_every steps, at the last step, and whenever `force`d (a stop); says whether it wrote one."""
    trainer = steps.trainer if isinstance(steps, EagerSteps) else steps
    if force or trainer.step_count % trainer.config.checkpoint_every == 0 or trainer.step_count >= until:
        save_checkpoint(store, steps)
        return True
    return False


def save_checkpoint(store: RunStore, steps: Trainer | EagerSteps) -> None:
    """Checkpoint the trainer (through its stepper, whose state holds the GPU's generator too), unless its weights are
    no longer finite: an update whose loss was finite can still overflow (an infinite gradient makes Adam's step NaN),
    and writing that would replace the last good checkpoint."""
    state = steps.state_dict()
    largest = [t.detach().abs().amax().float() for net in ("generator", "discriminator") for t in state[net].values()
               if t.is_floating_point() and t.numel()]  # amax passes a NaN on
    if largest and not bool(torch.isfinite(torch.stack(largest)).all()):  # one device sync for every tensor
        raise Diverged(int(state["step"]), "a weight")
    store.save_checkpoint(state)
