"""What a training step hands back: its metrics row, its samples, its probe record, and the two errors a run can
end with. Plain frozen dataclasses of floats and numpy arrays, so they cross process boundaries and are written
to the run folder as they are."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from gan_core.train.probes import ProbeRecord

D_KEYS = ("d_loss", "d_real", "d_fake", "d_loss_real", "d_loss_fake", "gp")  # what one D update logs, in this order


class Diverged(RuntimeError):
    """A loss became NaN or infinite; the update was not applied, so the models are still the last good ones."""

    def __init__(self, step: int, what: str) -> None:
        super().__init__(f"diverged at step {step}: {what} is not a finite number")
        self.step = step


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: unreadable, corrupt, or from a different configuration."""


@dataclass(frozen=True)
class StepRecord:
    """One row of metrics.csv. For BCE, d_real/d_fake are mean probabilities D(x), D(G(z)); for other losses raw scores."""

    step: int
    time_s: float
    d_loss: float
    g_loss: float
    d_real: float
    d_fake: float
    d_loss_real: float
    d_loss_fake: float
    gp: float  # gradient penalty (WGAN-GP), else nan


METRIC_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(StepRecord))


def parse_row(row: list[str]) -> StepRecord:
    """A metrics.csv row (cells in METRIC_COLUMNS' order; an empty cell is NaN) as a StepRecord; ValueError or
    TypeError if it is not one."""
    values: dict = {c: (math.nan if v == "" else float(v)) for c, v in zip(METRIC_COLUMNS, row, strict=True)}
    values["step"] = int(values["step"])
    return StepRecord(**values)


@dataclass(frozen=True)
class SampleRecord:
    step: int
    samples: np.ndarray  # data space: 2D (n, 2) float; images (n, C, H, W) in [0, 1]
    labels: np.ndarray | None  # the class each sample was asked for (conditional runs)
    field: np.ndarray | None = None  # 2D only: D's output over a grid, (res, res), rows = y from low to high
    extent: tuple[float, float, float, float] | None = None  # 2D only: x0, x1, y0, y1 of that grid
    arrows: np.ndarray | None = None  # 2D only: −∂J_G/∂x at each sample, the way G's loss pushes it (n, 2)
    # 2D only: G's manifold (GAN Lab's), G over a grid of noise on a fixed plane of z, (res, res, 2): [i, j] = G(z_ij)
    # with z_ij[0] the j-th and z_ij[1] the i-th of res values in [−span, span]. None in folders written before it.
    manifold: np.ndarray | None = None


@dataclass(frozen=True)
class StepResult:
    record: StepRecord
    probe: ProbeRecord | None
    samples: SampleRecord | None
