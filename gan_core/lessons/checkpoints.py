"""A saved generator brought back from a checkpoint file a user uploads, and new samples drawn from it.

After training, G's weights are what is kept: they turn new noise z into new samples. D was only G's teacher and can be
dropped. A checkpoint (the dashboard's download, or a CLI run's checkpoint.pt) holds both networks, their optimisers and
the run's config. Sampling reads only the config and G; `continue_from` makes a new run folder from all of it, so
training goes on where the file stopped.

An uploaded file is hostile input. It is refused with one line, before anything is built from it, unless it is at most
MAX_CHECKPOINT_BYTES; `torch.load(weights_only=True)` reads it (no pickled code runs); it is a dict in this engine's
checkpoint format whose config passes TrainConfig's validation (MAX_PARAMETERS included); and its generator weights are
finite tensors that match, name for name and shape for shape, the G that config builds. The config's `points_csv` path
is never opened: sampling needs no data, and a CSV-points run is not continued.
"""

from __future__ import annotations

import io
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gan_core.config import ConfigError, Dataset, TrainConfig
from gan_core.data import to_data_range
from gan_core.runs.folder import RunStore, _load_failure, sanitize_name
from gan_core.runs.status import Status
from gan_core.runs.uploads import MAX_UPLOAD_BYTES, MB
from gan_core.train.models import build_models, inference
from gan_core.train.records import CheckpointError
from gan_core.train.trainer import CHECKPOINT_FORMAT, Trainer

FIELD = "checkpoint"  # the field every refusal names
# Streamlit holds an upload in memory before any check runs, and its server.maxUploadSize is MAX_UPLOAD_BYTES: a bigger
# checkpoint (up to 192 MB at MAX_PARAMETERS) is sampled on the server with `python -m gan_core sample` instead.
MAX_CHECKPOINT_BYTES = MAX_UPLOAD_BYTES
N_CLASSES = 10  # every labelled dataset has ten classes (as config.weight_counts assumes)
MAX_SAMPLES = 256  # one upload's sample batch: enough for a grid, small enough for any config MAX_PARAMETERS allows
_names_lock = threading.Lock()  # two uploads continued in the same second must not take the same run id


@dataclass(frozen=True)
class SavedGenerator:
    """A checkpoint's G at the step it was saved, in eval mode (batch norm uses its running statistics)."""

    config: TrainConfig
    step: int
    generator: nn.Module

    @property
    def n_classes(self) -> int:
        return N_CLASSES if self.config.conditional else 0

    def sample(self, n: int, seed: int, label: int | None = None) -> np.ndarray:
        """n samples from new noise drawn with `seed` (a conditional G makes class `label`, 0 when None): 2D data as
        (n, 2) points, images as (n, C, H, W) in [0, 1]."""
        if not 1 <= n <= MAX_SAMPLES:
            raise ValueError(f"n: {n} is not between 1 and {MAX_SAMPLES}")
        if label is not None and not 0 <= label < max(self.n_classes, 1):
            raise ValueError(f"label: {label} is not a class of this generator (0 to {self.n_classes - 1})")
        z = torch.randn(n, self.config.z_dim, generator=torch.Generator().manual_seed(seed))
        with inference(self.generator), torch.no_grad():
            if self.config.conditional:
                onehot = F.one_hot(torch.full((n,), label or 0), self.n_classes).float()
                out = self.generator(z, onehot)
            else:
                out = self.generator(z)
        return to_data_range(out, self.config).float().numpy()


def _refuse(message: str) -> ConfigError:
    return ConfigError(FIELD, message)


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()[:200]


def read_checkpoint(data: bytes) -> SavedGenerator:
    """The generator saved in a checkpoint's bytes; ConfigError("checkpoint", one line) for anything else."""
    return _read(data)[0]


def _read(data: bytes) -> tuple[SavedGenerator, dict]:
    """The checked generator, and the whole checkpoint dict it came from."""
    if len(data) > MAX_CHECKPOINT_BYTES:
        raise _refuse(f"the file is {len(data) / MB:.1f} MB; the limit is {MAX_CHECKPOINT_BYTES / MB:.0f} MB "
                      "(sample a bigger run on the server: python -m gan_core sample --run DIR)")
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for a truncated, foreign or hostile file
        raise _refuse(f"not a checkpoint this app can read safely: {_load_failure(err)}") from None
    if not isinstance(state, dict) or "generator" not in state or "config" not in state:
        raise _refuse("not a GAN checkpoint: it needs the 'config' and 'generator' entries this app's checkpoints hold")
    if state.get("format") != CHECKPOINT_FORMAT:
        raise _refuse(f"checkpoint format {_one_line(repr(state.get('format')))[:40]} is not {CHECKPOINT_FORMAT}")
    if not isinstance(state["config"], dict):
        raise _refuse("its config is not a table of settings")
    try:
        config = TrainConfig.from_dict(state["config"])  # every limit, MAX_PARAMETERS included, before building G
    except ConfigError as err:
        raise _refuse(f"its config is refused: {_one_line(str(err))}") from None
    step = state.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise _refuse("its step is not a whole number ≥ 0")
    weights = state["generator"]
    if not isinstance(weights, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                for k, v in weights.items()):
        raise _refuse("its generator is not a table of named tensors")
    if not all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point()):
        raise _refuse("its generator holds NaN or infinite weights (a run that diverged)")
    generator, _ = build_models(config, config.dataset.shape, N_CLASSES)
    try:
        generator.load_state_dict(weights, strict=True)
    except RuntimeError as err:
        why = _one_line(str(err).partition(":")[2] or str(err))  # torch's first line only names the module class
        raise _refuse(f"its generator does not match its own config: {why}") from None
    generator.eval()
    return SavedGenerator(config=config, step=step, generator=generator), state


def continue_from(data: bytes, runs_dir: str | os.PathLike, more_steps: int, *, owner: str | None = None,
                  data_dir: str | os.PathLike | None = None) -> str:
    """A new run folder in `runs_dir` that continues an uploaded checkpoint for `more_steps` steps: D, the optimisers
    and the random state as saved, so training goes on where it stopped. Returns the run id; the run is "stopped" and
    the manager's resume trains it. Everything is checked first, by the same Trainer a worker builds (the whole
    checkpoint against its own config); nothing is written for a refused file. A CSV-points run is refused: its
    config names a file on the machine that trained it, which this server must not read for a stranger."""
    saved, state = _read(data)
    config = saved.config
    if config.dataset is Dataset.POINTS:
        raise _refuse("a run on uploaded CSV points continues only from its own folder on its server (Resume there)")
    if isinstance(more_steps, bool) or not isinstance(more_steps, int) or more_steps < 1:
        raise ConfigError("steps", f"{more_steps!r} more steps: give a whole number ≥ 1")
    config = config.replace(steps=saved.step + more_steps)  # the steps field's own limit names a total too large
    try:
        trainer = Trainer(config, device="cpu", data_dir=data_dir)  # a dataset missing here is refused by name
        trainer.load_state_dict(state)
    except CheckpointError as err:
        raise _refuse(_one_line(str(err))) from None
    name = sanitize_name(f"{config.dataset.value}-continued")
    folder = Path(runs_dir)
    with _names_lock:
        run_id = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
        n = 2
        while (folder / run_id).exists():
            run_id, n = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{n}", n + 1
        store = RunStore(folder / run_id).create(config)
    store.write_origin(saved.step, "an uploaded checkpoint")
    store.save_checkpoint(trainer.state_dict())  # re-saved from the checked trainer: only what the format holds
    store.write_status({"status": Status.STOPPED.value, "created": time.time(), "owner": owner,
                        "message": f"continued from an uploaded checkpoint at step {saved.step:,}"})
    return run_id
