"""Generators and discriminators: the course's MLP "first GAN" and its DCGAN, with options the lessons vary.

Every hidden block is an nn.Sequential with named parts (`linear`/`conv`, `bn`, `act`) so probes can find and label
them. Discriminators return raw logits (scores); losses apply the sigmoid where they need one.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from gan_core.config import Activation, Arch, TrainConfig
from gan_core.shapes import dcgan_discriminator_convs, dcgan_generator_convs, mlp_discriminator_dims, mlp_generator_dims


@contextmanager
def inference(*modules: nn.Module) -> Iterator[None]:
    """Eval mode (batch norm reads its running statistics and leaves them alone), restored afterwards."""
    saved = [(m, m.training) for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, training in saved:
            m.train(training)


def make_activation(kind: Activation, slope: float = 0.2) -> nn.Module:
    if kind is Activation.RELU:
        return nn.ReLU()
    if kind is Activation.LEAKY_RELU:
        return nn.LeakyReLU(slope)
    if kind is Activation.TANH:
        return nn.Tanh()
    if kind is Activation.SIGMOID:
        return nn.Sigmoid()
    assert kind is Activation.ELU, kind
    return nn.ELU()


def _block(layer: nn.Module, width: int, batchnorm: bool, act: nn.Module, bn_cls: type) -> nn.Sequential:
    parts: OrderedDict[str, nn.Module] = OrderedDict(layer=layer)
    if batchnorm:
        parts["bn"] = bn_cls(width)
    parts["act"] = act
    return nn.Sequential(parts)


class MLPGenerator(nn.Module):
    """z (+ one-hot label) → [Linear → BatchNorm1d → act] × depth, widths w, 2w, 4w, … → Linear → output activation."""

    def __init__(self, z_dim: int, out_shape: tuple[int, ...], width: int, depth: int, act: Activation, slope: float,
                 batchnorm: bool, n_classes: int, output: str) -> None:
        super().__init__()
        self.z_dim, self.n_classes, self.out_shape = z_dim, n_classes, out_shape
        dims = mlp_generator_dims(z_dim + n_classes, width, depth, math.prod(out_shape))
        self.blocks = nn.Sequential(*[
            _block(nn.Linear(dims[i], dims[i + 1]), dims[i + 1], batchnorm, make_activation(act, slope), nn.BatchNorm1d)
            for i in range(depth)
        ])
        self.out = nn.Linear(dims[-2], dims[-1])
        self.out_act = {"sigmoid": nn.Sigmoid(), "tanh": nn.Tanh(), "linear": nn.Identity()}[output]

    def forward(self, z: Tensor, onehot: Tensor | None = None) -> Tensor:
        h = z if onehot is None else torch.cat([z, onehot], dim=1)
        return self.out_act(self.out(self.blocks(h))).view(len(z), *self.out_shape)


class MLPDiscriminator(nn.Module):
    """x (+ one-hot label) → [Linear → act] × depth, widths …, 4w, 2w, w → Linear → one logit."""

    def __init__(self, in_shape: tuple[int, ...], width: int, depth: int, act: Activation, slope: float,
                 batchnorm: bool, n_classes: int) -> None:
        super().__init__()
        self.n_classes = n_classes
        dims = mlp_discriminator_dims(math.prod(in_shape) + n_classes, width, depth)
        self.blocks = nn.Sequential(*[
            _block(nn.Linear(dims[i], dims[i + 1]), dims[i + 1], batchnorm, make_activation(act, slope), nn.BatchNorm1d)
            for i in range(depth)
        ])
        self.out = nn.Linear(dims[-2], dims[-1])

    def forward(self, x: Tensor, onehot: Tensor | None = None) -> Tensor:
        h = x.flatten(1)
        if onehot is not None:
            h = torch.cat([h, onehot], dim=1)
        return self.out(self.blocks(h)).squeeze(1)


class DCGANGenerator(nn.Module):
    """The course's DCGAN generator for 28×28: z as a 1×1 map, transposed convolutions up to 28×28, Tanh."""

    def __init__(self, z_dim: int, width: int, act: Activation, slope: float, batchnorm: bool, n_classes: int,
                 channels: int = 1) -> None:
        super().__init__()
        self.z_dim, self.n_classes = z_dim, n_classes
        *hidden, out = dcgan_generator_convs(z_dim + n_classes, width, channels)  # 3×3, 6×6, 13×13, then 28×28

        def up(cin: int, cout: int, k: int, s: int) -> nn.Sequential:
            return _block(nn.ConvTranspose2d(cin, cout, k, s), cout, batchnorm, make_activation(act, slope), nn.BatchNorm2d)

        self.blocks = nn.Sequential(*[up(*conv) for conv in hidden])
        self.out = nn.ConvTranspose2d(*out)
        self.out_act = nn.Tanh()
        init_dcgan(self)

    def forward(self, z: Tensor, onehot: Tensor | None = None) -> Tensor:
        h = z if onehot is None else torch.cat([z, onehot], dim=1)
        return self.out_act(self.out(self.blocks(h[:, :, None, None])))


class DCGANDiscriminator(nn.Module):
    """The course's DCGAN discriminator: strided convolutions 28 → 13 → 5 → 1, one logit; labels as extra channels."""

    def __init__(self, width: int, act: Activation, slope: float, batchnorm: bool, n_classes: int,
                 channels: int = 1) -> None:
        super().__init__()
        self.n_classes = n_classes
        *hidden, out = dcgan_discriminator_convs(channels + n_classes, width)  # 13×13, 5×5, then 1×1

        def down(cin: int, cout: int, k: int, s: int) -> nn.Sequential:
            return _block(nn.Conv2d(cin, cout, k, s), cout, batchnorm, make_activation(act, slope), nn.BatchNorm2d)

        self.blocks = nn.Sequential(*[down(*conv) for conv in hidden])
        self.out = nn.Conv2d(*out)
        init_dcgan(self)

    def forward(self, x: Tensor, onehot: Tensor | None = None) -> Tensor:
        if onehot is not None:
            x = torch.cat([x, onehot[:, :, None, None].expand(-1, -1, *x.shape[2:])], dim=1)
        return self.out(self.blocks(x)).flatten()


def init_dcgan(module: nn.Module) -> None:
    """DCGAN paper / course init: conv and batch-norm weights from N(0, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def build_models(config: TrainConfig, data_shape: tuple[int, ...], n_classes: int) -> tuple[nn.Module, nn.Module]:
    """G and D for a config; n_classes is the label count when the config is conditional (else ignored)."""
    k = n_classes if config.conditional else 0
    if config.arch is Arch.DCGAN:
        assert data_shape[1:] == (28, 28), data_shape
        g = DCGANGenerator(config.z_dim, config.g_width, config.g_activation, config.g_slope, config.g_batchnorm, k,
                           channels=data_shape[0])
        d = DCGANDiscriminator(config.d_width, config.d_activation, config.d_slope, config.d_batchnorm, k,
                               channels=data_shape[0])
        return g, d
    output = "linear" if config.dataset.is_2d else "sigmoid"
    g = MLPGenerator(config.z_dim, data_shape, config.g_width, config.g_depth, config.g_activation, config.g_slope,
                     config.g_batchnorm, k, output)
    d = MLPDiscriminator(data_shape, config.d_width, config.d_depth, config.d_activation, config.d_slope,
                         config.d_batchnorm, k)
    return g, d
