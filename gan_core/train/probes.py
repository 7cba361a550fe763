"""Probes: what the activation, batch-norm and vanishing-gradient lessons plot, measured inside a training step.

Hooks are attached only for the forward passes of a probe step and removed right after, so ordinary steps pay
nothing. They read the tensors the training step computes anyway: probing never adds a forward pass, never touches
batch-norm running statistics and never changes a gradient, so a probed run trains exactly like an unprobed one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
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
    gamma: np.ndarray | None = None  # the learned scale per channel (None: recorded before it was, or no affine)
    beta: np.ndarray | None = None  # the learned shift per channel


@dataclass(frozen=True)
class ProbeRecord:
    step: int
    grad_norms: dict[str, dict[str, float]]  # {"G": {layer: ‖∇‖₂}, "D": {...}} over each layer's weight and bias
    layers: tuple[LayerStats, ...]
    batchnorm: tuple[BatchNormStats, ...]


def _bin_counts(tensors: list[Tensor]) -> list[Tensor]:
    """Counts of each tensor's values in the HIST_EDGES bins (out-of-range values clipped into the end bins, NaN
    dropped), every tensor binned in one pass and counted by one bincount: torch.histc, tensor by tensor, made a
    probe step cost as much as a training step."""
    lo, hi = float(HIST_EDGES[0]), float(HIST_EDGES[-1])
    bins = len(HIST_EDGES) - 1
    flat = torch.cat([x.detach().reshape(-1).float() for x in tensors])
    index = flat.clamp(lo, hi).sub_(lo).mul_(bins / (hi - lo)).long().clamp_(0, bins - 1)
    start = 0
    for i, x in enumerate(tensors):  # tensor i counts into bins [i·bins, (i+1)·bins)
        index[start:start + x.numel()] += i * bins
        start += x.numel()
    if bool(flat.sum().isnan()):  # rare (a diverging layer): one cheap check instead of a mask on every probe
        index = index[~flat.isnan()]
    return list(torch.bincount(index, minlength=bins * len(tensors)).reshape(len(tensors), bins))


def _unit_dims(x: Tensor) -> tuple[int, ...]:
    """The dimensions that hold samples, not units: 0 for (N, C), (0, 2, 3) for (N, C, H, W)."""
    return (0, *range(2, x.dim()))


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
        # A BatchNorm's output is the next activation's input: each captured tensor is binned once per probe.
        self._counts: dict[tuple[int, tuple[int, ...], tuple[int, ...]], Tensor] = {}

    def reset(self) -> None:
        self._acts.clear()
        self._bn_in.clear()
        self._bn_out.clear()
        self._counts.clear()

    def refilled(self) -> None:
        """The captured tensors now hold new values (a replayed CUDA graph wrote its step into them, cuda_graphs.py):
        forget the histogram counts cached for the old ones, keep the tensors."""
        self._counts.clear()

    def _histograms(self, groups: list[list[Tensor]]) -> list[np.ndarray]:
        """One histogram per group of captured tensors (e.g. D's real and fake batches), as float counts."""
        def key(x: Tensor) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
            return (x.data_ptr(), tuple(x.shape), tuple(x.stride()))  # the captured tensors are alive: no reuse
        new = list({key(x): x for group in groups for x in group if key(x) not in self._counts}.items())
        if new:
            self._counts.update(zip((k for k, _ in new), _bin_counts([x for _, x in new]), strict=True))
        return [torch.stack([self._counts[key(x)] for x in group]).sum(0).float().cpu().numpy() for group in groups]

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

    def _bn_hook(self, key: tuple[str, str]) -> Callable[[nn.Module, tuple[Tensor, ...], Tensor], None]:
        def hook(m: nn.Module, inp: tuple[Tensor, ...], out: Tensor) -> None:
            self._bn_in.setdefault(key, []).append(inp[0].detach())
            self._bn_out.setdefault(key, []).append(out.detach())
        return hook

    def layer_stats(self) -> tuple[LayerStats, ...]:
        names, kinds, scalars = [], [], []
        for (net, block), tensors in self._acts.items():
            module = self.nets[net].get_submodule(f"{block}.act")
            kind = _KINDS[type(module)]
            # the pre-activations of every probed forward (D sees a real and a fake batch)
            pre = tensors[0] if len(tensors) == 1 else torch.cat(tensors)
            zero = pre.new_zeros(())
            dead = saturated = zero
            if kind in (Activation.RELU, Activation.LEAKY_RELU):
                dead = (pre.amax(dim=_unit_dims(pre)) <= 0).float().mean()
            elif kind in (Activation.SIGMOID, Activation.TANH):
                y = module(pre)
                grad = y * (1 - y) if kind is Activation.SIGMOID else 1 - y * y
                saturated = (grad < SATURATION_GRAD).float().mean()
            std = pre.std() if pre.numel() > 1 else zero
            scalars.append(torch.stack([dead, saturated, pre.mean(), std]))
            names.append((net, block_label(block)))
            kinds.append(kind)
        if not names:
            return ()
        values = torch.stack(scalars).tolist()  # one copy off the device, not four per layer
        hists = self._histograms(list(self._acts.values()))
        return tuple(LayerStats(net, layer, kind, *row, hist=hist)
                     for (net, layer), kind, row, hist in zip(names, kinds, values, hists, strict=True))

    def batchnorm_stats(self) -> tuple[BatchNormStats, ...]:
        keys = list(self._bn_in)
        hists = self._histograms([self._bn_in[k] for k in keys] + [self._bn_out[k] for k in keys])
        stats = []
        for i, (net, block) in enumerate(keys):
            bn = self.nets[net].get_submodule(f"{block}.bn")
            last = self._bn_in[(net, block)][-1]  # the statistics of the last batch it normalised
            mean = last.mean(dim=_unit_dims(last), keepdim=True)  # var_mean over dim 0 is 8× slower than this
            var = (last - mean).square_().mean(dim=_unit_dims(last))
            stats.append(BatchNormStats(
                net, block_label(block),
                batch_mean=mean.flatten().cpu().numpy(),
                batch_var=var.cpu().numpy(),
                running_mean=bn.running_mean.detach().cpu().numpy().copy(),
                running_var=bn.running_var.detach().cpu().numpy().copy(),
                hist_in=hists[i],
                hist_out=hists[len(keys) + i],
                gamma=None if bn.weight is None else bn.weight.detach().cpu().numpy().copy(),
                beta=None if bn.bias is None else bn.bias.detach().cpu().numpy().copy(),
            ))
        return tuple(stats)


def grad_norms(net: nn.Module) -> dict[str, float]:
    """Per-layer L2 norm of the current gradients (weights and biases together), keyed by block label."""
    labels, norms = [], []
    for name, p in net.named_parameters():
        owner = name.rsplit(".", 1)[0]  # "blocks.0.layer" or "out"
        if p.grad is None or owner.endswith(".bn"):
            continue  # γ and β gradients are reported with their layer's weights by the lesson, not separately
        labels.append(block_label(owner) if owner.startswith("blocks.") else "output")
        norms.append(torch.linalg.vector_norm(p.grad.detach()))
    sums: dict[str, float] = {}
    for label, norm in zip(labels, torch.stack(norms).tolist() if norms else [], strict=True):
        sums[label] = sums.get(label, 0.0) + norm * norm  # ‖(w, b)‖² = ‖w‖² + ‖b‖²
    return {k: math.sqrt(v) for k, v in sums.items()}
