"""Controllable generation (course C1W4): gradient ascent on z towards a classifier's class, and interpolation.

Both models are only read: their weights, modes and requires_grad flags are the same after a call as before it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class AscentResult:
    """Everything recorded at each step s = 0 … steps of class_ascent (step 0 is the starting z)."""

    target: int
    penalty: float
    step_size: float
    z: np.ndarray  # (steps + 1, N, z_dim)
    images: np.ndarray  # (steps + 1, N, C, H, W) in [0, 1]
    logits: np.ndarray  # (steps + 1, N, n_classes): the classifier's raw scores
    probs: np.ndarray  # (steps + 1, N, n_classes): softmax of logits
    scores: np.ndarray  # (steps + 1,): the course's get_score at each step

    @property
    def other_logit_shift(self) -> np.ndarray:
        """Mean over samples of ‖other logits − their step-0 values‖₂ at each step: how entangled the edit was."""
        others = np.delete(self.logits, self.target, axis=2)
        return np.linalg.norm(others - others[:1], axis=2).mean(1)


@contextmanager
def _frozen(*models: nn.Module) -> Iterator[None]:
    """Eval mode (batch norm uses its running statistics and does not update them) and no parameter gradients;
    the previous modes and requires_grad flags come back afterwards, even after an exception."""
    saved = [(m, m.training, [(p, p.requires_grad) for p in m.parameters()]) for m in models]
    try:
        for m in models:
            m.eval()
            m.requires_grad_(False)
        yield
    finally:
        for m, training, flags in saved:
            m.train(training)
            for p, flag in flags:
                p.requires_grad_(flag)


def class_ascent(generator: nn.Module, classifier: nn.Module, z0: Tensor, target: int, steps: int, step_size: float,
                 penalty: float, onehot: Tensor | None = None,
                 to_unit: Callable[[Tensor], Tensor] = lambda x: x) -> AscentResult:
    """Gradient ascent on z towards class `target`, as in the course's controllable-generation lab.

    With ℓ = classifier(to_unit(G(z))) and ℓ⁰ the logits at the starting z, the course's get_score is

        score = mean_i ℓ_i[target] − penalty · mean_i ‖ℓ_i[others] − ℓ⁰_i[others]‖₂

    (the penalty keeps the other classes' logits where they were, so the edit changes the target feature and little
    else). Each step is  z_i ← z_i + step_size · ∂score_i/∂z_i  on each sample's own score (the terms of the means):
    this is the course's update times N, so a step size means the same thing for any number of samples.
    onehot is passed to a conditional generator unchanged; to_unit maps G's output to [0, 1] images.
    """
    assert steps >= 0 and z0.ndim == 2, (steps, tuple(z0.shape))
    z = z0.detach().clone().float()
    zs, images, logits_hist, scores = [], [], [], []
    start: Tensor | None = None
    with _frozen(generator, classifier):
        for s in range(steps + 1):
            z.requires_grad_(True)
            x = to_unit(generator(z) if onehot is None else generator(z, onehot))
            logits = classifier(x)
            if start is None:
                n_classes = logits.shape[1]
                if not 0 <= target < n_classes:
                    raise ValueError(f"target {target} is not a class of a {n_classes}-class classifier")
                others = [c for c in range(n_classes) if c != target]
                start = logits.detach()
            shift = torch.linalg.vector_norm(logits[:, others] - start[:, others], dim=1)  # (N,); 0 at step 0
            per_sample = logits[:, target] - penalty * shift
            zs.append(z.detach().clone())
            images.append(x.detach())
            logits_hist.append(logits.detach())
            scores.append(float(per_sample.detach().mean()))
            if s == steps:
                break
            (grad,) = torch.autograd.grad(per_sample.sum(), z)  # only z: no .grad left on any weight
            z = (z + step_size * grad).detach()
    all_logits = torch.stack(logits_hist)
    return AscentResult(
        target=target, penalty=float(penalty), step_size=float(step_size),
        z=torch.stack(zs).numpy(), images=torch.stack(images).numpy(), logits=all_logits.numpy(),
        probs=F.softmax(all_logits, dim=2).numpy(), scores=np.asarray(scores),
    )


def _weights(t: float | Tensor, like: Tensor) -> Tensor:
    """t as a tensor that broadcasts against `like`; a 1-D t of length T adds a leading axis of T results."""
    t = torch.as_tensor(t, dtype=like.dtype)
    if t.ndim == 0:
        return t
    assert t.ndim == 1, tuple(t.shape)
    return t.reshape(-1, *([1] * like.ndim))


def interpolate_z(z_a: Tensor, z_b: Tensor, t: float | Tensor) -> Tensor:
    """Linear interpolation (1 − t) z_a + t z_b; exact at t = 0 and t = 1.

    The course's interpolation lab uses it; it is also right for labels and for z of a few dimensions. In high
    dimensions the midpoint of two Gaussian z's is shorter than a typical z (norm ≈ √(d/2) instead of √d), so G sees an
    unusual input there: use slerp for long z paths. A 1-D t of length T gives T results stacked on a new first axis.
    """
    w = _weights(t, z_a)
    return (1 - w) * z_a + w * z_b


def slerp(z_a: Tensor, z_b: Tensor, t: float | Tensor, eps: float = 1e-7) -> Tensor:
    """Spherical interpolation along the last axis (White 2016, "Sampling generative networks"):

        slerp(a, b, t) = sin((1 − t) Ω) / sin Ω · a + sin(t Ω) / sin Ω · b,   cos Ω = â · b̂

    It keeps the path at a typical norm for Gaussian z in high dimension. Where a and b are (anti)parallel,
    sin Ω ≈ 0 and it falls back to linear interpolation. Exact at t = 0 and t = 1. t as in interpolate_z.
    """
    w = _weights(t, z_a)
    cos = (F.normalize(z_a, dim=-1, eps=eps) * F.normalize(z_b, dim=-1, eps=eps)).sum(-1, keepdim=True)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    sin = torch.sin(omega)
    parallel = sin.abs() < eps
    safe_sin = torch.where(parallel, torch.ones_like(sin), sin)
    spherical = torch.sin((1 - w) * omega) / safe_sin * z_a + torch.sin(w * omega) / safe_sin * z_b
    return torch.where(parallel, interpolate_z(z_a, z_b, t), spherical)


def interpolate_labels(class_a: int, class_b: int, t: float | Tensor, n_classes: int = 10) -> Tensor:
    """Soft one-hot (1 − t) e_a + t e_b for a conditional generator (course C1W4): each row sums to 1.

    A float t gives (n_classes,); a 1-D t of length T gives (T, n_classes).
    """
    for c in (class_a, class_b):
        if not 0 <= c < n_classes:
            raise ValueError(f"class {c} is outside 0 … {n_classes - 1}")
    e_a = F.one_hot(torch.tensor(class_a), n_classes).float()
    e_b = F.one_hot(torch.tensor(class_b), n_classes).float()
    return interpolate_z(e_a, e_b, t)
