"""Evaluate a trained run: mode coverage for 2D mixtures, the classifier's view for images (what `eval` prints)."""

from __future__ import annotations

from typing import Any

import torch

from gan_core.evaluation.classifier import evaluate_images, get_classifier
from gan_core.evaluation.metrics import mode_stats
from gan_core.train.trainer import Trainer

DEFAULT_N_2D = 2500  # PacGAN's sample count for the ring and grid tables
DEFAULT_N_IMAGES = 1000


def evaluate_run(trainer: Trainer, n: int | None = None, seed: int | None = None) -> dict[str, Any]:
    """The run's quality numbers as plain JSON-able values."""
    data = trainer.data
    result: dict[str, Any] = {"step": trainer.step_count, "dataset": data.name}
    if data.modes is not None:
        samples = trainer.sample(n or DEFAULT_N_2D, seed=seed)
        stats = mode_stats(samples, data.modes.numpy(), data.sigma)
        result.update({k: stats[k] for k in ("modes_covered", "modes_total", "high_quality_fraction", "reverse_kl")})
        return result
    if not data.is_image:
        result["note"] = "user points have no modes to count; only samples are available"
        return result
    samples = torch.from_numpy(trainer.sample(n or DEFAULT_N_IMAGES, seed=seed))
    classifier, info = get_classifier(data)
    stats = evaluate_images(classifier, samples, data)
    result.update({k: stats[k] for k in ("classes_covered", "class_histogram", "kl_to_data", "fcd")})
    result["classifier_accuracy"] = info["accuracy"]
    return result
