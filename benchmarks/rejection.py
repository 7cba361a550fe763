"""bench rejection: discriminator rejection sampling (gan_core.evaluation.rejection) on the ring and grid presets.

Each preset × seed trains for the preset's default steps (its probes and snapshots included, as the dashboard trains)
in its own process on one torch thread, then scores 2,500 samples raw and 2,500 kept by D at γ's 80th, 90th (the
default) and 95th percentile. Raw and filtered figures are separate rows, never mixed; the figures are of quality,
not speed (a shared machine's seconds say little).
"""

from __future__ import annotations

import statistics
from typing import Any

import torch

from benchmarks.common import Row, run_jobs
from gan_core.config import get_preset
from gan_core.evaluation.metrics import mode_stats
from gan_core.evaluation.rejection import GAMMA_PERCENTILE, rejection_sample
from gan_core.train.trainer import Trainer

PRESETS = ("ring-bce", "grid-bce")
PERCENTILES = (80.0, GAMMA_PERCENTILE, 95.0)
TARGETS = {"ring": (8.0, 0.97), "grid": (24.5, 0.90)}  # issue 18: with rejection sampling, every mode kept


def rejection_run(preset: str, seed: int, n: int = 2500, overrides: dict | None = None) -> dict[str, Any]:
    """Train one preset, then its raw figures and, per percentile, the filtered ones with the acceptance rate."""
    torch.set_num_threads(1)
    trainer = Trainer(get_preset(preset).config.replace(seed=seed, **(overrides or {})))
    while not trainer.finished:
        trainer.step()
    modes, sigma = trainer.data.modes.numpy(), trainer.data.sigma
    out: dict[str, Any] = {"raw": mode_stats(trainer.sample(n, seed=10_000 + seed), modes, sigma)}
    for pct in PERCENTILES:
        kept = rejection_sample(trainer, n, seed=10_000 + seed, percentile=pct)
        out[pct] = {**mode_stats(kept.samples, modes, sigma), "acceptance": kept.acceptance_rate}
    return out


def _job(job: tuple[str, int, int, dict | None]) -> dict[str, Any]:
    return rejection_run(*job)


def rejection(presets: tuple[str, ...] = PRESETS, seeds: tuple[int, ...] = (0, 1, 2, 3, 4), n: int = 2500,
              parallel: int = 2, overrides: dict | None = None) -> list[Row]:
    """One row of raw figures and one per percentile for each preset, means over seeds and each seed's own figures.
    `overrides` (e.g. fewer steps) is for tests."""
    jobs = [(preset, seed, n, overrides) for preset in presets for seed in seeds]
    results = run_jobs(_job, jobs, parallel)
    rows = []
    for preset in presets:
        mine = [r for (p, *_), r in zip(jobs, results, strict=True) if p == preset]
        modes_target, hq_target = TARGETS[get_preset(preset).config.dataset.value]
        steps = (overrides or {}).get("steps", get_preset(preset).config.steps)
        raw = [r["raw"] for r in mine]
        rows.append(Row("rejection", f"{preset} raw", _summary(raw), note=f"{steps:,} steps; seeds "
                        f"{', '.join(map(str, seeds))}: {_per_seed(raw)}"))
        for pct in PERCENTILES:
            kept = [r[pct] for r in mine]
            modes = statistics.mean(k["modes_covered"] for k in kept)
            hq = statistics.mean(k["high_quality_fraction"] for k in kept)
            acc = statistics.mean(k["acceptance"] for k in kept)
            met = modes >= modes_target and hq >= hq_target
            default = " (default)" if pct == GAMMA_PERCENTILE else ""
            rows.append(Row("rejection", f"{preset} D-filtered, γ at the {pct:.0f}th percentile{default}",
                            f"{_summary(kept)} · {acc:.0%} accepted",
                            f"{modes_target:.1f} modes · ≥ {hq_target:.0%} HQ" if default else "",
                            f"{'met; ' if met and default else 'missed; ' if default else ''}{_per_seed(kept)}"))
    return rows


def _summary(stats: list[dict[str, Any]]) -> str:
    modes = statistics.mean(s["modes_covered"] for s in stats)
    hq = statistics.mean(s["high_quality_fraction"] for s in stats)
    rkl = statistics.mean(s["reverse_kl"] for s in stats)
    return f"{modes:.1f} modes · {hq:.1%} HQ · rKL {rkl:.3f}"


def _per_seed(stats: list[dict[str, Any]]) -> str:
    return ", ".join(f"{s['modes_covered']}/{s['high_quality_fraction']:.0%}" for s in stats)
