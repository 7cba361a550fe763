"""Evaluate a trained run: mode coverage for 2D mixtures, the classifier's view for images (what `eval` prints).

With `rejection=True` the same figures are computed a second time on samples kept by D's rejection sampling
(gan_core.evaluation.rejection) and reported beside the raw ones under "rejection", never mixed into them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from gan_core.evaluation.classifier import evaluate_images, get_classifier
from gan_core.evaluation.metrics import mode_stats
from gan_core.evaluation.rejection import check_loss, rejection_sample
from gan_core.train.trainer import Trainer

DEFAULT_N_2D = 2500  # PacGAN's sample count for the ring and grid tables
DEFAULT_N_IMAGES = 1000
POINT_KEYS = ("modes_covered", "modes_total", "high_quality_fraction", "reverse_kl")
IMAGE_KEYS = ("classes_covered", "class_histogram", "kl_to_data", "fcd")


def evaluate_run(trainer: Trainer, n: int | None = None, seed: int | None = None,
                 rejection: bool = False) -> dict[str, Any]:
    """The run's quality numbers as plain JSON-able values; with `rejection`, the filtered ones under "rejection"
    (the same keys, plus acceptance_rate and drawn)."""
    data = trainer.data
    result: dict[str, Any] = {"step": trainer.step_count, "dataset": data.name}
    if data.modes is None and not data.is_image:
        result["note"] = "user points have no modes to count; only samples are available"
        return result
    if rejection:
        check_loss(trainer.config)  # before the raw figures are spent on a run that cannot be filtered
    n = n or (DEFAULT_N_2D if data.modes is not None else DEFAULT_N_IMAGES)
    result.update(_figures(trainer, trainer.sample(n, seed=seed)))
    if data.is_image:
        result["classifier_accuracy"] = get_classifier(data)[1]["accuracy"]
    if rejection:
        kept = rejection_sample(trainer, n, seed=seed)
        result["rejection"] = {**_figures(trainer, kept.samples), "acceptance_rate": kept.acceptance_rate,
                               "drawn": kept.drawn}
    return result


def _figures(trainer: Trainer, samples: np.ndarray) -> dict[str, Any]:
    data = trainer.data
    if data.modes is not None:
        stats = mode_stats(samples, data.modes.numpy(), data.sigma)
        return {k: stats[k] for k in POINT_KEYS}
    classifier, _ = get_classifier(data)
    stats = evaluate_images(classifier, torch.from_numpy(samples), data)
    return {k: stats[k] for k in IMAGE_KEYS}
