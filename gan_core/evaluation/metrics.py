"""Quality numbers for generated samples: mode coverage on 2D mixtures, the classifier's view of generated images, and
the Fréchet distance between two feature sets.

All functions take and return plain numpy / Python values so the CLI can print them as JSON and the pages can plot them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

HIGH_QUALITY_SIGMAS = 3.0  # PacGAN / VEEGAN: a sample is high quality within 3σ of its nearest mode
KL_EPS = 1e-10  # stands in for a zero data-class probability where a sample class needs it (see class_stats)


def nearest_mode(samples: np.ndarray, modes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each 2D sample, the index of its nearest mode and the distance to it."""
    x = np.asarray(samples, dtype=np.float64).reshape(-1, 2)
    m = np.asarray(modes, dtype=np.float64).reshape(-1, 2)
    if not len(x):
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    sq_dist = ((x[:, None, :] - m[None, :, :]) ** 2).sum(-1)  # (N, K); 2,500 × 25 is a few hundred kB
    nearest = sq_dist.argmin(1)
    return nearest, np.sqrt(sq_dist[np.arange(len(x)), nearest])


def mode_stats(samples: np.ndarray, modes: np.ndarray, sigma: float) -> dict[str, Any]:
    """Mode coverage of 2D samples on a Gaussian mixture, as defined by VEEGAN (Srivastava et al. 2017) and PacGAN.

    - A sample is *high quality* when ‖x − m(x)‖ ≤ 3σ, where m(x) is its nearest mode.
    - A mode is *covered* when it is the nearest mode of at least one high-quality sample.
    - reverse_kl = KL(p̂ ‖ u) = Σ_k p̂_k log(K p̂_k), where p̂_k is the fraction of high-quality samples whose nearest
      mode is k and u is uniform over the K modes (0 · log 0 = 0). 0 means the high-quality samples are spread evenly;
      log K means all of them sit on one mode.
      Convention: with no high-quality sample at all, p̂ is undefined and reverse_kl is reported as log K, the worst
      value (as bad as total collapse), so the number stays finite, JSON-able and monotone in "how bad".

    Returns modes_covered, modes_total, high_quality_fraction, reverse_kl, and for the UI mode_counts (high-quality
    samples per mode) and covered_mask.
    """
    k = len(np.asarray(modes).reshape(-1, 2))
    assert k > 0 and sigma > 0, (k, sigma)
    nearest, distance = nearest_mode(samples, modes)
    high_quality = distance <= HIGH_QUALITY_SIGMAS * sigma
    counts = np.bincount(nearest[high_quality], minlength=k)
    n_hq = int(counts.sum())
    if n_hq:
        p = counts[counts > 0] / n_hq
        reverse_kl = float(np.sum(p * np.log(k * p)))
    else:
        reverse_kl = math.log(k)
    return {
        "modes_covered": int((counts > 0).sum()),
        "modes_total": k,
        "high_quality_fraction": float(high_quality.mean()) if len(distance) else 0.0,
        "reverse_kl": max(reverse_kl, 0.0),  # rounding can give −1e-17 for a perfectly uniform histogram
        "mode_counts": [int(c) for c in counts],
        "covered_mask": [bool(c > 0) for c in counts],
    }


def class_stats(probs: np.ndarray, data_dist: np.ndarray, confidence: float = 0.9,
                min_fraction: float = 0.01) -> dict[str, Any]:
    """What a classifier sees in N generated images, given its class probabilities probs (N, C).

    - class_histogram[c] = #{i : argmax_j probs[i, j] = c}, over all samples, confident or not.
    - A class is covered when the samples the classifier assigns to it *confidently* (max probability > confidence)
      number at least min_fraction · N; classes_covered counts them and covered_mask marks them.
    - kl_to_data = KL(q ‖ p) = Σ_c q_c log(q_c / p_c) in nats, with q = class_histogram / N and p = data_dist.
      Classes with q_c = 0 add nothing (0 · log 0 = 0); a p_c of 0 where q_c > 0 would make the KL infinite, so only
      there p_c is replaced by KL_EPS (1e-10), giving a large finite value instead.
    - mean_confidence = mean_i max_j probs[i, j].
    """
    probs = np.asarray(probs, dtype=np.float64)
    assert probs.ndim == 2, probs.shape
    n, n_classes = probs.shape
    p = np.asarray(data_dist, dtype=np.float64).reshape(-1)
    assert len(p) == n_classes, (p.shape, probs.shape)
    if n == 0:
        return {"class_histogram": [0] * n_classes, "classes_covered": 0, "covered_mask": [False] * n_classes,
                "kl_to_data": 0.0, "mean_confidence": 0.0}
    top = probs.argmax(1)
    top_prob = probs.max(1)
    histogram = np.bincount(top, minlength=n_classes)
    confident = np.bincount(top[top_prob > confidence], minlength=n_classes)
    covered = confident >= min_fraction * n
    q = histogram / n
    used = q > 0
    kl = float(np.sum(q[used] * np.log(q[used] / np.maximum(p[used], KL_EPS))))
    return {
        "class_histogram": [int(c) for c in histogram],
        "classes_covered": int(covered.sum()),
        "covered_mask": [bool(c) for c in covered],
        "kl_to_data": max(kl, 0.0),
        "mean_confidence": float(top_prob.mean()),
    }


def _sqrt_psd(a: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix through eigh; tiny negative eigenvalues become 0."""
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N_a, F) and (N_b, F), squared as FID reports it:

        d² = ‖μ_a − μ_b‖² + tr(Σ_a) + tr(Σ_b) − 2 tr( (Σ_a^½ Σ_b Σ_a^½)^½ )

    The last trace equals tr((Σ_a Σ_b)^½); the symmetric form is used because Σ_a^½ Σ_b Σ_a^½ is symmetric PSD, so
    eigh gives real, clippable eigenvalues even when the covariances are singular (dead ReLU features, few samples),
    with no scipy.sqrtm and no complex parts to discard. Covariances use N − 1.

    On our small classifier's penultimate features this is "FCD", the Fréchet Classifier Distance. It is NOT the
    Inception FID: the features, their dimension and scale differ, so its values are not comparable to published FID
    numbers, only to each other (same classifier, same dataset, same sample count; it is biased upwards for small N).
    """
    a = np.asarray(feats_a, dtype=np.float64)
    b = np.asarray(feats_b, dtype=np.float64)
    a = a.reshape(len(a), -1)
    b = b.reshape(len(b), -1)
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"need at least 2 feature vectors per set, got {len(a)} and {len(b)}")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sizes differ: {a.shape[1]} vs {b.shape[1]}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))
    root_a = _sqrt_psd(cov_a)
    middle = root_a @ cov_b @ root_a
    middle = (middle + middle.T) / 2  # symmetric in exact arithmetic; remove rounding asymmetry before eigh
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh(middle), 0.0, None)).sum()
    d2 = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2.0 * tr_covmean)
    return max(d2, 0.0)
