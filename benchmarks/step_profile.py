"""Where one training step's time goes (issue 18 item 1): `python -m benchmarks step-profile`.

For ring-bce and digits on one torch thread, a Trainer (the dashboard's, probes and snapshots as configured) is timed
part by part by wrapping its methods in this process only (the engine is not instrumented): D's forward and loss,
D's backward, D's optimiser step, and the same for G, then probe records, sample snapshots, and the rest (Python,
dispatch, bookkeeping). torch.profiler counts the ATen ops a step launches and the FLOPs of its matrix products, set
against one thread's practical fp32 peak: a large matrix product timed on this machine.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

from benchmarks.common import Row
from gan_core.config import get_preset
from gan_core.train.trainer import Trainer

PARTS = ("D forward+loss", "D backward", "D optimiser", "G forward+loss", "G backward", "G optimiser", "probes",
         "snapshots")


class PartTimer:
    """Seconds spent in each part of Trainer.step, by wrapping the trainer's methods (and torch's backward) in place."""

    def __init__(self, trainer: Trainer) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._network = "D"  # whose loss a backward call belongs to: set by the forward that made it
        self._wrap(trainer, "d_forward", "D forward+loss", network="D")
        self._wrap(trainer, "g_forward", "G forward+loss", network="G")
        self._wrap(trainer.opt_d, "step", "D optimiser")
        self._wrap(trainer.opt_g, "step", "G optimiser")
        self._wrap(trainer, "snapshot", "snapshots")
        self._wrap(trainer.probe, "layer_stats", "probes")
        self._wrap(trainer.probe, "batchnorm_stats", "probes")
        self._backward = torch.Tensor.backward

    def _wrap(self, owner: Any, name: str, part: str, network: str | None = None) -> None:
        original = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            if network is not None:
                self._network = network
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[part] += time.perf_counter() - start

        setattr(owner, name, timed)

    @contextlib.contextmanager
    def backward_timed(self) -> Iterator[None]:
        """Time every `loss.backward()` as its network's backward while inside."""
        backward = self._backward
        timer = self

        def timed(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> None:
            start = time.perf_counter()
            try:
                backward(tensor, *args, **kwargs)
            finally:
                timer.seconds[f"{timer._network} backward"] += time.perf_counter() - start

        torch.Tensor.backward = timed  # type: ignore[method-assign]
        try:
            yield
        finally:
            torch.Tensor.backward = backward  # type: ignore[method-assign]


def practical_peak(size: int = 1024, repeats: int = 20) -> float:
    """GFLOP/s of one thread on a large fp32 matrix product: what this core can do when arithmetic is all there is."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def profile_preset(preset: str, steps: int, warmup: int = 50) -> tuple[float, dict[str, float], float, float]:
    """(steps/s, seconds per step by part, ATen ops per step, GFLOP per step) for `preset` on the current thread count."""
    config = get_preset(preset).config.replace(steps=100 * steps)  # no learning-rate decay to the end in the window
    trainer = Trainer(config)
    for _ in range(warmup):
        trainer.step()
    timer = PartTimer(trainer)
    with timer.backward_timed():
        start = time.perf_counter()
        for _ in range(steps):
            trainer.step()
        total = time.perf_counter() - start
    per_step = {part: timer.seconds[part] / steps for part in PARTS}
    per_step["rest (Python, dispatch, records)"] = total / steps - sum(per_step.values())
    counted = min(steps, 100)  # the profiler's own overhead is large: it only counts, over fewer steps
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        for _ in range(counted):
            trainer.step()
    events = prof.key_averages()
    ops = sum(e.count for e in events if e.key.startswith("aten::"))
    flops = sum(e.flops for e in events)
    return steps / total, per_step, ops / counted, flops / counted / 1e9


def step_profile(presets: tuple[str, ...] = ("ring-bce", "digits"), steps: int = 1000,
                 threads: int = 1) -> list[Row]:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        peak = practical_peak()
        rows = [Row("step-profile", "one thread's fp32 peak (1024² matmul)", f"{peak:.0f} GFLOP/s")]
        for preset in presets:
            rate, parts, ops, gflop = profile_preset(preset, steps)
            ms = 1000 / rate
            rows.append(Row("step-profile", f"{preset} steps/s", f"{rate:.0f}",
                            note=f"{threads} thread, {steps} steps, probes and snapshots as the preset sets them"))
            for part, seconds in parts.items():
                rows.append(Row("step-profile", f"{preset} {part}", f"{seconds * 1000:.3f} ms ({seconds * 1000 / ms:.0%})"))
            rows.append(Row("step-profile", f"{preset} ATen ops per step", f"{ops:.0f}",
                            note=f"{ms * 1000 / max(ops, 1):.1f} µs per op on average"))
            achieved = gflop * rate
            rows.append(Row("step-profile", f"{preset} achieved", f"{achieved:.1f} GFLOP/s ({achieved / peak:.0%} of peak)",
                            note=f"{gflop * 1000:.0f} MFLOP per step (matrix products, as torch.profiler counts)"))
        return rows
    finally:
        torch.set_num_threads(before)
