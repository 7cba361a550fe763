"""Generators and discriminators: shapes for every preset, conditional inputs, activation and batch-norm options."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gan_core.config import PRESETS, Activation, Arch, TrainConfig
from gan_core.data import load_digits, mixture
from gan_core.train.models import build_models, make_activation

N = 5


def _data_shape(config: TrainConfig) -> tuple[tuple[int, ...], int]:
    """The example shape and class count, from gan_core.data (MNIST's 1×28×28 is fixed: no files needed)."""
    if config.dataset.value in ("ring", "grid"):
        source = mixture(config.dataset.value)
        return source.shape, source.num_classes
    if config.dataset.value == "digits":
        source = load_digits()
        return source.shape, source.num_classes
    return (1, 28, 28), 10


def _onehot(config: TrainConfig, n_classes: int, n: int = N) -> torch.Tensor | None:
    if not config.conditional:
        return None
    return nn.functional.one_hot(torch.arange(n) % n_classes, n_classes).float()


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_builds_g_and_d_with_the_right_shapes(name: str) -> None:
    config = PRESETS[name].config
    shape, n_classes = _data_shape(config)
    torch.manual_seed(0)
    g, d = build_models(config, shape, n_classes)
    z = torch.randn(N, config.z_dim)
    onehot = _onehot(config, n_classes)
    with torch.no_grad():
        fake = g(z, onehot)
        logits = d(fake, onehot)
    assert fake.shape == (N, *shape)
    assert torch.isfinite(fake).all()
    assert logits.shape == (N,)  # raw logits, one per example
    assert torch.isfinite(logits).all()
    # G's output lives in the config's data range (2D data: unbounded)
    if config.data_range is not None:
        lo, hi = config.data_range
        assert lo <= float(fake.min()) and float(fake.max()) <= hi
        assert isinstance(g.out_act, nn.Tanh if config.arch is Arch.DCGAN else nn.Sigmoid)
    else:
        assert isinstance(g.out_act, nn.Identity)


def test_discriminator_logits_are_unbounded_scores() -> None:
    # no sigmoid at D's end: losses apply it where they need one
    for name in ("ring-bce", "digits", "dcgan"):
        config = PRESETS[name].config
        _, d = build_models(config, *_data_shape(config))
        assert not isinstance(list(d.modules())[-1], nn.Sigmoid)
        assert not any(isinstance(m, nn.Sigmoid) for m in d.modules())


def test_discriminator_logits_for_a_single_example_keep_the_batch_dimension() -> None:
    for name in ("ring-bce", "dcgan"):
        config = PRESETS[name].config.replace(d_batchnorm=False)
        shape, n_classes = _data_shape(config)
        _, d = build_models(config, shape, n_classes)
        assert d(torch.zeros(1, *shape)).shape == (1,)


@pytest.mark.parametrize("name", ["digits-conditional", "conditional"])
def test_conditional_models_take_the_label_and_depend_on_it(name: str) -> None:
    config = PRESETS[name].config
    shape, n_classes = _data_shape(config)
    torch.manual_seed(0)
    g, d = build_models(config, shape, n_classes)
    g.eval(), d.eval()  # batch-norm running stats, so one example does not depend on the rest of the batch
    z = torch.randn(N, config.z_dim)
    a = nn.functional.one_hot(torch.zeros(N, dtype=torch.long), n_classes).float()
    b = nn.functional.one_hot(torch.full((N,), 7), n_classes).float()
    assert g(z, a).shape == (N, *shape)
    assert not torch.allclose(g(z, a), g(z, b))
    x = g(z, a)
    assert d(x, a).shape == (N,)
    assert not torch.allclose(d(x, a), d(x, b))
    with pytest.raises(RuntimeError):
        g(z)  # the label is part of G's input: forgetting it is an error, not a silent unconditional run


def test_unconditional_models_ignore_n_classes() -> None:
    config = PRESETS["digits"].config
    g1, d1 = build_models(config, (1, 8, 8), 10)
    g2, d2 = build_models(config, (1, 8, 8), 0)
    assert [p.shape for p in g1.parameters()] == [p.shape for p in g2.parameters()]
    assert [p.shape for p in d1.parameters()] == [p.shape for p in d2.parameters()]


def test_conditional_input_widths_grow_by_the_class_count() -> None:
    plain = PRESETS["digits"].config
    cond = plain.replace(conditional=True)
    g0, d0 = build_models(plain, (1, 8, 8), 10)
    g1, d1 = build_models(cond, (1, 8, 8), 10)
    assert g1.blocks[0].layer.in_features == g0.blocks[0].layer.in_features + 10 == plain.z_dim + 10
    assert d1.blocks[0].layer.in_features == d0.blocks[0].layer.in_features + 10 == 64 + 10
    dc = PRESETS["conditional"].config
    g, d = build_models(dc, (1, 28, 28), 10)
    assert g.blocks[0].layer.in_channels == dc.z_dim + 10
    assert d.blocks[0].layer.in_channels == 1 + 10


_ACT_TYPES = {
    Activation.RELU: nn.ReLU,
    Activation.LEAKY_RELU: nn.LeakyReLU,
    Activation.TANH: nn.Tanh,
    Activation.SIGMOID: nn.Sigmoid,
    Activation.ELU: nn.ELU,
}


def test_make_activation_covers_every_option() -> None:
    assert set(_ACT_TYPES) == set(Activation)
    for kind, cls in _ACT_TYPES.items():
        assert type(make_activation(kind)) is cls
    assert make_activation(Activation.LEAKY_RELU, 0.3).negative_slope == pytest.approx(0.3)


@pytest.mark.parametrize("activation", list(Activation))
@pytest.mark.parametrize("preset", ["ring-bce", "digits", "dcgan"])
def test_every_activation_is_used_in_every_hidden_block(preset: str, activation: Activation) -> None:
    config = PRESETS[preset].config.replace(g_activation=activation, d_activation=activation, g_slope=0.1,
                                            d_slope=0.3)
    shape, n_classes = _data_shape(config)
    g, d = build_models(config, shape, n_classes)
    for net, slope in ((g, 0.1), (d, 0.3)):
        for block in net.blocks:
            assert type(block.act) is _ACT_TYPES[activation]
            if activation is Activation.LEAKY_RELU:
                assert block.act.negative_slope == pytest.approx(slope)
    fake = g(torch.randn(N, config.z_dim))
    assert fake.shape == (N, *shape) and d(fake).shape == (N,)


@pytest.mark.parametrize("preset", ["ring-bce", "digits", "dcgan"])
@pytest.mark.parametrize("g_bn, d_bn", [(True, True), (True, False), (False, True), (False, False)])
def test_batch_norm_on_and_off(preset: str, g_bn: bool, d_bn: bool) -> None:
    config = PRESETS[preset].config.replace(g_batchnorm=g_bn, d_batchnorm=d_bn)
    shape, n_classes = _data_shape(config)
    g, d = build_models(config, shape, n_classes)
    bn = nn.BatchNorm2d if config.arch is Arch.DCGAN else nn.BatchNorm1d
    for net, on in ((g, g_bn), (d, d_bn)):
        norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        assert len(norms) == (len(net.blocks) if on else 0)
        assert all(type(m) is bn for m in norms)
        assert all(("bn" in dict(block.named_children())) == on for block in net.blocks)
    fake = g(torch.randn(N, config.z_dim))
    assert d(fake).shape == (N,)


@pytest.mark.parametrize("depth", [1, 2, 5])
def test_mlp_depth_and_width(depth: int) -> None:
    config = PRESETS["digits"].config.replace(g_depth=depth, d_depth=depth, g_width=16, d_width=8)
    g, d = build_models(config, (1, 8, 8), 10)
    assert len(g.blocks) == depth and len(d.blocks) == depth
    assert [b.layer.out_features for b in g.blocks] == [16 * 2**i for i in range(depth)]  # G widens
    assert [b.layer.out_features for b in d.blocks] == [8 * 2 ** (depth - 1 - i) for i in range(depth)]  # D narrows
    assert g.out.out_features == 64 and d.out.out_features == 1


def test_dcgan_init_is_normal_0_0_02_with_zero_biases() -> None:
    torch.manual_seed(0)
    g, d = build_models(PRESETS["dcgan"].config, (1, 28, 28), 10)
    convs = [m for net in (g, d) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert len(convs) == 4 + 3
    weights = torch.cat([m.weight.detach().flatten() for m in convs])
    assert float(weights.std()) == pytest.approx(0.02, rel=0.05)
    assert abs(float(weights.mean())) < 0.002
    for m in convs:
        if m.weight.numel() > 5000:  # enough values for a stable estimate per layer
            assert float(m.weight.detach().std()) == pytest.approx(0.02, rel=0.1)
        assert m.bias is None or torch.all(m.bias == 0)
    norms = [m for net in (g, d) for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(torch.all(m.bias == 0) for m in norms)


def test_mlp_is_not_given_the_dcgan_init() -> None:
    torch.manual_seed(0)
    g, _ = build_models(PRESETS["digits"].config, (1, 8, 8), 10)
    # PyTorch's default Linear init is uniform(±1/√fan_in); for fan_in 32 its std is ≈ 0.10, far from 0.02
    assert float(g.blocks[0].layer.weight.detach().std()) > 0.05


def test_dcgan_accepts_only_28x28_images() -> None:
    with pytest.raises(AssertionError):
        build_models(PRESETS["dcgan"].config, (1, 8, 8), 10)


def test_models_are_deterministic_for_a_seed() -> None:
    config = PRESETS["ring-bce"].config
    torch.manual_seed(3)
    g1, _ = build_models(config, (2,), 0)
    torch.manual_seed(3)
    g2, _ = build_models(config, (2,), 0)
    assert all(torch.equal(a, b) for a, b in zip(g1.parameters(), g2.parameters(), strict=True))


def test_gradients_reach_every_parameter() -> None:
    for name in ("ring-wgan", "digits-conditional", "conditional"):
        config = PRESETS[name].config
        shape, n_classes = _data_shape(config)
        g, d = build_models(config, shape, n_classes)
        onehot = _onehot(config, n_classes)
        d(g(torch.randn(N, config.z_dim), onehot), onehot).mean().backward()
        for net in (g, d):
            for pname, p in net.named_parameters():
                assert p.grad is not None and torch.isfinite(p.grad).all(), f"{name}: {pname}"
