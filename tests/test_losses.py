"""Losses against values worked by hand, and the vanishing-gradient story of the minimax G loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gan_core.config import GObjective, Loss, TrainConfig
from gan_core.train.losses import BCELoss, LeastSquaresLoss, WGANGPLoss, g_logit_gradient, make_loss

LOGITS = torch.tensor([-6.0, -2.0, -0.5, 0.0, 0.5, 2.0, 6.0])


def test_bce_d_loss_at_zero_logits_is_log2():
    # D(x) = D(G(z)) = σ(0) = ½:  −½ [log ½ + log(1 − ½)] = log 2
    terms = BCELoss().d_loss(torch.zeros(4), torch.zeros(4))
    assert float(terms["loss"]) == pytest.approx(math.log(2), abs=1e-6)
    assert float(terms["d_loss_real"]) == pytest.approx(math.log(2), abs=1e-6)
    assert float(terms["d_loss_fake"]) == pytest.approx(math.log(2), abs=1e-6)


def test_bce_d_loss_hand_worked():
    # real logit 2 → −log σ(2) = softplus(−2); fake logit −1 → −log(1 − σ(−1)) = softplus(−1)
    terms = BCELoss().d_loss(torch.tensor([2.0]), torch.tensor([-1.0]))
    real = math.log(1 + math.exp(-2.0))
    fake = math.log(1 + math.exp(-1.0))
    assert float(terms["d_loss_real"]) == pytest.approx(real, abs=1e-6)
    assert float(terms["d_loss_fake"]) == pytest.approx(fake, abs=1e-6)
    assert float(terms["loss"]) == pytest.approx((real + fake) / 2, abs=1e-6)


@pytest.mark.parametrize("logit", LOGITS.tolist())
def test_non_saturating_g_loss_is_softplus_of_minus_logit(logit):
    loss = BCELoss(GObjective.NON_SATURATING).g_loss(torch.tensor([logit]))["loss"]
    assert float(loss) == pytest.approx(math.log(1 + math.exp(-logit)), abs=1e-5)  # −log σ(l)


@pytest.mark.parametrize("logit", LOGITS.tolist())
def test_minimax_g_loss_is_minus_softplus_of_logit(logit):
    loss = BCELoss(GObjective.MINIMAX).g_loss(torch.tensor([logit]))["loss"]
    expected = math.log(1 - 1 / (1 + math.exp(-logit)))  # log(1 − σ(l))
    assert float(loss) == pytest.approx(expected, abs=1e-5)
    assert float(loss) == pytest.approx(-math.log(1 + math.exp(logit)), abs=1e-5)


def test_g_loss_averages_over_the_batch():
    fake = torch.tensor([0.0, 2.0])
    loss = BCELoss().g_loss(fake)["loss"]
    assert float(loss) == pytest.approx(float(F.softplus(-fake).mean()), abs=1e-6)


def test_least_squares_hand_worked():
    lsq = LeastSquaresLoss()
    terms = lsq.d_loss(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]))
    # real: ½ mean((1−1)², (0−1)²) = ½·½ = 0.25; fake: ½ mean(0², 1²) = 0.25
    assert float(terms["d_loss_real"]) == pytest.approx(0.25)
    assert float(terms["d_loss_fake"]) == pytest.approx(0.25)
    assert float(terms["loss"]) == pytest.approx(0.5)
    assert float(lsq.d_loss(torch.ones(3), torch.zeros(3))["loss"]) == pytest.approx(0.0)  # a perfect D
    assert float(lsq.g_loss(torch.tensor([0.0]))["loss"]) == pytest.approx(0.5)  # ½ (0 − 1)²
    assert float(lsq.g_loss(torch.tensor([1.0, 3.0]))["loss"]) == pytest.approx(1.0)  # ½ mean(0, 4)
    assert torch.equal(lsq.probability(torch.tensor([0.3])), torch.tensor([0.3]))


def test_wgan_losses_hand_worked():
    w = WGANGPLoss()
    terms = w.d_loss(torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.0]))
    assert float(terms["d_loss_real"]) == pytest.approx(-2.0)  # −E[C(x)]
    assert float(terms["d_loss_fake"]) == pytest.approx(-0.5)  # E[C(G(z))]
    assert float(terms["loss"]) == pytest.approx(-2.5)
    assert float(w.g_loss(torch.tensor([1.0, 3.0]))["loss"]) == pytest.approx(-2.0)  # −E[C(G(z))]
    assert torch.equal(w.probability(torch.tensor([5.0])), torch.tensor([5.0]))


def _linear_critic(weight: list[float]) -> nn.Linear:
    critic = nn.Linear(len(weight), 1)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([weight]))
        critic.bias.fill_(0.3)
    return critic


def test_gradient_penalty_is_zero_for_unit_norm_linear_critic():
    critic = _linear_critic([0.6, 0.8])  # ‖w‖ = 1, so ‖∇ C‖ = 1 everywhere
    real, fake = torch.randn(32, 2), torch.randn(32, 2)
    gp = WGANGPLoss(10.0).gradient_penalty(lambda x: critic(x).squeeze(1), real, fake, torch.Generator().manual_seed(0))
    assert float(gp.detach()) == pytest.approx(0.0, abs=1e-8)


@pytest.mark.parametrize("weight, lam", [([3.0, 4.0], 10.0), ([0.0, 0.5], 2.0), ([1.0, 1.0], 1.0)])
def test_gradient_penalty_for_linear_critic_is_lambda_times_norm_gap_squared(weight, lam):
    critic = _linear_critic(weight)
    real, fake = torch.randn(16, 2), torch.randn(16, 2)
    gp = WGANGPLoss(lam).gradient_penalty(lambda x: critic(x).squeeze(1), real, fake, torch.Generator().manual_seed(1))
    norm = math.hypot(*weight)
    assert float(gp.detach()) == pytest.approx(lam * (norm - 1) ** 2, rel=1e-5)


def test_gradient_penalty_works_on_image_shapes_and_is_differentiable():
    critic = nn.Sequential(nn.Flatten(), nn.Linear(16, 1))
    real, fake = torch.rand(8, 1, 4, 4), torch.rand(8, 1, 4, 4)
    gp = WGANGPLoss().gradient_penalty(lambda x: critic(x).squeeze(1), real, fake)
    gp.backward()  # create_graph=True: the penalty trains the critic
    assert critic[1].weight.grad is not None and torch.isfinite(critic[1].weight.grad).all()


@pytest.mark.parametrize("objective", list(GObjective))
def test_g_logit_gradient_matches_autograd(objective):
    logits = LOGITS.clone().requires_grad_(True)
    # g_loss averages over the batch; summing n copies of the mean gives each sample's own loss
    loss = BCELoss(objective).g_loss(logits)["loss"] * len(logits)
    (grad,) = torch.autograd.grad(loss, logits)
    expected = g_logit_gradient(torch.sigmoid(LOGITS), objective)
    assert torch.allclose(grad, expected, atol=1e-6)


def test_minimax_gradient_vanishes_when_d_rejects_fakes():
    d_prob = torch.tensor([1e-6])  # D(G(z)) → 0: D confidently calls the fake fake
    assert float(g_logit_gradient(d_prob, GObjective.MINIMAX)) == pytest.approx(0.0, abs=1e-5)
    assert float(g_logit_gradient(d_prob, GObjective.NON_SATURATING)) == pytest.approx(-1.0, abs=1e-5)
    # and autograd of the losses agrees at a very negative logit
    logit = torch.tensor([-12.0], requires_grad=True)
    (mm,) = torch.autograd.grad(BCELoss(GObjective.MINIMAX).g_loss(logit)["loss"], logit)
    (ns,) = torch.autograd.grad(BCELoss(GObjective.NON_SATURATING).g_loss(logit)["loss"], logit)
    assert abs(float(mm)) < 1e-4 and float(ns) == pytest.approx(-1.0, abs=1e-4)


def test_make_loss_picks_the_configured_loss():
    assert isinstance(make_loss(TrainConfig(loss=Loss.BCE)), BCELoss)
    assert make_loss(TrainConfig(g_objective=GObjective.MINIMAX)).objective is GObjective.MINIMAX
    assert isinstance(make_loss(TrainConfig(loss=Loss.LEAST_SQUARES)), LeastSquaresLoss)
    wgan = make_loss(TrainConfig(loss=Loss.WGAN_GP, gp_lambda=3.0))
    assert isinstance(wgan, WGANGPLoss) and wgan.gp_lambda == 3.0
