"""The cached per-dataset classifier: accuracy, the disk cache, and what it says about real and noise images."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from gan_core.config import Dataset
from gan_core.data import DataSource, load_digits, load_torchvision
from gan_core.evaluation.classifier import (
    Classifier,
    cache_path,
    clear_memo,
    evaluate_images,
    features,
    get_classifier,
    predict_proba,
)


@pytest.fixture(scope="module")
def digits() -> DataSource:
    return load_digits()


@pytest.fixture(scope="module")
def digits_cache(digits: DataSource, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache dir holding a trained digits classifier (trained once for the module)."""
    cache = tmp_path_factory.mktemp("clf_cache")
    _, info = get_classifier(digits, cache)
    assert info["source"] == "trained"
    return cache


def test_digits_classifier_is_accurate_on_held_out_images(digits: DataSource, digits_cache: Path) -> None:
    clf, info = get_classifier(digits, digits_cache)
    assert info["accuracy"] >= 0.9
    assert info["dataset"] == "digits" and info["n_examples"] == 1797
    probs = predict_proba(clf, digits.x[:50])
    assert probs.shape == (50, 10)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    assert features(clf, digits.x[:50]).shape == (50, clf.n_features)


def test_cache_round_trip_loads_the_same_classifier_from_disk(digits: DataSource, digits_cache: Path) -> None:
    clf, _ = get_classifier(digits, digits_cache)
    expected = predict_proba(clf, digits.x[:100])
    clear_memo()
    loaded, info = get_classifier(digits, digits_cache)
    assert info["source"] == "disk" and info["note"] == ""
    assert loaded is not clf
    np.testing.assert_array_equal(predict_proba(loaded, digits.x[:100]), expected)
    again, info = get_classifier(digits, digits_cache)
    assert again is loaded and info["source"] == "memory"


def test_corrupt_cache_file_is_retrained_and_replaced(digits: DataSource, tmp_path: Path) -> None:
    path = cache_path(digits, tmp_path)
    path.write_bytes(b"not a checkpoint")
    clf, info = get_classifier(digits, tmp_path)
    assert info["source"] == "trained" and "replaced" in info["note"]
    assert info["accuracy"] >= 0.9
    clear_memo()
    _, info = get_classifier(digits, tmp_path)
    assert info["source"] == "disk"
    assert not list(tmp_path.glob("*.tmp"))  # the atomic write left no temp file behind


def test_cache_of_other_data_is_not_used(digits: DataSource, digits_cache: Path, tmp_path: Path) -> None:
    # same name, fewer examples: a different cache key; a file planted under that key is rejected, not trusted
    subset = dataclasses.replace(digits, x=digits.x[:1000], y=digits.y[:1000], size=1000)
    assert cache_path(subset, tmp_path).name != cache_path(digits, tmp_path).name
    shutil.copy(cache_path(digits, digits_cache), cache_path(subset, tmp_path))
    _, info = get_classifier(subset, tmp_path)
    assert info["source"] == "trained" and "n_examples" in info["note"]


def test_real_digits_cover_all_classes_and_noise_is_far(digits: DataSource, digits_cache: Path) -> None:
    clf, _ = get_classifier(digits, digits_cache)
    real = digits.x[torch.randperm(len(digits.x), generator=torch.Generator().manual_seed(1))[:500]]
    stats = evaluate_images(clf, real, digits)
    assert stats["classes_covered"] == 10
    assert stats["kl_to_data"] < 0.05
    noise = torch.rand(500, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    noise_stats = evaluate_images(clf, noise, digits)
    assert noise_stats["fcd"] > 10 * stats["fcd"]


def test_prediction_restores_training_mode(digits: DataSource) -> None:
    clf = Classifier((1, 8, 8)).train()
    predict_proba(clf, digits.x[:4])
    assert clf.training


@pytest.mark.mnist
def test_mnist_classifier_trains_accurately(mnist_dir: Path, tmp_path: Path) -> None:
    mnist = load_torchvision(Dataset.MNIST, mnist_dir, download=False)
    clf, info = get_classifier(mnist, tmp_path)
    assert info["source"] == "trained"
    assert info["accuracy"] >= 0.95, info
    assert f"n{len(mnist.x)}" in Path(info["path"]).name  # test-split and full-train classifiers never share a file
