"""explain.py against values worked by hand (the arithmetic is in the comments) and against the torch functions it explains."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gan_core.config import Activation, GObjective
from gan_core.lessons import explain
from gan_core.train.losses import BCELoss, g_logit_gradient
from gan_core.train.probes import SATURATION_GRAD

# ------------------------------------------------------------------------------------------------------------------ BCE


def test_bce_confident_right_prediction():
    # y = 1, h = 0.99: −[1 · ln 0.99 + 0 · ln 0.01] = −ln 0.99 = 0.0100503…
    assert float(explain.bce(1, 0.99)) == pytest.approx(0.0100503359, abs=1e-9)


@pytest.mark.parametrize("y", [0.0, 1.0])
def test_bce_at_one_half_is_ln2(y):
    # h = ½: −ln ½ = ln 2 = 0.693147… whichever the label
    assert float(explain.bce(y, 0.5)) == pytest.approx(0.6931471806, abs=1e-9)


def test_bce_confident_wrong_prediction():
    # y = 1, h = 10⁻⁶: −ln 10⁻⁶ = 6 ln 10 = 6 × 2.302585… = 13.81551
    assert float(explain.bce(1, 1e-6)) == pytest.approx(13.8155106, abs=1e-6)
    # and mirrored: y = 0, h = 1 − 10⁻⁶: −ln(1 − h) = 13.8155 (log1p keeps it accurate)
    assert float(explain.bce(0, 1 - 1e-6)) == pytest.approx(13.8155106, abs=1e-4)


def test_bce_terms_as_the_notes_write_them():
    # y = 1, h = 0.8: y ln h = ln 0.8 = −0.22314; (1 − y) ln(1 − h) = 0 · ln 0.2 = 0
    # y = 0, h = 0.8: y ln h = 0; (1 − y) ln(1 − h) = ln 0.2 = −1.60944
    real, fake = explain.bce_terms([1, 0], [0.8, 0.8])
    np.testing.assert_allclose(real, [-0.2231435513, 0.0], atol=1e-9)
    np.testing.assert_allclose(fake, [0.0, -1.6094379124], atol=1e-9)
    assert (real <= 0).all() and (fake <= 0).all()


def test_bce_terms_zero_log_zero_is_zero_and_clip_keeps_finite():
    # y = 0, h = 0: y ln h = 0 · ln 0 := 0 and (1 − y) ln(1 − 0) = 0 → loss exactly 0, not NaN; same mirrored
    real, fake = explain.bce_terms(0, 0)
    assert float(real) == 0.0 and float(fake) == 0.0
    assert float(explain.bce(1, 1)) == 0.0
    # y = 1, h = 0: truly −inf; clipped to ln EPS = ln 10⁻¹² = −27.631 so a plot can draw it
    real, fake = explain.bce_terms(1, 0)
    assert float(real) == pytest.approx(math.log(explain.EPS)) and float(real) == pytest.approx(-27.6310211, abs=1e-6)
    assert float(fake) == 0.0


def test_bce_matches_torch():
    y = np.array([1.0, 0.0, 1.0, 0.0, 0.3])
    h = np.array([0.9, 0.2, 0.05, 0.7, 0.6])
    expected = F.binary_cross_entropy(torch.tensor(h), torch.tensor(y), reduction="none").numpy()
    np.testing.assert_allclose(explain.bce(y, h), expected, rtol=1e-12)


def test_sigmoid_and_logit():
    # σ(0) = ½; σ(ln 3) = 1 / (1 + ⅓) = ¾; logit(¾) = ln(0.75 / 0.25) = ln 3
    assert float(explain.sigmoid(0)) == 0.5
    assert float(explain.sigmoid(math.log(3))) == pytest.approx(0.75, abs=1e-12)
    assert float(explain.logit(0.75)) == pytest.approx(math.log(3), abs=1e-12)
    with np.errstate(over="raise", invalid="raise"):  # the stable form never exponentiates a big number
        s = explain.sigmoid([-1000.0, 1000.0])
    np.testing.assert_array_equal(s, [0.0, 1.0])
    np.testing.assert_array_equal(explain.logit([0.0, 1.0]), [-np.inf, np.inf])
    x = np.linspace(-20, 20, 41)
    np.testing.assert_allclose(explain.logit(explain.sigmoid(x)), x, atol=1e-6)


def test_batch_cost_of_four_rows_by_hand():
    # y = [1, 1, 0, 0], h = [0.9, 0.6, 0.2, 0.5]
    # per-row loss: −ln 0.9 = 0.1053605, −ln 0.6 = 0.5108256, −ln(1 − 0.2) = 0.2231436, −ln(1 − 0.5) = 0.6931472
    # J = (0.1053605 + 0.5108256 + 0.2231436 + 0.6931472) / 4 = 1.5324769 / 4 = 0.3831192
    c = explain.batch_cost([1, 1, 0, 0], [0.9, 0.6, 0.2, 0.5])
    assert c.cost == pytest.approx(0.3831192, abs=1e-7)
    np.testing.assert_allclose(c.loss, [0.1053605, 0.5108256, 0.2231436, 0.6931472], atol=1e-7)
    np.testing.assert_allclose(c.term_real, [-0.1053605, -0.5108256, 0.0, 0.0], atol=1e-7)
    np.testing.assert_allclose(c.term_fake, [0.0, 0.0, -0.2231436, -0.6931472], atol=1e-7)
    assert isinstance(c.cost, float)


def test_batch_cost_from_logits_matches_predictions_and_stays_finite():
    y = [1, 1, 0, 0]
    logits = np.array([2.0, -0.5, -1.5, 0.0])
    from_logits = explain.batch_cost(y, logits=logits)
    from_h = explain.batch_cost(y, explain.sigmoid(logits))
    np.testing.assert_allclose(from_logits.h, explain.sigmoid(logits))
    np.testing.assert_allclose(from_logits.term_real, from_h.term_real, atol=1e-12)
    np.testing.assert_allclose(from_logits.term_fake, from_h.term_fake, atol=1e-12)
    assert from_logits.cost == pytest.approx(from_h.cost, abs=1e-12)
    # one confident wrong logit: y = 1, l = −1000 → loss 1000; three perfect ones → 0; J = 1000 / 4 = 250
    c = explain.batch_cost([1, 0, 1, 0], logits=[-1000, -1000, 1000, -1000])
    np.testing.assert_allclose(c.loss, [1000.0, 0.0, 0.0, 0.0], atol=1e-12)
    assert c.cost == pytest.approx(250.0)
    # D's own BCE over a real batch and a fake batch is the mean of the two halves' costs, as losses.BCELoss logs it
    real, fake = torch.tensor([2.0, -0.5]), torch.tensor([-1.5, 0.0])
    terms = BCELoss().d_loss(real, fake)
    assert explain.batch_cost([1, 1], logits=real.numpy()).cost == pytest.approx(float(terms["d_loss_real"]), abs=1e-6)
    assert explain.batch_cost([0, 0], logits=fake.numpy()).cost == pytest.approx(float(terms["d_loss_fake"]), abs=1e-6)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"y": [1, 2], "h": [0.5, 0.5]}, "y"),
    ({"y": [1, -0.1], "h": [0.5, 0.5]}, "y"),
    ({"y": [1, float("nan")], "h": [0.5, 0.5]}, "y"),
    ({"y": [1, 0], "h": [0.5, 1.5]}, "h"),
    ({"y": [1, 0], "h": [0.5]}, "h"),
    ({"y": [], "h": []}, "y"),
    ({"y": [1, 0]}, "h"),
    ({"y": [1, 0], "h": [0.5, 0.5], "logits": [0.0, 0.0]}, "h"),
    ({"y": [1, 0], "logits": [0.0]}, "logits"),
    ({"y": [1, 0], "logits": [0.0, float("inf")]}, "logits"),
    ({"y": "abc", "h": [0.5]}, "y"),
])
def test_batch_cost_validation_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=rf"^{field}: "):
        explain.batch_cost(**kwargs)


def test_elementwise_validation_names_the_field():
    with pytest.raises(ValueError, match=r"^h: .*\[0, 1\]"):
        explain.bce(1, 1.2)
    with pytest.raises(ValueError, match=r"^y: .*\[0, 1\]"):
        explain.bce(3, 0.5)
    with pytest.raises(ValueError, match=r"^d_fake: "):
        explain.g_grad_logit_minimax(-0.5)


# --------------------------------------------------------------------------------------------- G's losses and gradients

D_FAKE = np.array([1e-3, 0.05, 0.2, 0.5, 0.8, 0.95])


def test_g_losses_by_hand():
    # minimax at D(G(z)) = ½: ln(1 − ½) = −0.693147;  at 0.2: ln 0.8 = −0.223144
    np.testing.assert_allclose(explain.g_loss_minimax([0.5, 0.2]), [-0.6931472, -0.2231436], atol=1e-7)
    # non-saturating at 0.1: −ln 0.1 = 2.302585;  at ½: ln 2 = 0.693147
    np.testing.assert_allclose(explain.g_loss_non_saturating([0.1, 0.5]), [2.3025851, 0.6931472], atol=1e-7)


@pytest.mark.parametrize(("objective", "loss_fn", "grad_fn"), [
    (GObjective.MINIMAX, explain.g_loss_minimax, explain.g_grad_logit_minimax),
    (GObjective.NON_SATURATING, explain.g_loss_non_saturating, explain.g_grad_logit_non_saturating),
])
def test_g_losses_and_gradients_agree_with_the_engine_and_autograd(objective, loss_fn, grad_fn):
    logits = torch.tensor(explain.logit(D_FAKE), requires_grad=True)
    per_example = [BCELoss(objective).g_loss(logits[i:i + 1])["loss"] for i in range(len(D_FAKE))]
    np.testing.assert_allclose(loss_fn(D_FAKE), [float(v.detach()) for v in per_example], rtol=1e-9)
    (grad,) = torch.autograd.grad(torch.stack(per_example).sum(), logits)
    np.testing.assert_allclose(grad_fn(D_FAKE), grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(grad_fn(D_FAKE), g_logit_gradient(torch.tensor(D_FAKE), objective).numpy(), atol=0)


def test_minimax_gradient_vanishes_when_d_rejects_fakes():
    # D(G(z)) = 0.001: minimax −0.001 (almost nothing), non-saturating 0.001 − 1 = −0.999 (full strength)
    assert float(explain.g_grad_logit_minimax(1e-3)) == pytest.approx(-0.001)
    assert float(explain.g_grad_logit_non_saturating(1e-3)) == pytest.approx(-0.999)
    # both negative: raising the logit (fooling D) lowers either loss
    assert (explain.g_grad_logit_minimax(D_FAKE) < 0).all() and (explain.g_grad_logit_non_saturating(D_FAKE) < 0).all()


# ---------------------------------------------------------------------------------------------------------- activations

GRID = np.concatenate([np.linspace(-6, 6, 121), [0.0, -1e-9, 1e-9, -20.0, 20.0]])
TORCH_FN = {
    Activation.RELU: lambda z, a: F.relu(z),
    Activation.LEAKY_RELU: lambda z, a: F.leaky_relu(z, negative_slope=a),
    Activation.SIGMOID: lambda z, a: torch.sigmoid(z),
    Activation.TANH: lambda z, a: torch.tanh(z),
    Activation.ELU: lambda z, a: F.elu(z),
}


def test_activations_by_hand():
    # leaky ReLU at −2 with a = 0.1: max(0.1 × −2, −2) = max(−0.2, −2) = −0.2; at 3: max(0.3, 3) = 3
    np.testing.assert_allclose(explain.activation(Activation.LEAKY_RELU, [-2.0, 3.0]), [-0.2, 3.0])
    # the course's D uses a = 0.2: −2 → −0.4
    assert float(explain.activation(Activation.LEAKY_RELU, -2.0, slope=0.2)) == pytest.approx(-0.4)
    # ReLU at −2: 0;  ELU at −1: e⁻¹ − 1 = −0.632121;  tanh(0) = 0;  sigmoid(0) = ½
    assert float(explain.activation(Activation.RELU, -2.0)) == 0.0
    assert float(explain.activation(Activation.ELU, -1.0)) == pytest.approx(-0.6321206, abs=1e-7)
    # derivatives at 0: sigmoid ½ × ½ = ¼, tanh 1 − 0² = 1, ReLU 0 by torch's convention
    assert float(explain.derivative(Activation.SIGMOID, 0.0)) == 0.25
    assert float(explain.derivative(Activation.TANH, 0.0)) == 1.0
    assert float(explain.derivative(Activation.RELU, 0.0)) == 0.0


@pytest.mark.parametrize("slope", [0.1, 0.2])
@pytest.mark.parametrize("kind", list(Activation))
def test_activation_and_derivative_equal_torch(kind, slope):
    z = torch.tensor(GRID, requires_grad=True)
    out = TORCH_FN[kind](z, slope)
    (grad,) = torch.autograd.grad(out.sum(), z)
    np.testing.assert_allclose(explain.activation(kind, GRID, slope), out.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(explain.derivative(kind, GRID, slope), grad.numpy(), rtol=1e-12, atol=1e-15)


def test_slope_validation():
    with pytest.raises(ValueError, match=r"^slope: "):
        explain.activation(Activation.LEAKY_RELU, 1.0, slope=-0.1)


@pytest.mark.parametrize(("kind", "bound"), [
    (Activation.SIGMOID, 4.5848633),  # 2 arccosh(1 / (2√0.01)) = 2 arccosh 5 = 2 ln(5 + √24) = 2 × 2.2924317
    (Activation.TANH, 2.9932228),  # arccosh(1 / √0.01) = arccosh 10 = ln(10 + √99)
])
def test_saturation_bounds_by_hand(kind, bound):
    b = explain.saturation_bound(kind, SATURATION_GRAD)
    assert b == pytest.approx(bound, abs=1e-7)
    np.testing.assert_allclose(explain.derivative(kind, [-b, b]), [SATURATION_GRAD] * 2, rtol=1e-9)
    assert explain.flat_zones(kind, -10, 10) == [(-10, pytest.approx(-bound, abs=1e-7)), (pytest.approx(bound, abs=1e-7), 10)]


@pytest.mark.parametrize("threshold", [1e-4, 0.01, 0.1, 0.2])
@pytest.mark.parametrize("kind", [Activation.SIGMOID, Activation.TANH])
def test_saturation_bound_solves_derivative_equals_threshold(kind, threshold):
    b = explain.saturation_bound(kind, threshold)
    assert float(explain.derivative(kind, b)) == pytest.approx(threshold, rel=1e-9)


def test_flat_zones_by_kind():
    # ReLU: dead for z < 0, clipped to [lo, hi]
    assert explain.flat_zones(Activation.RELU, -5, 5) == [(-5, 0.0)]
    assert explain.flat_zones(Activation.RELU, 1, 5) == []
    # leaky ReLU: slope 0.1 ≥ 0.01 → never flat; slope 0.001 < 0.01 → the negative side
    assert explain.flat_zones(Activation.LEAKY_RELU, -5, 5, slope=0.1) == []
    assert explain.flat_zones(Activation.LEAKY_RELU, -5, 5, slope=0.001) == [(-5, 0.0)]
    # sigmoid on [−2, 10]: only the right zone (4.585, 10) survives the clip
    zones = explain.flat_zones(Activation.SIGMOID, -2, 10)
    assert len(zones) == 1 and zones[0] == (pytest.approx(4.5848633, abs=1e-7), 10)
    # sigmoid' ≤ ¼ everywhere, so a threshold of 0.3 makes the whole range one merged zone
    assert explain.flat_zones(Activation.SIGMOID, -3, 3, threshold=0.3) == [(-3, 3)]
    # ELU: eᶻ < 0.01 ⇔ z < ln 0.01 = −4.60517
    assert explain.flat_zones(Activation.ELU, -10, 10) == [(-10, pytest.approx(-4.6051702, abs=1e-7))]
    with pytest.raises(ValueError, match=r"^hi: "):
        explain.flat_zones(Activation.TANH, 2, 1)
    with pytest.raises(ValueError, match=r"^threshold: "):
        explain.flat_zones(Activation.TANH, -1, 1, threshold=0)


@pytest.mark.parametrize("kind", list(Activation))
def test_flat_zones_agree_with_the_derivative_on_a_grid(kind):
    lo, hi, slope = -8.0, 8.0, 0.005
    z = np.linspace(lo, hi, 1601)
    zones = explain.flat_zones(kind, lo, hi, slope=slope)
    inside = np.zeros_like(z, dtype=bool)
    for a, b in zones:
        inside |= (z > a) & (z < b)
    edges = np.array([e for zone in zones for e in zone])
    away = np.abs(z[:, None] - edges[None, :]).min(axis=1) > 1e-6 if len(edges) else np.ones_like(z, dtype=bool)
    flat = explain.derivative(kind, z, slope) < SATURATION_GRAD
    np.testing.assert_array_equal(inside[away], flat[away])


# ------------------------------------------------------------------------------------------------------------ batch norm


def _torch_bn(gamma: float, beta: float) -> nn.BatchNorm1d:
    bn = nn.BatchNorm1d(1).double()
    with torch.no_grad():
        bn.weight.fill_(gamma)
        bn.bias.fill_(beta)
    return bn


def test_batchnorm_train_by_hand():
    # x = [1, 2, 3, 4]: μ = 10 / 4 = 2.5; σ² = (2.25 + 0.25 + 0.25 + 2.25) / 4 = 5 / 4 = 1.25 (biased)
    # x̂ = (x − 2.5) / √1.25 = [−1.5, −0.5, 0.5, 1.5] / 1.118034 = [−1.3416408, −0.4472136, 0.4472136, 1.3416408]
    r = explain.batchnorm_train([1, 2, 3, 4])
    assert r.mean == 2.5 and r.var == 1.25
    np.testing.assert_allclose(r.x_hat, [-1.3416408, -0.4472136, 0.4472136, 1.3416408], atol=1e-5)  # ε = 1e-5 shifts <1e-5
    np.testing.assert_allclose(r.x_hat, [-1.5, -0.5, 0.5, 1.5] / np.sqrt(1.25 + 1e-5), rtol=1e-12)
    # γ = 2, β = 1: y = 2 x̂ + 1 → 2 × −1.3416408 + 1 = −1.6832816 at the first value (ε moves 2x̂ by ~1.1e-5)
    r2 = explain.batchnorm_train([1, 2, 3, 4], gamma=2.0, beta=1.0)
    assert r2.y[0] == pytest.approx(-1.6832816, abs=2e-5)
    np.testing.assert_allclose(r2.y, 2 * r.x_hat + 1, rtol=1e-12)


@pytest.mark.parametrize(("gamma", "beta"), [(1.0, 0.0), (2.0, 1.0), (0.5, -3.0)])
def test_batchnorm_train_equals_torch(gamma, beta):
    x = np.array([1.0, 2.0, 3.0, 4.0, -7.5, 0.25])
    bn = _torch_bn(gamma, beta).train()
    expected = bn(torch.tensor(x).reshape(-1, 1)).detach().numpy().ravel()
    np.testing.assert_allclose(explain.batchnorm_train(x, gamma, beta).y, expected, rtol=1e-10, atol=1e-12)


def test_batchnorm_infer_by_hand_and_equals_torch():
    # running μ = 2, σ² = 4, ε = 0: (x − 2) / 2 → x = 6 gives 2; with γ = 3, β = 1: 3 × 2 + 1 = 7
    assert float(explain.batchnorm_infer(6.0, 2.0, 4.0, gamma=3.0, beta=1.0, eps=1e-12)[0]) == pytest.approx(7.0)
    x = np.array([1.0, 2.0, 3.0, 4.0, -7.5])
    bn = _torch_bn(1.5, -0.5)
    with torch.no_grad():
        bn.running_mean.fill_(0.8)
        bn.running_var.fill_(2.3)
    bn.eval()
    expected = bn(torch.tensor(x).reshape(-1, 1)).detach().numpy().ravel()
    np.testing.assert_allclose(explain.batchnorm_infer(x, 0.8, 2.3, 1.5, -0.5), expected, rtol=1e-10, atol=1e-12)


def test_running_update_matches_one_torch_forward():
    # x = [1, 2, 3, 4]: μ = 2.5; unbiased s² = 5 / 3 = 1.666667 (biased would be 1.25)
    # running_mean = 0.9 × 0 + 0.1 × 2.5 = 0.25;  running_var = 0.9 × 1 + 0.1 × 5/3 = 1.0666667
    x = [1.0, 2.0, 3.0, 4.0]
    assert explain.unbiased_var(x) == pytest.approx(5 / 3)
    assert explain.update_running(0.0, 2.5) == pytest.approx(0.25)
    assert explain.update_running(1.0, explain.unbiased_var(x)) == pytest.approx(1.0666667, abs=1e-7)
    bn = _torch_bn(1.0, 0.0).train()
    bn(torch.tensor(x, dtype=torch.float64).reshape(-1, 1))
    assert float(bn.running_mean) == pytest.approx(explain.update_running(0.0, 2.5), abs=1e-12)
    assert float(bn.running_var) == pytest.approx(explain.update_running(1.0, explain.unbiased_var(x)), abs=1e-12)
    biased = explain.batchnorm_train(x).var  # what the batch was normalised by: not what the running variance keeps
    assert float(bn.running_var) != pytest.approx(explain.update_running(1.0, biased), abs=1e-6)


def test_batchnorm_validation_names_the_field():
    with pytest.raises(ValueError, match=r"^x: .*at least 2"):
        explain.batchnorm_train([3.0])
    with pytest.raises(ValueError, match=r"^x: .*at least 2"):
        explain.unbiased_var([3.0])
    with pytest.raises(ValueError, match=r"^eps: "):
        explain.batchnorm_train([1.0, 2.0], eps=0.0)
    with pytest.raises(ValueError, match=r"^running_var: "):
        explain.batchnorm_infer([1.0], 0.0, -1.0)
    with pytest.raises(ValueError, match=r"^momentum: "):
        explain.update_running(0.0, 1.0, momentum=1.5)
