"""gan_core.lessons.ascent_steps: the lab's step-size convention against class_ascent's, by hand and by autograd."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gan_core.lessons.ascent_steps import lab_weight, step_size_from_lab
from gan_core.lessons.control import class_ascent


def test_conversions_worked_by_hand():
    assert step_size_from_lab() == pytest.approx(0.0125)  # the lab: weight 1/10 on the mean over 8 images
    assert step_size_from_lab(0.1, 4) == pytest.approx(0.025)
    assert lab_weight(0.1, 8) == pytest.approx(0.8)
    assert lab_weight(step_size_from_lab(0.3, 5), 5) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="step size η must be a positive number"):
        lab_weight(0.0, 8)
    with pytest.raises(ValueError, match="n \\(the number of samples\\) must be a whole number"):
        step_size_from_lab(0.1, 0)


def test_the_lab_update_with_its_weight_is_class_ascent_with_eta():
    # the lab's own update, z + weight · ∇ mean_i ℓ_i[target], against class_ascent with η = weight / N
    torch.manual_seed(0)
    g, c = nn.Sequential(nn.Linear(3, 4), nn.Tanh()), nn.Linear(4, 2)
    z0 = torch.randn(5, 3)
    z = z0.clone().requires_grad_(True)
    c(g(z))[:, 1].mean().backward()
    lab = z0 + 0.1 * z.grad
    ours = class_ascent(g, c, z0, target=1, steps=1, step_size=step_size_from_lab(0.1, 5), penalty=0.0)
    torch.testing.assert_close(torch.from_numpy(ours.z[1]), lab)
