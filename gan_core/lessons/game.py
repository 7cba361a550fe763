"""The numbers the Home and Training pages quote about the GAN game: its minimax value, and where the losses settle.

Home previews the minimax objective (the BCE page explains it term by term); Training tells students what healthy curves
do. Both quote numbers, and page text must not drift from the engine's losses, so they come from here, built on
gan_core.lessons.explain (the same BCE the BCE page plots).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from gan_core.lessons import explain

BALANCE = 0.5  # D's output when it cannot tell real from fake: the point the course says both players head towards


def minimax_value(d_real: ArrayLike, d_fake: ArrayLike) -> float:
    """V(D, G) = mean log D(x) + mean log(1 − D(G(z))) over a batch: D maximises it, G minimises it.

    The batch means stand in for the expectations E_x and E_z (the BCE page says why). Each term is ≤ 0; at balance,
    D = 0.5 everywhere, V = 2 log ½ = −log 4.
    """
    real = np.atleast_1d(np.asarray(d_real, dtype=float))
    fake = np.atleast_1d(np.asarray(d_fake, dtype=float))
    # log h is the real term of BCE with y = 1, log(1 − h) its fake term with y = 0: the same clipping as the BCE page
    return float(explain.bce_terms(np.ones_like(real), real)[0].mean()
                 + explain.bce_terms(np.zeros_like(fake), fake)[1].mean())


@dataclass(frozen=True)
class Balance:
    """The logged numbers of a BCE run whose D says `d` to every real example and every fake."""

    d_real: float  # D(x)
    d_fake: float  # D(G(z))
    d_loss: float  # D's loss as the app logs it: the mean of its real term −log D(x) and fake term −log(1 − D(G(z)))
    g_loss: float  # G's non-saturating loss −log D(G(z))


def balanced(d: float = BALANCE) -> Balance:
    """What the curves read when D says `d` to everything; at 0.5 both losses are log 2 ≈ 0.693, not 0."""
    if not 0.0 < d < 1.0 or not math.isfinite(d):
        raise ValueError(f"d: {d} is not a probability strictly between 0 and 1")
    real_term = float(explain.bce(1, d))
    fake_term = float(explain.bce(0, d))
    return Balance(d_real=d, d_fake=d, d_loss=(real_term + fake_term) / 2,
                   g_loss=float(explain.g_loss_non_saturating(d)))
