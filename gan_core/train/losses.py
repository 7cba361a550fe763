"""GAN objectives. Each loss's docstring states the equation it computes; each returns its terms separately for logging.

A loss object has two methods: `d_loss(real_scores, fake_scores)` for the discriminator (critic) and `g_loss(fake_scores)`
for the generator. Scores are D's raw outputs (logits). WGAN-GP also needs D itself for its gradient penalty.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from gan_core.config import GObjective, Loss, TrainConfig

Terms = dict[str, Tensor]  # always has "loss" (the tensor to backpropagate) plus named parts for logging


class BCELoss:
    """The course's binary cross-entropy game, on logits for numerical stability.

    D:  J_D = ½ [ BCE(D(x), 1) + BCE(D(G(z)), 0) ] = −½ [ log D(x) + log(1 − D(G(z))) ]
    G (non-saturating): J_G = BCE(D(G(z)), 1) = −log D(G(z))
    G (minimax):        J_G = log(1 − D(G(z)))   — its gradient vanishes when D confidently rejects fakes.
    """

    def __init__(self, objective: GObjective = GObjective.NON_SATURATING) -> None:
        self.objective = objective

    def d_loss(self, real: Tensor, fake: Tensor) -> Terms:
        loss_real = F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
        loss_fake = F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
        return {"loss": (loss_real + loss_fake) / 2, "d_loss_real": loss_real, "d_loss_fake": loss_fake}

    def g_loss(self, fake: Tensor) -> Terms:
        if self.objective is GObjective.MINIMAX:
            return {"loss": -F.softplus(fake).mean()}  # log(1 − σ(l)) = −softplus(l)
        return {"loss": F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))}  # −log σ(l) = softplus(−l)

    @staticmethod
    def probability(scores: Tensor) -> Tensor:
        return torch.sigmoid(scores)


class LeastSquaresLoss:
    """LSGAN (Mao et al. 2017): J_D = ½ [ (D(x) − 1)² + D(G(z))² ],  J_G = ½ (D(G(z)) − 1)²."""

    def d_loss(self, real: Tensor, fake: Tensor) -> Terms:
        loss_real = 0.5 * (real - 1).pow(2).mean()
        loss_fake = 0.5 * fake.pow(2).mean()
        return {"loss": loss_real + loss_fake, "d_loss_real": loss_real, "d_loss_fake": loss_fake}

    def g_loss(self, fake: Tensor) -> Terms:
        return {"loss": 0.5 * (fake - 1).pow(2).mean()}

    @staticmethod
    def probability(scores: Tensor) -> Tensor:
        return scores  # LSGAN's D output is a score near 0 (fake) or 1 (real), not a probability


class WGANGPLoss:
    """WGAN with gradient penalty (Gulrajani et al. 2017).

    Critic: J_C = E[C(G(z))] − E[C(x)] + λ E[(‖∇_x̂ C(x̂)‖₂ − 1)²],  x̂ = εx + (1 − ε)G(z), ε ~ U(0, 1)
    G:      J_G = −E[C(G(z))]
    """

    def __init__(self, gp_lambda: float = 10.0) -> None:
        self.gp_lambda = gp_lambda

    def d_loss(self, real: Tensor, fake: Tensor) -> Terms:
        loss_real, loss_fake = -real.mean(), fake.mean()
        return {"loss": loss_real + loss_fake, "d_loss_real": loss_real, "d_loss_fake": loss_fake}

    def gradient_penalty(self, critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor,
                         gen: torch.Generator | None = None) -> Tensor:
        """λ · mean over the batch of (‖∇ C(x̂)‖₂ − 1)² on random interpolates x̂ between real and fake."""
        device = gen.device if gen is not None else None  # drawn where the generator lives (on the GPU when accelerated)
        eps = torch.rand(len(real), *([1] * (real.dim() - 1)), generator=gen, device=device).to(real.device)
        mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
        scores = critic(mixed)
        (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
        return self.gp_lambda * (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()

    def g_loss(self, fake: Tensor) -> Terms:
        return {"loss": -fake.mean()}

    @staticmethod
    def probability(scores: Tensor) -> Tensor:
        return scores  # a critic's score is unbounded: reported raw


GanLoss = BCELoss | LeastSquaresLoss | WGANGPLoss


def make_loss(config: TrainConfig) -> GanLoss:
    if config.loss is Loss.BCE:
        return BCELoss(config.g_objective)
    if config.loss is Loss.LEAST_SQUARES:
        return LeastSquaresLoss()
    return WGANGPLoss(config.gp_lambda)


def g_logit_gradient(d_prob: Tensor, objective: GObjective) -> Tensor:
    """∂J_G/∂l for the BCE generator loss as a function of D(G(z)) = σ(l).

    Non-saturating −log σ(l): ∂/∂l = −(1 − σ(l)), about −1 while D rejects fakes (σ(l) ≈ 0): G still learns.
    Minimax log(1 − σ(l)):    ∂/∂l = −σ(l), about 0 while D rejects fakes: G's gradient vanishes.
    """
    if objective is GObjective.MINIMAX:
        return -d_prob
    return -(1 - d_prob)
