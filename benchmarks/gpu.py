"""The gpu bench: the course's first GAN (an MLP on MNIST, batch 128) on a CUDA GPU, the course notebook's eager loop
against the Trainer's CUDA-graph path (gan_core/train/cuda_graphs.py), A B A B, in steps per second.

Without a CUDA GPU it returns one row saying so. Where MNIST is not found (the data_dir argument, GAN_DATA_DIR,
../shared/data beside the repository, data/), it trains on random tensors of MNIST's shape, which cost the same per step,
and says so. Warm-up and capture are timed apart from the steps/s. `python -m benchmarks gpu` runs it.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import Row, bare_loop
from gan_core.config import ConfigError, TrainConfig, get_preset
from gan_core.data import DataSource, load_torchvision
from gan_core.train.cuda_graphs import GraphSteps, accelerate
from gan_core.train.probes import ProbeRecord
from gan_core.train.records import StepResult
from gan_core.train.trainer import Trainer

BENCH = "gpu"
TARGET = "≥ 1000 steps/s"
SHARED_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def gpu(steps: int = 2000, rounds: int = 3, preset: str = "first-gan", data_dir: str | os.PathLike | None = None,
        eager_steps: int = 300) -> list[Row]:
    """The rows of the gpu bench; one row saying it was skipped where there is no CUDA GPU."""
    if not torch.cuda.is_available():
        return [Row(BENCH, "skipped", "no CUDA GPU", TARGET,
                    "torch.cuda.is_available() is False on this machine: run benchmarks/gpu_check.sh where there is one")]
    device = torch.device("cuda")
    config = get_preset(preset).config.replace(steps=1_000_000)  # no end-of-run snapshot or lr-decay end in the window
    data = find_mnist(config, data_dir)
    what = f"{preset} on {data.name}" + (f" ({data.note})" if data.note else "")

    start = time.perf_counter()
    ours = accelerate(Trainer(config, device="cuda", data=data), "auto")
    results = ours.steps(config.probe_every)  # the first call warms up and captures
    torch.cuda.synchronize()
    first_call_s = time.perf_counter() - start
    graphed_path = isinstance(ours, GraphSteps) and not ours.fell_back
    capture_s = ours.capture_s if graphed_path else math.nan

    bare_loop(config, 20, data, device)  # warm the plain loop's kernels and cuBLAS handles too
    bare, graphed = [], []
    for _ in range(rounds):  # A B A B: a noisy machine hits both alike
        bare.append(bare_loop(config, steps, data, device))
        t0 = time.perf_counter()
        batch = ours.steps(steps)  # it ends with a read of the GPU, so the time includes the queued work
        graphed.append(len(batch) / (time.perf_counter() - t0))
        results += batch
    eager, eager_results = trainer_eager_cuda(config, data, eager_steps)

    fmt = ", ".join
    probes = [r.probe for r in results if r.probe is not None]
    return [
        Row(BENCH, "device", torch.cuda.get_device_name(0), note=f"torch {torch.__version__}, CUDA {torch.version.cuda}"),
        Row(BENCH, "bare eager loop steps/s", fmt(f"{v:.0f}" for v in bare),
            note=f"{what}: the course notebook's loop on the GPU (batches copied from the CPU, torch's default Adam), "
                 f"{steps} steps a round"),
        Row(BENCH, "Trainer, eager steps/s", f"{eager:.0f}",
            note=f"Trainer.steps, {eager_steps} steps: the engine's own eager path, for reference"),
        Row(BENCH, "Trainer, CUDA graphs steps/s", fmt(f"{v:.0f}" for v in graphed), TARGET,
            note=f"{ours.acceleration}; probe every {config.probe_every}, samples every {config.sample_every} steps, "
                 f"metrics read every {ours.read_every if graphed_path else 1}"),
        Row(BENCH, "ratio CUDA graphs / bare", f"{sum(graphed) / sum(bare):.1f}"),
        Row(BENCH, "warm-up and capture", f"{capture_s:.2f} s",
            note=f"once per Trainer (and after a checkpoint load), not in the steps/s; the first call with its "
                 f"{config.probe_every} steps took {first_call_s:.2f} s"),
        Row(BENCH, "probes on the graphed path", probe_check(probes, eager_results)),
    ]


def find_mnist(config: TrainConfig, data_dir: str | os.PathLike | None = None) -> DataSource:
    """MNIST from the first folder that has it, never downloaded; else random tensors of its shape, with a note."""
    folders = [data_dir, os.environ.get("GAN_DATA_DIR"), SHARED_DATA_DIR, "data"]
    tried = []
    for folder in dict.fromkeys(str(f) for f in folders if f):
        try:
            return load_torchvision(config.dataset, folder, download=False)
        except ConfigError:
            tried.append(folder)
    gen = torch.Generator().manual_seed(0)
    n = 60_000
    return DataSource(name=config.dataset.value, shape=(1, 28, 28), value_range=(0.0, 1.0), num_classes=10, size=n,
                      note=f"MNIST not found in {', '.join(tried)}: random tensors of its shape",
                      x=torch.rand(n, 1, 28, 28, generator=gen), y=torch.randint(10, (n,), generator=gen))


def trainer_eager_cuda(config: TrainConfig, data: DataSource, steps: int) -> tuple[float, list[StepResult]]:
    """The Trainer's own eager path on the GPU: steps per second, and its results (for the probe check)."""
    trainer = Trainer(config, device="cuda", data=data)
    warm = trainer.steps(config.probe_every)
    torch.cuda.synchronize()
    start = time.perf_counter()
    results = trainer.steps(steps)
    torch.cuda.synchronize()
    return steps / (time.perf_counter() - start), warm + results


def probe_check(probes: list[ProbeRecord], eager: list[StepResult]) -> str:
    """How many probe records the graphed path made, whether every number in them is finite, and whether they cover
    the same layers as the eager path's."""
    if not probes:
        return "no probe records: FAILED"
    finite = all(
        all(math.isfinite(v) for norms in p.grad_norms.values() for v in norms.values())
        and all(math.isfinite(x) and np.isfinite(s.hist).all()
                for s in p.layers for x in (s.dead_fraction, s.saturated_fraction, s.mean, s.std))
        and all(np.isfinite(b.batch_mean).all() and np.isfinite(b.batch_var).all() for b in p.batchnorm)
        for p in probes)
    reference = next((r.probe for r in eager if r.probe is not None), None)
    if reference is None:
        same = "no eager probe record to compare"
    else:
        ours = probes[0]
        alike = (_shape(ours) == _shape(reference))
        same = "same layers as the eager path's" if alike else "NOT the same layers as the eager path's: FAILED"
    return f"{len(probes)} records, {'all finite' if finite else 'NOT all finite: FAILED'}, {same}"


def _shape(p: ProbeRecord) -> tuple:
    return ({net: sorted(norms) for net, norms in p.grad_norms.items()}, [(s.net, s.layer, s.kind) for s in p.layers],
            [(b.net, b.layer) for b in p.batchnorm])
