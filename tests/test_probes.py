"""Probes: dead units, saturation, batch-norm statistics and gradient norms on tiny hand-built models; probing is inert."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from gan_core.config import Activation
from gan_core.train.models import _block
from gan_core.train.probes import HIST_EDGES, Probe, block_label, grad_norms
from gan_core.train.trainer import Trainer
from tests.tiny import tiny


class Tiny(nn.Module):
    """The shape the probes expect: `blocks.<i>.{layer, bn, act}` then `out`."""

    def __init__(self, act: nn.Module, batchnorm: bool = False, width: int = 4, bias: float | None = None) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.blocks = nn.Sequential(_block(nn.Linear(3, width), width, batchnorm, act, nn.BatchNorm1d))
        self.out = nn.Linear(width, 1)
        if bias is not None:
            with torch.no_grad():
                self.blocks[0].layer.weight.mul_(0.01)
                self.blocks[0].layer.bias.fill_(bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.blocks(x)).squeeze(1)


def _stats(net: nn.Module, x: torch.Tensor, name: str = "D"):
    probe = Probe({name: net})
    with probe.capture(name):
        net(x)
    return probe


def test_block_label():
    assert block_label("blocks.0.act") == "block 1"
    assert block_label("blocks.2") == "block 3"
    assert block_label("out") == "out"


@pytest.mark.parametrize("bias, dead", [(-100.0, 1.0), (100.0, 0.0)])
def test_relu_dead_fraction(bias, dead):
    (stats,) = _stats(Tiny(nn.ReLU(), bias=bias), torch.randn(64, 3)).layer_stats()
    assert stats.net == "D" and stats.layer == "block 1" and stats.kind is Activation.RELU
    assert stats.dead_fraction == dead
    assert stats.saturated_fraction == 0.0
    assert stats.mean == pytest.approx(bias, abs=1.0)  # statistics are of the pre-activation
    assert stats.hist.shape == (len(HIST_EDGES) - 1,)
    assert stats.hist.sum() == 64 * 4  # every value counted, clipped into the end bins
    assert stats.hist[0 if bias < 0 else -1] == 64 * 4


def test_relu_half_dead_layer():
    net = Tiny(nn.ReLU(), bias=1.0)
    with torch.no_grad():
        net.blocks[0].layer.bias[:2] = -100.0
    (stats,) = _stats(net, torch.randn(32, 3)).layer_stats()
    assert stats.dead_fraction == pytest.approx(0.5)


def test_leaky_relu_dead_means_negative_side_for_every_sample():
    (stats,) = _stats(Tiny(nn.LeakyReLU(0.2), bias=-100.0), torch.randn(32, 3)).layer_stats()
    assert stats.kind is Activation.LEAKY_RELU and stats.dead_fraction == 1.0


@pytest.mark.parametrize("act, kind", [(nn.Sigmoid(), Activation.SIGMOID), (nn.Tanh(), Activation.TANH)])
def test_saturation(act, kind):
    (huge,) = _stats(Tiny(act, bias=60.0), torch.randn(32, 3)).layer_stats()
    assert huge.kind is kind
    assert huge.saturated_fraction == pytest.approx(1.0)
    assert huge.dead_fraction == 0.0
    (calm,) = _stats(Tiny(act, bias=0.0), torch.randn(32, 3)).layer_stats()
    assert calm.saturated_fraction == pytest.approx(0.0)


def test_batchnorm_stats_are_the_batch_per_channel_moments():
    net = Tiny(nn.ReLU(), batchnorm=True, width=5)
    x = torch.randn(40, 3) * 3 + 1
    pre = net.blocks[0].layer(x).detach()
    probe = _stats(net, x)
    (bn,) = probe.batchnorm_stats()
    assert bn.net == "D" and bn.layer == "block 1"
    np.testing.assert_allclose(bn.batch_mean, pre.mean(0).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(bn.batch_var, pre.var(0, unbiased=False).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(bn.running_mean, net.blocks[0].bn.running_mean.numpy())
    np.testing.assert_allclose(bn.running_var, net.blocks[0].bn.running_var.numpy())
    assert bn.hist_in.sum() == bn.hist_out.sum() == 40 * 5
    (act,) = probe.layer_stats()  # the activation after BN sees normalised values: mean 0, std about 1
    assert act.mean == pytest.approx(0.0, abs=1e-5)


def test_batchnorm_stats_on_conv_maps():
    block = _block(nn.Conv2d(2, 3, 3), 3, True, nn.ReLU(), nn.BatchNorm2d)
    net = nn.Module()
    net.blocks = nn.Sequential(block)
    x = torch.randn(6, 2, 7, 7)
    pre = block.layer(x).detach()
    probe = Probe({"G": net})
    with probe.capture("G"):
        net.blocks(x)
    (bn,) = probe.batchnorm_stats()
    np.testing.assert_allclose(bn.batch_mean, pre.mean((0, 2, 3)).numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.batch_var, pre.var((0, 2, 3), unbiased=False).numpy(), rtol=1e-4, atol=1e-5)


def test_grad_norms_match_manual_norms():
    net = Tiny(nn.ReLU(), batchnorm=True)
    net(torch.randn(16, 3)).pow(2).sum().backward()
    norms = grad_norms(net)
    layer = net.blocks[0].layer
    expected_block = float(torch.sqrt(layer.weight.grad.pow(2).sum() + layer.bias.grad.pow(2).sum()))
    expected_out = float(torch.sqrt(net.out.weight.grad.pow(2).sum() + net.out.bias.grad.pow(2).sum()))
    assert set(norms) == {"block 1", "output"}
    assert norms["block 1"] == pytest.approx(expected_block, rel=1e-5)
    assert norms["output"] == pytest.approx(expected_out, rel=1e-5)


def test_grad_norms_skip_parameters_without_gradients():
    assert grad_norms(Tiny(nn.ReLU())) == {}


def test_capture_changes_neither_outputs_nor_running_stats():
    a = Tiny(nn.Sigmoid(), batchnorm=True)
    b = copy.deepcopy(a)
    x = torch.randn(32, 3)
    probe = Probe({"D": a})
    with probe.capture("D"):
        out_a = a(x)
    out_b = b(x)
    assert torch.equal(out_a, out_b)
    assert torch.equal(a.blocks[0].bn.running_mean, b.blocks[0].bn.running_mean)
    assert torch.equal(a.blocks[0].bn.running_var, b.blocks[0].bn.running_var)
    probe.layer_stats()
    probe.batchnorm_stats()
    assert torch.equal(a.blocks[0].bn.running_mean, b.blocks[0].bn.running_mean)
    assert a.blocks[0].bn.num_batches_tracked == b.blocks[0].bn.num_batches_tracked == 1


def test_hooks_are_removed_after_capture():
    net = Tiny(nn.ReLU())
    probe = _stats(net, torch.randn(8, 3))
    assert not net.blocks[0].act._forward_hooks
    net(torch.randn(8, 3))  # outside capture: nothing recorded
    assert len(probe._acts[("D", "blocks.0")]) == 1
    probe.reset()
    assert probe.layer_stats() == ()


def test_probed_training_is_identical_to_unprobed():
    base = tiny("ring-bce", steps=12, batch_size=64, d_batchnorm=True,
                sample_every=10**5)
    probed, plain = Trainer(base.replace(probe_every=1)), Trainer(base.replace(probe_every=10**5))
    rows_probed, rows_plain = [], []
    n_probes = 0
    for _ in range(base.steps):
        r = probed.step()
        n_probes += r.probe is not None
        rows_probed.append({k: v for k, v in vars(r.record).items() if k != "time_s"})
        r = plain.step()
        assert r.probe is None
        rows_plain.append({k: v for k, v in vars(r.record).items() if k != "time_s"})
    assert n_probes == base.steps
    np.testing.assert_equal(rows_probed, rows_plain)  # NaN gp compares equal here
    for (name, p), q in zip(probed.G.state_dict().items(), plain.G.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    for (name, p), q in zip(probed.D.state_dict().items(), plain.D.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
