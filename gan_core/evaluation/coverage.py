"""Mode coverage of a run's sample snapshots: what the mode-collapse lesson plots, one row per snapshot.

A snapshot's samples come from the run's fixed noise, so snapshot after snapshot the same z's are tracked: a class or a
mode that disappears from them has been dropped by G, not by chance. Images are judged by the dataset's cached
classifier (gan_core.evaluation.classifier), 2D mixtures by the VEEGAN/PacGAN definitions (metrics.mode_stats).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from gan_core.data import DataSource
from gan_core.evaluation.classifier import get_classifier, predict_proba
from gan_core.evaluation.metrics import class_stats, mode_stats
from gan_core.train.records import SampleRecord


def can_measure(source: DataSource) -> bool:
    """Coverage needs modes (ring, grid) or labels to train a classifier on (digits, MNIST…); user points have neither."""
    return source.modes is not None or (source.is_image and source.num_classes > 0)


def image_stats(samples: np.ndarray, source: DataSource) -> dict[str, Any]:
    """metrics.class_stats of images (N, C, H, W) in [0, 1], judged by the source's classifier, plus `n` and
    `data_distribution` (the data's class fractions, what a perfect G's histogram / n would match)."""
    classifier, _ = get_classifier(source)
    probs = predict_proba(classifier, torch.as_tensor(np.asarray(samples, dtype=np.float32)))
    data_dist = source.class_distribution()
    return {**class_stats(probs, data_dist), "n": len(probs), "data_distribution": [float(p) for p in data_dist]}


def point_stats(samples: np.ndarray, source: DataSource) -> dict[str, Any]:
    """metrics.mode_stats of 2D samples (N, 2) on the source's mixture, plus `n`."""
    assert source.modes is not None and source.sigma is not None, f"{source.name} has no modes"
    x = np.asarray(samples, dtype=np.float64).reshape(-1, 2)
    return {**mode_stats(x, source.modes.numpy(), source.sigma), "n": len(x)}


def record_stats(record: SampleRecord, source: DataSource) -> dict[str, Any]:
    """The coverage numbers of one snapshot, with its `step`: class_stats for images, mode_stats for 2D mixtures.

    A conditional run's fixed noise asks for each class in turn, so its histogram measures whether G obeys the labels.
    """
    if not can_measure(source):
        raise ValueError(f"{source.name}: no modes and no classes to measure coverage against")
    stats = image_stats(record.samples, source) if source.is_image else point_stats(record.samples, source)
    return {"step": int(record.step), **stats}


def coverage_table(rows: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Per-snapshot stats (from record_stats, in step order) as columns: step, covered, total, and kl (images: KL to the
    data's classes) or high_quality and reverse_kl (2D)."""
    out: dict[str, list] = {"step": [], "covered": [], "total": []}
    for row in rows:
        out["step"].append(row["step"])
        out["covered"].append(row.get("modes_covered", row.get("classes_covered", 0)))
        out["total"].append(row.get("modes_total", len(row.get("covered_mask", ()))))
        if "kl_to_data" in row:
            out.setdefault("kl", []).append(row["kl_to_data"])
        else:
            out.setdefault("high_quality", []).append(row["high_quality_fraction"])
            out.setdefault("reverse_kl", []).append(row["reverse_kl"])
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}
