"""The W-loss lesson's maths (course 1, week 3): the earth mover's distance, W-loss with a critic, and the gradient
penalty that keeps the critic 1-Lipschitz.

Pure numpy on a handful of numbers, so the Mode collapse page can show each formula with a value worked out beside it;
tests/test_wloss.py checks each against a value worked by hand and against the engine's WGANGPLoss, which is what the
WGAN-GP runs really train with. Notation as in the course: c is the critic (no sigmoid: any real number), x a real
example, g(z) a fake one, m the batch size, λ the penalty's weight, x̂ = εx + (1 − ε)g(z) an interpolate. Bad inputs raise
ValueError with a message that starts with the field's name and says what is allowed.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def _scores(name: str, value: ArrayLike) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64).ravel()
    if arr.size == 0:
        raise ValueError(f"{name}: needs at least one number; got none")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: needs finite numbers; got {arr[~np.isfinite(arr)][0]!r}")
    return arr


def earth_movers_1d(real: ArrayLike, fake: ArrayLike) -> float:
    """EMD between two equal-sized piles of 1-D points: (1/m) Σ_i |x_(i) − g_(i)|, both sorted.

    The least average distance each fake point must travel to land on the real ones (in one dimension the cheapest plan
    pairs them in sorted order). It grows with how far apart the piles are, however little they overlap.
    """
    a, b = _scores("real", real), _scores("fake", fake)
    if a.size != b.size:
        raise ValueError(f"fake: needs as many points as real ({a.size}); got {b.size}")
    return float(np.mean(np.abs(np.sort(a) - np.sort(b))))


def w_loss(critic_real: ArrayLike, critic_fake: ArrayLike) -> float:
    """W-loss = E[c(x)] − E[c(g(z))], the batch means of the critic's scores on reals and on fakes.

    The critic maximises it (reals scored high, fakes low); the generator minimises it (its only term is −E[c(g(z))]).
    The engine's critic minimises the negative, E[c(g(z))] − E[c(x)] (WGANGPLoss.d_loss), plus the penalty.
    """
    return float(_scores("critic_real", critic_real).mean() - _scores("critic_fake", critic_fake).mean())


def interpolates(real: ArrayLike, fake: ArrayLike, eps: ArrayLike) -> np.ndarray:
    """x̂ = ε x + (1 − ε) g(z), one ε in [0, 1] per example: points on the straight lines between reals and fakes."""
    x, g = np.asarray(real, dtype=np.float64), np.asarray(fake, dtype=np.float64)
    if x.shape != g.shape or x.ndim == 0:
        raise ValueError(f"fake: needs the shape of real {x.shape}; got {g.shape}")
    e = np.asarray(eps, dtype=np.float64).ravel()
    if e.size != len(x) or not ((e >= 0) & (e <= 1)).all():
        raise ValueError(f"eps: needs one number in [0, 1] per example ({len(x)}); got {e.size}")
    e = e.reshape(-1, *([1] * (x.ndim - 1)))
    return e * x + (1 - e) * g


def gradient_norms(grads: ArrayLike) -> np.ndarray:
    """‖∇c(x̂)‖₂ per example, from the critic's gradient at each interpolate (one row per example)."""
    arr = np.asarray(grads, dtype=np.float64)
    if arr.ndim < 2 or len(arr) == 0 or not np.isfinite(arr).all():
        raise ValueError(f"grads: needs one finite gradient row per example (at least 2-D); got shape {arr.shape}")
    return np.linalg.norm(arr.reshape(len(arr), -1), axis=1)


def gradient_penalty(grads: ArrayLike, gp_lambda: float = 10.0) -> float:
    """λ · (1/m) Σ_i (‖∇c(x̂_i)‖₂ − 1)²: zero when the critic's slope is exactly 1 at every interpolate, growing with the
    square of how far it is off (above 1 or below). Agrees with WGANGPLoss.gradient_penalty given the same x̂."""
    if not gp_lambda >= 0:
        raise ValueError(f"gp_lambda: must be 0 or more; got {gp_lambda!r}")
    return float(gp_lambda * np.mean((gradient_norms(grads) - 1.0) ** 2))


def critic_loss(critic_real: ArrayLike, critic_fake: ArrayLike, grads: ArrayLike, gp_lambda: float = 10.0) -> float:
    """What the critic minimises: −W-loss + λ·penalty = E[c(g(z))] − E[c(x)] + λ E[(‖∇c(x̂)‖₂ − 1)²]."""
    return -w_loss(critic_real, critic_fake) + gradient_penalty(grads, gp_lambda)
