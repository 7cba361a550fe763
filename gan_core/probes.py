"""Probes: what the activation, batch-norm and vanishing-gradient lessons plot, measured inside a training step.

Hooks are attached only for the forward passes of a probe step and removed right after, so ordinary steps pay
nothing. They read the tensors the training step computes anyway: probing never adds a forward pass, never touches
batch-norm running statistics and never changes a gradient, so a probed run trains exactly like an unprobed one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from gan_core.config import Activation

HIST_EDGES = np.linspace(-4.0, 4.0, 41)  # fixed bins so histograms from different steps and runs line up
SATURATION_GRAD = 0.01  # a sigmoid/tanh unit is saturated where its derivative is below this

_KINDS: dict[type, Activation] = {
    nn.ReLU: Activation.RELU, nn.LeakyReLU: Activation.LEAKY_RELU, nn.Tanh: Activation.TANH,
    nn.Sigmoid: Activation.SIGMOID, nn.ELU: Activation.ELU,
}


@dataclass(frozen=True)
class LayerStats:
    """One hidden activation layer at one probe step; statistics are of its input (the pre-activation)."""

    net: str  # "G" or "D"
    layer: str  # e.g. "block 1"
    kind: Activation
    dead_fraction: float  # relu: output 0 for every sample; leaky relu: on the negative side for every sample
    saturated_fraction: float  # sigmoid/tanh: fraction of values where the derivative < SATURATION_GRAD
    mean: float
    std: float
    hist: np.ndarray  # counts of pre-activation values in HIST_EDGES bins (clipped into the end bins)


@dataclass(frozen=True)
class BatchNormStats:
    """One BatchNorm layer at one probe step: the batch's statistics against the running ones it keeps for inference."""

    net: str
    layer: str
    batch_mean: np.ndarray  # per channel
    batch_var: np.ndarray
    running_mean: np.ndarray
    running_var: np.ndarray
    hist_in: np.ndarray  # pre-BN values
    hist_out: np.ndarray  # post-BN values (after γ, β)


@dataclass(frozen=True)
class ProbeRecord:
    step: int
    grad_norms: dict[str, dict[str, float]]  # {"G": {layer: ‖∇‖₂}, "D": {...}} over each layer's weight and bias
    layers: tuple[LayerStats, ...]
    batchnorm: tuple[BatchNormStats, ...]


def _histogram(x: Tensor) -> np.ndarray:
    lo, hi = float(HIST_EDGES[0]), float(HIST_EDGES[-1])
    return torch.histc(x.detach().float().clamp(lo, hi), bins=len(HIST_EDGES) - 1, min=lo, max=hi).cpu().numpy()


def _channels_first(x: Tensor) -> Tensor:
    """(N, C) or (N, C, H, W) → (C, N·H·W): one row of values per unit/channel."""
    return x.detach().transpose(0, 1).reshape(x.shape[1], -1)


def block_label(name: str) -> str:
    """'blocks.0.act' → 'block 1' (what a learner reads on the plot)."""
    parts = name.split(".")
    return f"block {int(parts[1]) + 1}" if len(parts) >= 2 and parts[0] == "blocks" and parts[1].isdigit() else name


class Probe:
    """Collects activation and batch-norm statistics from the forward passes run inside `capture`."""

    def __init__(self, nets: dict[str, nn.Module]) -> None:
        self.nets = nets
        self._acts: dict[tuple[str, str], list[Tensor]] = {}
        self._bn_in: dict[tuple[str, str], list[Tensor]] = {}
        self._bn_out: dict[tuple[str, str], list[Tensor]] = {}

    def reset(self) -> None:
        self._acts.clear()
        self._bn_in.clear()
        self._bn_out.clear()

    @contextmanager
    def capture(self, net: str) -> Iterator[None]:
        """Record every hidden activation's input and every BatchNorm's input/output during the enclosed forwards."""
        handles = []
        for name, module in self.nets[net].named_modules():
            if not name.startswith("blocks."):
                continue  # the output activation (Sigmoid/Tanh of G) is not a hidden unit
            key = (net, name.rsplit(".", 1)[0])
            if type(module) in _KINDS:
                handles.append(module.register_forward_hook(
                    lambda m, inp, out, key=key: self._acts.setdefault(key, []).append(inp[0].detach())))
            elif isinstance(module, nn.modules.batchnorm._BatchNorm):
                handles.append(module.register_forward_hook(self._bn_hook(key)))
        try:
            yield
        finally:
            for h in handles:
                h.remove()

    def _bn_hook(self, key: tuple[str, str]):  # noqa: ANN202 - a hook closure
        def hook(m: nn.Module, inp: tuple[Tensor, ...], out: Tensor) -> None:
            self._bn_in.setdefault(key, []).append(inp[0].detach())
            self._bn_out.setdefault(key, []).append(out.detach())
        return hook

    def layer_stats(self) -> tuple[LayerStats, ...]:
        stats = []
        for (net, block), tensors in self._acts.items():
            module = self.nets[net].get_submodule(f"{block}.act")
            kind = _KINDS[type(module)]
            pre = torch.cat(tensors)  # the pre-activations of every probed forward (D sees real and fake batches)
            per_unit = _channels_first(pre)
            dead = saturated = 0.0
            if kind in (Activation.RELU, Activation.LEAKY_RELU):
                dead = float((per_unit.max(dim=1).values <= 0).float().mean())
            elif kind in (Activation.SIGMOID, Activation.TANH):
                y = module(pre)
                grad = y * (1 - y) if kind is Activation.SIGMOID else 1 - y * y
                saturated = float((grad < SATURATION_GRAD).float().mean())
            stats.append(LayerStats(net, block_label(block), kind, dead, saturated, float(pre.mean()),
                                    float(pre.std()) if pre.numel() > 1 else 0.0, _histogram(pre)))
        return tuple(stats)

    def batchnorm_stats(self) -> tuple[BatchNormStats, ...]:
        stats = []
        for (net, block), inputs in self._bn_in.items():
            bn = self.nets[net].get_submodule(f"{block}.bn")
            per_channel = _channels_first(inputs[-1])  # the statistics of the last batch it normalised
            stats.append(BatchNormStats(
                net, block_label(block),
                batch_mean=per_channel.mean(dim=1).cpu().numpy(),
                batch_var=per_channel.var(dim=1, unbiased=False).cpu().numpy(),
                running_mean=bn.running_mean.detach().cpu().numpy().copy(),
                running_var=bn.running_var.detach().cpu().numpy().copy(),
                hist_in=_histogram(torch.cat(inputs)),
                hist_out=_histogram(torch.cat(self._bn_out[(net, block)])),
            ))
        return tuple(stats)


def grad_norms(net: nn.Module) -> dict[str, float]:
    """Per-layer L2 norm of the current gradients (weights and biases together), keyed by block label."""
    sums: dict[str, Tensor] = {}
    for name, p in net.named_parameters():
        if p.grad is None:
            continue
        owner = name.rsplit(".", 1)[0]  # "blocks.0.layer" or "out"
        label = block_label(owner) if owner.startswith("blocks.") else "output"
        if owner.endswith(".bn"):
            continue  # γ and β gradients are reported with their layer's weights by the lesson, not separately
        sums[label] = sums.get(label, 0) + p.grad.detach().pow(2).sum()
    return {k: float(v.sqrt()) for k, v in sums.items()}
