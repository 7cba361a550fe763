"""gan_core.lessons.units: stacked linear layers, and the gradient a unit counted dead still gets, worked by hand."""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from gan_core.config import Activation
from gan_core.lessons.units import compose_linear, run_unit_gradients, unit_gradients
from gan_core.runs.train_run import open_run, train_to
from tests.tiny import tiny


def test_two_linear_layers_are_one():
    # W₁ = [[1, 2], [0, 1]], b₁ = (1, 0); W₂ = [[1, −1]], b₂ = (2): W₂W₁ = [[1, 1]], W₂b₁ + b₂ = 1 + 2 = 3
    w, b = compose_linear([[1, 2], [0, 1]], [1, 0], [[1, -1]], [2])
    np.testing.assert_array_equal(w, [[1, 1]])
    np.testing.assert_array_equal(b, [3])
    # at x = (2, 3): the first layer gives (9, 3), the second 9 − 3 + 2 = 8; the one layer 2 + 3 + 3 = 8
    assert float((w @ np.array([2, 3]) + b)[0]) == 8.0
    with pytest.raises(ValueError, match="do not chain"):
        compose_linear([[1, 2]], [1], [[1, 2, 3]], [0])


class _D(nn.Module):
    """One hidden block of two units (unit 0 alive for positive x, unit 1 negative for every positive x) and a sum."""

    def __init__(self, act: nn.Module) -> None:
        super().__init__()
        self.blocks = nn.Sequential(nn.Sequential(OrderedDict(layer=nn.Linear(2, 2), act=act)))
        self.out = nn.Linear(2, 1)
        with torch.no_grad():
            self.blocks[0].layer.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, -1.0]]))
            self.blocks[0].layer.bias.zero_()
            self.out.weight.fill_(1.0)
            self.out.bias.zero_()

    def forward(self, x: torch.Tensor, onehot: torch.Tensor | None = None) -> torch.Tensor:
        return self.out(self.blocks(x)).squeeze(1)


@pytest.mark.parametrize(("act", "kind", "slope"), [(nn.ReLU(), Activation.RELU, 0.0),
                                                     (nn.LeakyReLU(0.2), Activation.LEAKY_RELU, 0.2)])
def test_a_unit_counted_dead_gets_slope_times_the_gradient(act, kind, slope):
    # real (1, 2), fake (3, 1); loss = sum of scores. Unit 0: z = 1, 3 > 0, so ∂/∂w = (1, 2) + (3, 1) = (4, 3) and
    # ∂/∂b = 2: ‖·‖ = √29. Unit 1: z = −3, −4 (counted dead): the same sums times g′ = slope.
    d = _D(act)
    (layer,) = unit_gradients(d, lambda r, f: r.sum() + f.sum(), torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 1.0]]))
    assert layer.layer == "block 1" and layer.kind is kind
    assert layer.dead.tolist() == [False, True]
    assert layer.grad[0] == pytest.approx(math.sqrt(29))
    assert layer.grad[1] == pytest.approx(slope * math.sqrt(29))
    assert layer.mean_grad(dead=True) == pytest.approx(slope * math.sqrt(29))
    assert all(p.grad is None for p in d.parameters())  # the model is left as it was


def test_run_unit_gradients_reads_a_run_folder(tmp_path):
    config = tiny("digits", width=8, steps=30, batch_size=16, checkpoint_every=30, d_activation="relu",
                  lr_d=5e-2, seed=0)
    store, trainer = open_run(tmp_path / "run", config)
    train_to(store, trainer)
    layers = run_unit_gradients(store.path, n=64)
    assert [u.layer for u in layers] == [f"block {i}" for i in range(1, config.d_depth + 1)]
    assert all(u.kind is Activation.RELU and len(u.grad) == len(u.dead) for u in layers)
    dead = np.concatenate([u.grad[u.dead] for u in layers])
    alive = np.concatenate([u.grad[~u.dead] for u in layers])
    assert dead.size > 0 and (dead == 0).all()  # a ReLU unit negative for every input gets exactly nothing
    assert (alive > 0).any()
    again = run_unit_gradients(store.path, n=64)
    assert all(np.array_equal(a.grad, b.grad) for a, b in zip(layers, again, strict=True))  # same seed, same batch
