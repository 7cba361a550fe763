"""gan_core.lessons.wloss: each formula against a value worked by hand, and against the engine's WGANGPLoss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gan_core.lessons import wloss
from gan_core.train.losses import WGANGPLoss


def test_earth_movers_distance_moves_sorted_points_onto_each_other():
    # by hand: sorted reals 0, 2; sorted fakes 1, 5 -> |0 − 1| + |2 − 5| = 4, over 2 points = 2
    assert wloss.earth_movers_1d([2.0, 0.0], [5.0, 1.0]) == pytest.approx(2.0)
    assert wloss.earth_movers_1d([1.0, 3.0], [3.0, 1.0]) == 0.0  # the same pile: nothing to move
    # piles that do not overlap: the distance keeps growing with the gap (BCE's best D would just say "all fake")
    assert wloss.earth_movers_1d([0.0, 1.0], [10.0, 11.0]) == pytest.approx(10.0)
    assert wloss.earth_movers_1d([0.0, 1.0], [20.0, 21.0]) == pytest.approx(20.0)
    with pytest.raises(ValueError, match="^fake: needs as many points as real"):
        wloss.earth_movers_1d([0.0, 1.0], [1.0])


def test_w_loss_is_the_gap_between_mean_scores_and_the_engine_minimises_its_negative():
    # by hand: reals (2 + 4)/2 = 3, fakes (1 − 1)/2 = 0 -> W-loss 3
    real, fake = [2.0, 4.0], [1.0, -1.0]
    assert wloss.w_loss(real, fake) == pytest.approx(3.0)
    terms = WGANGPLoss().d_loss(torch.tensor(real), torch.tensor(fake))
    assert float(terms["loss"]) == pytest.approx(-3.0)
    with pytest.raises(ValueError, match="^critic_fake: needs at least one number"):
        wloss.w_loss(real, [])
    with pytest.raises(ValueError, match="^critic_real: needs finite numbers"):
        wloss.w_loss([np.inf], fake)


def test_interpolates_lie_between_real_and_fake():
    real, fake = np.array([[0.0, 0.0], [4.0, 2.0]]), np.array([[2.0, 2.0], [0.0, 0.0]])
    # by hand: ε = 0.25 -> 0.25·(0, 0) + 0.75·(2, 2) = (1.5, 1.5); ε = 1 -> the real point itself
    np.testing.assert_allclose(wloss.interpolates(real, fake, [0.25, 1.0]), [[1.5, 1.5], [4.0, 2.0]])
    with pytest.raises(ValueError, match=r"^eps: needs one number in \[0, 1\] per example"):
        wloss.interpolates(real, fake, [0.5, 1.5])
    with pytest.raises(ValueError, match="^fake: needs the shape of real"):
        wloss.interpolates(real, fake[:1], [0.5, 0.5])


def test_gradient_penalty_by_hand():
    # by hand: gradients (3, 4) and (0.6, 0.8) have norms 5 and 1 -> λ·((5 − 1)² + (1 − 1)²)/2 = 10·16/2 = 80
    grads = [[3.0, 4.0], [0.6, 0.8]]
    np.testing.assert_allclose(wloss.gradient_norms(grads), [5.0, 1.0])
    assert wloss.gradient_penalty(grads, 10.0) == pytest.approx(80.0)
    assert wloss.gradient_penalty([[0.0, 0.0]], 10.0) == pytest.approx(10.0)  # a flat critic is penalised too
    # the critic's full loss: −W-loss + penalty = −3 + 80
    assert wloss.critic_loss([2.0, 4.0], [1.0, -1.0], grads, 10.0) == pytest.approx(77.0)
    with pytest.raises(ValueError, match="^gp_lambda: must be 0 or more"):
        wloss.gradient_penalty(grads, -1.0)
    with pytest.raises(ValueError, match="^grads: needs one finite gradient row per example"):
        wloss.gradient_penalty([1.0, 2.0])


def test_gradient_penalty_agrees_with_the_engines_on_a_linear_critic():
    # c(x) = 3·x1 + 4·x2 has gradient (3, 4) everywhere: ‖∇‖ = 5 at every interpolate, so the penalty is 10·(5 − 1)² = 160
    weight = torch.tensor([3.0, 4.0])

    def critic(x: torch.Tensor) -> torch.Tensor:
        return x @ weight

    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    engine = float(WGANGPLoss(gp_lambda=10.0).gradient_penalty(critic, real, fake,
                                                                torch.Generator().manual_seed(0)).detach())
    ours = wloss.gradient_penalty(np.tile([3.0, 4.0], (6, 1)), 10.0)
    assert engine == pytest.approx(160.0) and ours == pytest.approx(engine)


def test_gradient_penalty_agrees_with_the_engines_on_a_curved_critic():
    # c(x) = ‖x‖² has gradient 2x̂: its slope differs from point to point, so the interpolates must match too
    real, fake = torch.randn(5, 2), torch.randn(5, 2)
    engine = float(WGANGPLoss(gp_lambda=10.0).gradient_penalty(lambda x: (x ** 2).sum(1), real, fake,
                                                                torch.Generator().manual_seed(3)).detach())
    eps = torch.rand(5, 1, generator=torch.Generator().manual_seed(3)).numpy()  # the engine's draw, repeated
    mixed = wloss.interpolates(real.numpy(), fake.numpy(), eps)
    assert wloss.gradient_penalty(2 * mixed, 10.0) == pytest.approx(engine, rel=1e-5)
