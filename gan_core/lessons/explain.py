"""The maths the explainer pages plot: BCE and its terms, G's two losses and their gradients, activations and their
derivatives, batch norm worked by hand.

Pure numpy, no torch graph: a page calls these on a grid or on a handful of numbers the reader typed. Each docstring
states the equation it computes, and tests/test_explain.py checks each against a value worked by hand and against the
torch function the engine really trains with, so the text a page shows cannot drift from the training code.

Notation follows the course notes: y is the label (1 real, 0 fake), h = D's prediction in [0, 1], l = D's logit (h = σ(l)),
m the batch size. Bad inputs raise ValueError with a message that starts with the field's name and says what is allowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from gan_core.config import Activation
from gan_core.train.probes import SATURATION_GRAD

EPS = 1e-12  # h is clipped to [EPS, 1 − EPS] inside the logs only, so a plot gets a tall finite value instead of −inf

# ---------------------------------------------------------------------------------------------------------------- helpers


def _array(name: str, value: ArrayLike) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: must be numbers") from exc
    return arr


def _unit(name: str, value: ArrayLike, what: str) -> np.ndarray:
    """`value` as floats, every element in [0, 1] (NaN rejected too: the comparison below is False for it)."""
    arr = _array(name, value)
    bad = ~((arr >= 0.0) & (arr <= 1.0))
    if bad.any():
        raise ValueError(f"{name}: {what} must be in [0, 1]; got {arr[bad].flat[0]!r}")
    return arr


def _batch(name: str, value: ArrayLike, min_len: int) -> np.ndarray:
    """A 1-D batch of finite floats with at least `min_len` values; a scalar counts as a batch of one."""
    arr = np.atleast_1d(_array(name, value))
    if arr.ndim != 1:
        raise ValueError(f"{name}: must be a 1-D batch of values; got shape {arr.shape}")
    if len(arr) < min_len:
        raise ValueError(f"{name}: needs at least {min_len} value{'s' if min_len > 1 else ''}; got {len(arr)}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: values must be finite")
    return arr


def _softplus(x: np.ndarray) -> np.ndarray:
    """softplus(x) = log(1 + eˣ) = max(x, 0) + log(1 + e^(−|x|)): never exponentiates a large positive number."""
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


# -------------------------------------------------------------------------------------------------------------------- BCE


def sigmoid(x: ArrayLike) -> np.ndarray:
    """σ(x) = 1 / (1 + e^(−x)), computed as e^(−|x|)-based halves so that no exp overflows for large |x|."""
    x = _array("x", x)
    e = np.exp(-np.abs(x))  # in (0, 1]: never overflows
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def logit(h: ArrayLike) -> np.ndarray:
    """logit(h) = log(h / (1 − h)) = σ⁻¹(h), for h in [0, 1]; logit(0) = −inf and logit(1) = +inf (no clipping)."""
    h = _unit("h", h, "a probability")
    with np.errstate(divide="ignore"):  # the infinities at 0 and 1 are the right answer
        return np.log(h) - np.log1p(-h)


def bce_terms(y: ArrayLike, h: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """The two terms of BCE as the notes write them, elementwise: (y · log h, (1 − y) · log(1 − h)), both ≤ 0.

    0 · log 0 is taken as 0: a term whose weight (y, or 1 − y) is 0 is exactly 0 whatever h is. Where the weight is
    positive and h reaches 0 (or 1) the true value is −inf; h is clipped to [EPS, 1 − EPS] inside that log only, so it
    comes out as a large finite value instead (log EPS ≈ −27.6), which a plot can draw. Elsewhere the clip changes
    nothing: log h uses max(h, EPS) and log(1 − h) uses min(h, 1 − EPS), so e.g. log(1 − 0) is exactly 0.
    """
    y = _unit("y", y, "labels")
    h = _unit("h", h, "predictions")
    term_real = np.where(y > 0, y * np.log(np.maximum(h, EPS)), 0.0)
    term_fake = np.where(y < 1, (1.0 - y) * np.log1p(-np.minimum(h, 1.0 - EPS)), 0.0)  # log1p: accurate for small h
    return term_real, term_fake


def bce(y: ArrayLike, h: ArrayLike) -> np.ndarray:
    """BCE(y, h) = −[y · log h + (1 − y) · log(1 − h)], elementwise (h clipped as in `bce_terms`)."""
    term_real, term_fake = bce_terms(y, h)
    return -(term_real + term_fake)


@dataclass(frozen=True)
class BatchCost:
    """One batch's BCE cost with every intermediate a page tabulates (all arrays have the batch's length m)."""

    y: np.ndarray  # labels
    h: np.ndarray  # predictions D(x) in [0, 1] (σ(logits) when built from logits)
    term_real: np.ndarray  # y · log h
    term_fake: np.ndarray  # (1 − y) · log(1 − h)
    loss: np.ndarray  # −(term_real + term_fake), per example
    cost: float  # J(θ) = mean of loss


def batch_cost(y: ArrayLike, h: ArrayLike | None = None, *, logits: ArrayLike | None = None) -> BatchCost:
    """J(θ) = −(1/m) Σᵢ [yᵢ log hᵢ + (1 − yᵢ) log(1 − hᵢ)] over a batch of m ≥ 1 examples.

    Pass exactly one of `h` (predictions in [0, 1]) or `logits`. From logits the terms are computed stably,
    y · log σ(l) = −y · softplus(−l) and (1 − y) · log(1 − σ(l)) = −(1 − y) · softplus(l), so they stay finite for any
    finite logit; `h` = σ(logits) is then only for display.
    """
    if (h is None) == (logits is None):
        raise ValueError("h: pass exactly one of h (predictions in [0, 1]) or logits")
    y_arr = _batch("y", y, 1)
    _unit("y", y_arr, "labels")
    if logits is not None:
        l = _batch("logits", logits, 1)  # noqa: E741
        if len(l) != len(y_arr):
            raise ValueError(f"logits: must have one value per label; got {len(l)} for {len(y_arr)} labels")
        h_arr = sigmoid(l)
        term_real = np.where(y_arr > 0, -y_arr * _softplus(-l), 0.0)
        term_fake = np.where(y_arr < 1, -(1.0 - y_arr) * _softplus(l), 0.0)
    else:
        h_arr = _batch("h", h, 1)
        if len(h_arr) != len(y_arr):
            raise ValueError(f"h: must have one prediction per label; got {len(h_arr)} for {len(y_arr)} labels")
        term_real, term_fake = bce_terms(y_arr, h_arr)
    loss = -(term_real + term_fake)
    return BatchCost(y=y_arr, h=h_arr, term_real=term_real, term_fake=term_fake, loss=loss, cost=float(loss.mean()))


# ------------------------------------------------------------------------------------------------- G's losses and gradients
# Both G losses are BCE pieces: the minimax one is the fake term of D's loss (y = 0) with G on the other side of the game,
# the non-saturating one is BCE with the label flipped to "real" (y = 1). Building them from bce_terms keeps one formula.


def g_loss_minimax(d_fake: ArrayLike) -> np.ndarray:
    """J_G = log(1 − D(G(z))), what G minimises in the original minimax game (≤ 0; D(G(z)) clipped as in `bce_terms`)."""
    d = _unit("d_fake", d_fake, "D(G(z))")
    return bce_terms(np.zeros_like(d), d)[1]


def g_loss_non_saturating(d_fake: ArrayLike) -> np.ndarray:
    """J_G = −log D(G(z)), the non-saturating loss G minimises in practice (≥ 0; D(G(z)) clipped as in `bce_terms`)."""
    d = _unit("d_fake", d_fake, "D(G(z))")
    return bce(np.ones_like(d), d)


def g_grad_logit_minimax(d_fake: ArrayLike) -> np.ndarray:
    """∂/∂l log(1 − σ(l)) = −σ(l) = −D(G(z)), with l D's logit on a fake.

    It goes to 0 as D(G(z)) → 0: exactly when D confidently rejects the fakes, G gets no gradient (the loss saturates).
    Agrees with losses.g_logit_gradient(·, GObjective.MINIMAX).
    """
    return -_unit("d_fake", d_fake, "D(G(z))")


def g_grad_logit_non_saturating(d_fake: ArrayLike) -> np.ndarray:
    """∂/∂l [−log σ(l)] = −(1 − σ(l)) = D(G(z)) − 1, with l D's logit on a fake.

    Near −1 while D confidently rejects the fakes (D(G(z)) ≈ 0), so G keeps learning when it is losing; it fades only as
    D(G(z)) → 1. Agrees with losses.g_logit_gradient(·, GObjective.NON_SATURATING).
    """
    return _unit("d_fake", d_fake, "D(G(z))") - 1.0


# ------------------------------------------------------------------------------------------------------------ activations


def _check_slope(slope: float) -> None:
    if not 0.0 <= slope <= 1.0:  # beyond 1 max(a·z, z) and torch's leaky_relu disagree; negative is not leaky
        raise ValueError(f"slope: the leaky ReLU slope must be in [0, 1]; got {slope!r}")


def activation(kind: Activation, z: ArrayLike, slope: float = 0.1) -> np.ndarray:
    """g(z) for a pre-activation z:

    ReLU max(0, z) · leaky ReLU max(a·z, z) with a = `slope` · sigmoid 1 / (1 + e^(−z)) · tanh (eᶻ − e^(−z)) / (eᶻ + e^(−z))
    · ELU z if z > 0 else α(eᶻ − 1), α = 1 (torch's default).
    """
    kind = Activation(kind)
    _check_slope(slope)
    z = _array("z", z)
    if kind is Activation.RELU:
        return np.maximum(z, 0.0)
    if kind is Activation.LEAKY_RELU:
        return np.where(z >= 0, z, slope * z)  # = max(a·z, z) for 0 ≤ a ≤ 1
    if kind is Activation.SIGMOID:
        return sigmoid(z)
    if kind is Activation.TANH:
        return np.tanh(z)
    return np.where(z > 0, z, np.expm1(np.minimum(z, 0.0)))  # min: no overflow in the branch np.where discards


def derivative(kind: Activation, z: ArrayLike, slope: float = 0.1) -> np.ndarray:
    """g'(z), what backprop multiplies the incoming gradient by:

    ReLU 1 if z > 0 else 0 · leaky ReLU 1 if z > 0 else a · sigmoid σ(z)(1 − σ(z)) · tanh 1 − tanh²(z)
    · ELU 1 if z > 0 else eᶻ.
    At the kink z = 0, where the derivative is undefined, the value is torch's: ReLU 0, leaky ReLU a, ELU 1.
    """
    kind = Activation(kind)
    _check_slope(slope)
    z = _array("z", z)
    if kind is Activation.RELU:
        return np.where(z > 0, 1.0, 0.0)
    if kind is Activation.LEAKY_RELU:
        return np.where(z > 0, 1.0, slope)
    if kind is Activation.SIGMOID:
        s = sigmoid(z)
        return s * (1.0 - s)
    if kind is Activation.TANH:
        return 1.0 - np.tanh(z) ** 2
    return np.where(z > 0, 1.0, np.exp(np.minimum(z, 0.0)))


def saturation_bound(kind: Activation, threshold: float = SATURATION_GRAD) -> float:
    """The |z| beyond which a sigmoid or tanh derivative falls below `threshold`, solved in closed form.

    sigmoid: σ'(z) = σ(1 − σ) = 1 / (4 cosh²(z/2)) < t  ⇔  cosh(z/2) > 1/(2√t)  ⇔  |z| > 2 arccosh(1/(2√t))
    tanh:    tanh'(z) = sech²(z) = 1 / cosh²(z) < t    ⇔  cosh(z) > 1/√t       ⇔  |z| > arccosh(1/√t)
    (t = 0.01: sigmoid 2 arccosh 5 ≈ 4.585, tanh arccosh 10 ≈ 2.993.) When t is at or above the derivative's peak
    (¼ for sigmoid, 1 for tanh) the derivative is below t everywhere (but the peak itself) and the bound is 0.
    """
    kind = Activation(kind)
    if not threshold > 0:
        raise ValueError(f"threshold: must be > 0; got {threshold!r}")
    if kind is Activation.SIGMOID:
        return 2.0 * math.acosh(max(1.0, 1.0 / (2.0 * math.sqrt(threshold))))
    if kind is Activation.TANH:
        return math.acosh(max(1.0, 1.0 / math.sqrt(threshold)))
    raise ValueError(f"kind: saturation_bound is for sigmoid or tanh; got {kind.value}")


def flat_zones(kind: Activation, lo: float, hi: float, threshold: float = SATURATION_GRAD,
               slope: float = 0.1) -> list[tuple[float, float]]:
    """The intervals of [lo, hi] where g'(z) is 0 or below `threshold`, merged, sorted and clipped to [lo, hi].

    ReLU: z < 0 ("dead": gradient exactly 0, whatever the threshold). Leaky ReLU: z < 0 when a < threshold, else none.
    Sigmoid / tanh: |z| > `saturation_bound` (saturated). ELU: eᶻ < t ⇔ z < log t (and everything when t > 1).
    """
    kind = Activation(kind)
    _check_slope(slope)
    if not threshold > 0:
        raise ValueError(f"threshold: must be > 0; got {threshold!r}")
    if not lo < hi:
        raise ValueError(f"hi: must be greater than lo; got lo={lo!r}, hi={hi!r}")
    inf = math.inf
    raw: list[tuple[float, float]]
    if kind in (Activation.RELU, Activation.LEAKY_RELU):
        negative_side = 0.0 if kind is Activation.RELU else slope  # the derivative for z < 0; it is 1 for z > 0
        raw = [(-inf, 0.0)] if negative_side < threshold else []
        if threshold > 1.0:
            raw.append((0.0, inf))
    elif kind in (Activation.SIGMOID, Activation.TANH):
        b = saturation_bound(kind, threshold)
        raw = [(-inf, -b), (b, inf)]
    else:
        raw = [(-inf, math.log(threshold))] if threshold <= 1.0 else [(-inf, inf)]
    clipped = sorted((max(a, lo), min(b, hi)) for a, b in raw if max(a, lo) < min(b, hi))
    merged: list[tuple[float, float]] = []
    for a, b in clipped:
        if merged and a <= merged[-1][1]:  # touching or overlapping (e.g. sigmoid's bound 0 when t ≥ ¼)
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


# ------------------------------------------------------------------------------------------------------------- batch norm


@dataclass(frozen=True)
class BatchNormResult:
    """One feature through batch norm in training mode, with the statistics it normalised by."""

    x: np.ndarray  # the batch's values
    mean: float  # μ_B
    var: float  # σ²_B, biased (divides by m)
    x_hat: np.ndarray  # (x − μ_B) / √(σ²_B + ε)
    y: np.ndarray  # γ x̂ + β


def _check_eps(eps: float) -> None:
    if not eps > 0:  # ε keeps 1/√(σ² + ε) finite for a constant batch
        raise ValueError(f"eps: must be > 0; got {eps!r}")


def batchnorm_train(x: ArrayLike, gamma: float = 1.0, beta: float = 0.0, eps: float = 1e-5) -> BatchNormResult:
    """Batch norm of one feature in training mode, with the batch's own statistics:

    μ = (1/m) Σ xᵢ,  σ² = (1/m) Σ (xᵢ − μ)²  (biased: what torch normalises by),  x̂ = (x − μ) / √(σ² + ε),  y = γ x̂ + β.
    Needs m ≥ 2: with one value x̂ is 0 whatever x is, which is why torch refuses a training batch of one.
    """
    _check_eps(eps)
    x = _batch("x", x, 2)
    mean = float(x.mean())
    var = float(((x - mean) ** 2).mean())
    x_hat = (x - mean) / math.sqrt(var + eps)
    return BatchNormResult(x=x, mean=mean, var=var, x_hat=x_hat, y=gamma * x_hat + beta)


def batchnorm_infer(x: ArrayLike, running_mean: float, running_var: float, gamma: float = 1.0, beta: float = 0.0,
                    eps: float = 1e-5) -> np.ndarray:
    """Batch norm at inference, with the running statistics instead of the batch's: y = γ (x − μ_run) / √(σ²_run + ε) + β.

    Each value is normalised on its own, so a batch of one is fine and the output does not depend on the other values.
    """
    _check_eps(eps)
    if not running_var >= 0:
        raise ValueError(f"running_var: must be ≥ 0; got {running_var!r}")
    x = _batch("x", x, 1)
    return gamma * (x - running_mean) / math.sqrt(running_var + eps) + beta


def unbiased_var(x: ArrayLike) -> float:
    """s² = (1/(m − 1)) Σ (xᵢ − μ)², the unbiased variance; m ≥ 2.

    torch's BatchNorm normalises by the biased variance but updates running_var with this one, so the running value
    a page shows after one step is `update_running(running_var, unbiased_var(x))`, not the variance it normalised by.
    """
    x = _batch("x", x, 2)
    return float(((x - x.mean()) ** 2).sum() / (len(x) - 1))


def update_running(running: float, batch_value: float, momentum: float = 0.1) -> float:
    """An exponential moving average step, torch's convention: new = (1 − momentum) · running + momentum · batch_value.

    (torch's momentum is the weight of the new value, the opposite of an optimiser's momentum.) For running_var pass
    `unbiased_var(x)` as batch_value, as torch does.
    """
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum: must be in [0, 1]; got {momentum!r}")
    return (1.0 - momentum) * running + momentum * batch_value
