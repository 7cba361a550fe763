"""Discriminator rejection sampling (gan_core.evaluation.rejection): the paper's formula against values worked by hand,
its guards, and a measurable improvement on a trained ring run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from benchmarks import rejection as bench
from gan_core.config import ConfigError, get_preset
from gan_core.evaluation import rejection
from gan_core.evaluation.evaluate import POINT_KEYS, evaluate_run
from gan_core.evaluation.metrics import mode_stats
from gan_core.evaluation.rejection import acceptance, f_score, rejection_sample
from gan_core.train.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")
RING_STEPS = 600
TINY = dict(g_width=8, d_width=8, n_samples=16, sample_every=1000, probe_every=1000)


@pytest.fixture(scope="module")
def ring() -> Trainer:
    """ring-bce trained briefly: G covers the ring with bridges between modes, and D already rates them lower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    trainer = Trainer(get_preset("ring-bce").config.replace(steps=RING_STEPS, seed=0))
    while not trainer.finished:
        trainer.step()
    torch.set_num_threads(before)
    return trainer


# -- the formula, worked by hand ---------------------------------------------------------------------------------------
def test_f_and_p_at_gamma_and_epsilon_zero_are_the_density_ratio():
    # D̃ = 1, D̃_M = 2: δ = −1; F = −1 − log(1 − e⁻¹) = −1 − log(0.6321206) = −1 + 0.4586751 = −0.5413249,
    # and σ(F) = 1 / (1 + e^{−δ}(1 − e^{δ})) = 1 / (1 + (e − 1)) = e⁻¹ = 0.3678794
    assert f_score(np.array([1.0]), 2.0, gamma=0.0, eps=0.0)[0] == pytest.approx(-0.5413249, abs=1e-6)
    assert acceptance(np.array([1.0]), 2.0, gamma=0.0, eps=0.0)[0] == pytest.approx(0.3678794, abs=1e-6)
    # δ = log 0.25: p = 0.25 exactly (rejection sampling's p_data / (M p_g) with D̃ = log p_data/p_g)
    assert acceptance(np.array([3.0 + math.log(0.25)]), 3.0, eps=0.0)[0] == pytest.approx(0.25, abs=1e-12)


def test_gamma_shifts_f_down_and_lowers_p():
    # γ = 0.5 at δ = −1: F = −0.5413249 − 0.5 = −1.0413249; p = 1 / (1 + e^{0.5}(e − 1)) = 1 / (1 + 1.6487213 · 1.7182818)
    # = 1 / 3.8329676 = 0.2608944
    assert f_score(np.array([1.0]), 2.0, gamma=0.5, eps=0.0)[0] == pytest.approx(-1.0413249, abs=1e-6)
    assert acceptance(np.array([1.0]), 2.0, gamma=0.5, eps=0.0)[0] == pytest.approx(0.2608944, abs=1e-6)


def test_epsilon_keeps_the_maximum_finite():
    # δ = 0, ε = 1e-6: F = −log(1 − e^{−1e-6}) = −log(9.999995e-7) = 13.815511; p = 1 − 1e-6 to 6 digits
    f = f_score(np.array([4.0]), 4.0, eps=1e-6)[0]
    assert f == pytest.approx(13.815511, abs=1e-5)
    assert acceptance(np.array([4.0]), 4.0, eps=1e-6)[0] == pytest.approx(1 - 1e-6, abs=1e-9)


def test_acceptance_is_a_probability_and_rises_with_the_logit():
    logits = np.concatenate([np.linspace(-800.0, 0.0, 2001), [0.0]])
    for gamma in (-50.0, 0.0, 3.0, 50.0):
        p = acceptance(logits, 0.0, gamma=gamma)
        assert np.all(np.isfinite(p)) and np.all((p >= 0) & (p <= 1)), gamma
        assert np.all(np.diff(p) >= 0), gamma


def test_a_logit_above_the_maximum_is_a_bug_not_a_probability():
    with pytest.raises(AssertionError):
        f_score(np.array([2.5]), 2.0)


# -- the sampler ---------------------------------------------------------------------------------------------------
def test_filtered_ring_samples_are_better_than_raw_and_keep_every_mode(ring):
    modes, sigma = ring.data.modes.numpy(), ring.data.sigma
    raw = mode_stats(ring.sample(2500, seed=3), modes, sigma)
    kept = rejection_sample(ring, 2500, seed=3)
    filtered = mode_stats(kept.samples, modes, sigma)
    assert kept.samples.shape == (2500, 2) and kept.labels is None
    assert 0.0 < kept.acceptance_rate < 1.0 and kept.accepted >= 2500 and kept.drawn >= rejection.BURN_IN
    # a measured improvement, not a tie: at least 5 points more of the samples within 3σ of a mode
    assert filtered["high_quality_fraction"] >= raw["high_quality_fraction"] + 0.05, (raw, filtered)
    assert filtered["modes_covered"] >= raw["modes_covered"]


def test_the_same_seed_gives_the_same_samples(ring):
    a, b = rejection_sample(ring, 300, seed=11), rejection_sample(ring, 300, seed=11)
    np.testing.assert_array_equal(a.samples, b.samples)
    assert (a.drawn, a.accepted, a.gamma) == (b.drawn, b.accepted, b.gamma)
    assert not np.array_equal(a.samples, rejection_sample(ring, 300, seed=12).samples)


def test_a_verdict_too_strict_to_meet_n_is_one_clear_error(ring):
    with pytest.raises(ConfigError, match=r"^rejection: D kept \d+ of [\d,]+ samples .* floor"):
        rejection_sample(ring, 2000, seed=0, percentile=99.99, burn_in=1000)


@pytest.mark.parametrize("loss", ["wgan_gp", "least_squares"])
def test_a_critic_or_least_squares_d_is_refused(loss):
    trainer = Trainer(get_preset("ring-bce").config.replace(loss=loss, **TINY))
    with pytest.raises(ConfigError, match=r"^rejection: needs a BCE discriminator .* " + loss):
        rejection_sample(trainer, 10)


@pytest.mark.parametrize("n", [0, -3, 2.5, True, "10"])
def test_bad_n(n):
    trainer = Trainer(get_preset("ring-bce").config.replace(**TINY))
    with pytest.raises(ConfigError, match=r"^n: .* at least 1"):
        rejection_sample(trainer, n)


def test_bad_percentile_and_label():
    trainer = Trainer(get_preset("ring-bce").config.replace(**TINY))
    with pytest.raises(ConfigError, match=r"^percentile: "):
        rejection_sample(trainer, 10, percentile=100.0)
    with pytest.raises(ConfigError, match=r"^label: this run is not conditional"):
        rejection_sample(trainer, 10, label=1)


def test_a_conditional_run_keeps_the_class_asked_for():
    trainer = Trainer(get_preset("digits-conditional").config.replace(**TINY))
    kept = rejection_sample(trainer, 50, seed=1, label=7, burn_in=200)
    assert kept.samples.shape == (50, *trainer.data.shape) and np.all(kept.labels == 7)
    assert kept.samples.min() >= 0.0 and kept.samples.max() <= 1.0  # data space: images in [0, 1]
    mixed = rejection_sample(trainer, 200, seed=1, burn_in=200)
    assert len(set(mixed.labels.tolist())) > 1


def test_evaluate_reports_raw_and_filtered_side_by_side(ring):
    plain = evaluate_run(ring, n=1000, seed=4)
    both = evaluate_run(ring, n=1000, seed=4, rejection=True)
    assert {k: both[k] for k in plain} == plain  # the raw keys stay where they were, unchanged
    assert set(both["rejection"]) == {*POINT_KEYS, "acceptance_rate", "drawn"}
    assert 0.0 < both["rejection"]["acceptance_rate"] < 1.0
    assert both["rejection"]["high_quality_fraction"] > both["high_quality_fraction"]


def test_the_bench_reports_raw_and_each_percentile_on_separate_rows():
    rows = bench.rejection(presets=("ring-bce",), seeds=(0,), n=200, parallel=1,
                           overrides=dict(steps=30, g_width=8, d_width=8, n_samples=16, sample_every=30))
    assert [r.metric for r in rows] == ["ring-bce raw", *(
        f"ring-bce D-filtered, γ at the {p:.0f}th percentile" + (" (default)" if p == rejection.GAMMA_PERCENTILE else "")
        for p in bench.PERCENTILES)]
    assert "accepted" not in rows[0].value and all("accepted" in r.value for r in rows[1:])
    assert rows[0].note.startswith("30 steps") and [bool(r.target) for r in rows] == [False, False, True, False]
