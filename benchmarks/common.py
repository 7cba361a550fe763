"""What the benches share: a result Row, the report's table and machine line, and the course notebook's bare loop
(the baseline that probe-overhead and gpu measure the Trainer against)."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from gan_core.config import TrainConfig
from gan_core.data import DataSource, load_dataset, to_model_range
from gan_core.train.models import build_models


@dataclass(frozen=True)
class Row:
    bench: str
    metric: str
    value: str
    target: str = ""
    note: str = ""


def bare_loop(config: TrainConfig, steps: int, data: DataSource | None = None, device: str | torch.device = "cpu") -> float:
    """The course notebook's training loop, written plainly (no records, no probes; a batch drawn on the CPU and copied
    to `device`, noise made there, torch's default Adam); returns steps per second."""
    device = torch.device(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda _device: None
    torch.manual_seed(config.seed)
    data = data if data is not None else load_dataset(config)
    gen, disc = build_models(config, data.shape, 0)
    gen, disc = gen.to(device), disc.to(device)
    opt_g = torch.optim.Adam(gen.parameters(), lr=config.lr_g, betas=(config.beta1, config.beta2))
    opt_d = torch.optim.Adam(disc.parameters(), lr=config.lr_d, betas=(config.beta1, config.beta2))
    sampler = torch.Generator().manual_seed(config.seed)
    b = config.batch_size
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        real = to_model_range(data.sample(b, sampler)[0], config).to(device)
        # (1) Update D: maximize log D(x) + log(1 − D(G(z)))
        fake = gen(torch.randn(b, config.z_dim, device=device))
        fake_logits, real_logits = disc(fake.detach()), disc(real)
        d_loss = (F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
                  + F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))) / 2
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        # (2) Update G: maximize log D(G(z))
        logits = disc(gen(torch.randn(b, config.z_dim, device=device)))
        g_loss = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
    sync(device)
    return steps / (time.perf_counter() - start)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count()} CPU cores ({cpu}), {gpu}, Python {platform.python_version()}, torch {torch.__version__}"


def markdown(rows: list[Row]) -> str:
    lines = ["| bench | metric | value | target | note |", "|---|---|---|---|---|"]
    lines += [f"| {r.bench} | {r.metric} | {r.value} | {r.target} | {r.note} |" for r in rows]
    return "\n".join(lines)


def run_jobs(job: Callable[[Any], Any], jobs: list[Any], parallel: int) -> list[Any]:
    """`job` over `jobs`, `parallel` at a time in spawned processes (each with its own torch: one per core of a 2-core
    laptop), or in this process when `parallel` is 1; results in the jobs' order."""
    if parallel <= 1:
        return [job(j) for j in jobs]
    import multiprocessing  # noqa: PLC0415 - only a parallel bench starts processes

    with multiprocessing.get_context("spawn").Pool(parallel) as pool:
        return pool.map(job, jobs, chunksize=1)
