"""Metrics against values worked by hand."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from gan_core.data import GRID_SIGMA, RING_SIGMA, grid_modes, ring_modes
from gan_core.evaluation.metrics import KL_EPS, class_stats, frechet_distance, mode_stats

RING = ring_modes().numpy()


def test_samples_on_every_ring_mode_cover_all_eight_evenly() -> None:
    samples = np.repeat(RING, 5, axis=0)  # 5 samples exactly on each mode
    stats = mode_stats(samples, RING, RING_SIGMA)
    assert stats["modes_covered"] == 8 and stats["modes_total"] == 8
    assert stats["high_quality_fraction"] == 1.0
    assert stats["reverse_kl"] == pytest.approx(0.0, abs=1e-12)
    assert stats["mode_counts"] == [5] * 8
    assert stats["covered_mask"] == [True] * 8


def test_samples_on_one_mode_give_log_k() -> None:
    samples = np.tile(RING[3], (40, 1)) + 0.5 * RING_SIGMA  # all within 3σ of mode 3
    stats = mode_stats(samples, RING, RING_SIGMA)
    assert stats["modes_covered"] == 1
    assert stats["high_quality_fraction"] == 1.0
    assert stats["reverse_kl"] == pytest.approx(math.log(8))
    assert stats["covered_mask"] == [k == 3 for k in range(8)]


def test_far_samples_are_low_quality_and_cover_nothing() -> None:
    samples = np.full((100, 2), 5.0)
    stats = mode_stats(samples, RING, RING_SIGMA)
    assert stats["high_quality_fraction"] == 0.0
    assert stats["modes_covered"] == 0
    assert stats["reverse_kl"] == pytest.approx(math.log(8))  # the documented convention: the worst value


def test_high_quality_boundary_is_three_sigma_and_reverse_kl_by_hand() -> None:
    # 3 samples on mode 0, 1 sample on mode 1, one just inside and one just outside 3σ of mode 2
    inside = RING[2] + np.array([2.9 * RING_SIGMA, 0.0])
    outside = RING[2] + np.array([3.1 * RING_SIGMA, 0.0])
    samples = np.stack([RING[0], RING[0], RING[0], RING[1], inside, outside])
    stats = mode_stats(samples, RING, RING_SIGMA)
    assert stats["high_quality_fraction"] == pytest.approx(5 / 6)
    assert stats["mode_counts"][:3] == [3, 1, 1]
    p = np.array([3, 1, 1]) / 5
    assert stats["reverse_kl"] == pytest.approx(float(np.sum(p * np.log(8 * p))))


def test_grid_of_2500_samples_is_instant() -> None:
    modes = grid_modes().numpy()
    rng = np.random.default_rng(0)
    samples = modes[rng.integers(0, 25, 2500)] + GRID_SIGMA * rng.standard_normal((2500, 2))
    start = time.perf_counter()
    stats = mode_stats(samples, modes, GRID_SIGMA)
    assert time.perf_counter() - start < 0.1
    assert stats["modes_covered"] == 25
    assert stats["high_quality_fraction"] > 0.95  # 3σ in 2D holds ≈ 98.9 % of the mass
    assert stats["reverse_kl"] < 0.02


def _onehot_probs(classes: list[int], p: float = 0.95) -> np.ndarray:
    probs = np.full((len(classes), 10), (1 - p) / 9)
    probs[np.arange(len(classes)), classes] = p
    return probs


def test_class_stats_on_uniform_confident_predictions() -> None:
    probs = _onehot_probs(list(range(10)) * 10)
    stats = class_stats(probs, np.full(10, 0.1))
    assert stats["class_histogram"] == [10] * 10
    assert stats["classes_covered"] == 10
    assert stats["kl_to_data"] == pytest.approx(0.0, abs=1e-12)
    assert stats["mean_confidence"] == pytest.approx(0.95)


def test_class_stats_collapse_and_unconfident_classes() -> None:
    # 90 confident 7s, 10 unconfident 1s (max prob 0.5 < 0.9): only 7 is covered, but 1 still shows in the histogram
    probs = np.concatenate([_onehot_probs([7] * 90), _onehot_probs([1] * 10, p=0.5)])
    stats = class_stats(probs, np.full(10, 0.1))
    assert stats["class_histogram"][7] == 90 and stats["class_histogram"][1] == 10
    assert stats["classes_covered"] == 1
    assert stats["covered_mask"] == [c == 7 for c in range(10)]
    q = np.array([0.9, 0.1])
    assert stats["kl_to_data"] == pytest.approx(float(np.sum(q * np.log(q / 0.1))))
    assert stats["mean_confidence"] == pytest.approx(0.9 * 0.95 + 0.1 * 0.5)


def test_class_stats_min_fraction_and_zero_data_class() -> None:
    probs = _onehot_probs([0] * 199 + [5])  # one sample of 5 is 0.5 % < 1 %: not covered
    data = np.array([1.0] + [0.0] * 9)  # class 5 never occurs in the data: the epsilon keeps the KL finite
    stats = class_stats(probs, data)
    assert stats["classes_covered"] == 1
    q0, q5 = 199 / 200, 1 / 200
    assert stats["kl_to_data"] == pytest.approx(q0 * math.log(q0) + q5 * math.log(q5 / KL_EPS))
    assert class_stats(probs, data, min_fraction=0.005)["classes_covered"] == 2


def test_frechet_distance_of_identical_sets_is_zero() -> None:
    feats = np.random.default_rng(0).standard_normal((500, 16))
    assert frechet_distance(feats, feats) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_of_1d_gaussians() -> None:
    rng = np.random.default_rng(1)
    a = 1.0 + 2.0 * rng.standard_normal((20000, 1))
    b = -0.5 + 0.5 * rng.standard_normal((20000, 1))
    # exactly the formula for the fitted (sample) moments, and close to the true ones (1 + 1.5)² + (2 − 0.5)²
    fitted = (a.mean() - b.mean()) ** 2 + (a.std(ddof=1) - b.std(ddof=1)) ** 2
    assert frechet_distance(a, b) == pytest.approx(fitted, rel=1e-9)
    assert frechet_distance(a, b) == pytest.approx(1.5**2 + 1.5**2, rel=0.03)


def test_frechet_distance_with_singular_covariances_is_finite_and_symmetric() -> None:
    rng = np.random.default_rng(2)
    a = rng.standard_normal((50, 8))
    a[:, 4:] = 0.0  # dead features: a rank-deficient covariance
    b = rng.standard_normal((30, 8)) + 1.0
    d_ab, d_ba = frechet_distance(a, b), frechet_distance(b, a)
    assert math.isfinite(d_ab) and d_ab > 0
    assert d_ab == pytest.approx(d_ba, rel=1e-6)
    with pytest.raises(ValueError):
        frechet_distance(a[:1], b)
