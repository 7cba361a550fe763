"""A run's generator loaded from its checkpoint, on a tiny digits run trained here, and the lesson helpers on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gan_core.config import get_preset
from gan_core.lessons import saved_generator as generators
from gan_core.lessons.control import AscentResult
from gan_core.lessons.saved_generator import ZPath, load_generator, suits, summarize
from gan_core.runs.train_run import open_run, train_to
from tests.tiny import tiny

SMALL = dict(steps=200, g_depth=2, d_depth=2, batch_size=32, sample_every=100)


def _train(path: Path, preset: str, **changes: object) -> Path:
    store, trainer = open_run(path, tiny(preset, **{**SMALL, **changes}))
    train_to(store, trainer)
    return path


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory, one_thread: None) -> Path:
    return _train(tmp_path_factory.mktemp("gen") / "digits", "digits")


@pytest.fixture(scope="module")
def cond_run(tmp_path_factory: pytest.TempPathFactory, one_thread: None) -> Path:
    return _train(tmp_path_factory.mktemp("gen") / "cond", "digits-conditional", steps=60)


def test_suits_picks_labelled_images_of_the_right_kind():
    assert suits(get_preset("digits").config, conditional=False)
    assert not suits(get_preset("digits").config, conditional=True)
    assert suits(get_preset("digits-conditional").config, conditional=True)
    assert suits(get_preset("conditional").config, conditional=True)  # MNIST
    assert not suits(get_preset("ring-bce").config, conditional=False)


def test_load_is_memoised_per_checkpoint_and_reloads_a_newer_one(digits_run: Path):
    generators.clear_memo()
    g = load_generator(digits_run)
    assert g.step == 200 and not g.conditional and g.n_classes == 10
    assert load_generator(digits_run) is g
    assert not g.trainer.G.training  # inference: batch norm reads its running statistics
    store, trainer = open_run(digits_run, steps=201)  # a resumed run writes a newer checkpoint
    train_to(store, trainer)
    newer = load_generator(digits_run)
    assert newer is not g and newer.step == 201 and newer.key != g.key


def test_images_and_probabilities(digits_run: Path):
    g = load_generator(digits_run)
    z = g.noise(5, seed=3)
    assert torch.equal(z, g.noise(5, seed=3)) and not torch.equal(z, g.noise(5, seed=4))
    images = g.images(z)
    assert images.shape == (5, 1, 8, 8) and images.min() >= 0 and images.max() <= 1
    np.testing.assert_allclose(images, g.trainer.generate(z).numpy(), atol=1e-6)  # the trainer's own sampling
    p = g.probs(images)
    assert p.shape == (5, 10)
    np.testing.assert_allclose(p.sum(1), 1, atol=1e-5)


def test_ascent_raises_the_target_for_most_samples_and_leaves_the_models_alone(digits_run: Path):
    """On a 200-step generator, the page's defaults (10 steps, η 0.1, λ 0.1) raise p(target)."""
    g = load_generator(digits_run)
    before = {k: v.clone() for k, v in g.trainer.G.state_dict().items()}
    raised, gains = [], []
    for target in range(10):
        result = g.ascent(target, steps=10, step_size=0.1, penalty=0.1, n=8, seed=0)
        assert isinstance(result, AscentResult) and result.images.shape == (11, 8, 1, 8, 8)
        s = summarize(result)
        np.testing.assert_allclose(s.start, result.probs[0].mean(0))
        gain = result.probs[-1, :, target].mean() - result.probs[0, :, target].mean()
        assert s.change[target] == pytest.approx(gain, abs=1e-6)
        np.testing.assert_allclose(s.change.sum(), 0, atol=1e-5)  # what the target gains, the others lose
        raised.append(s.raised)
        gains.append(s.change[target])
    assert np.mean(raised) >= 0.75 and min(raised) >= 0.5, raised
    assert np.mean(gains) >= 0.1, gains
    assert all(torch.equal(v, g.trainer.G.state_dict()[k]) for k, v in before.items())
    assert not g.trainer.G.training


def test_z_paths_start_and_end_at_the_two_noise_vectors(digits_run: Path):
    g = load_generator(digits_run)
    ts = np.linspace(0, 1, 5)
    z_a, z_b = g.noise(1, 1)[0], g.noise(1, 2)[0]
    for how in ZPath:
        zs, images = g.z_path(1, 2, ts, how)
        assert zs.shape == (5, g.config.z_dim) and images.shape == (5, 1, 8, 8)
        torch.testing.assert_close(zs[0], z_a)
        torch.testing.assert_close(zs[-1], z_b)
        np.testing.assert_allclose(images[0], g.images(z_a[None])[0], atol=1e-5)
    linear, _ = g.z_path(1, 2, ts, ZPath.LINEAR)
    spherical, _ = g.z_path(1, 2, ts, ZPath.SLERP)
    assert linear[2].norm() < spherical[2].norm()  # the straight line's midpoint is shorter
    with pytest.raises(AssertionError, match="conditional"):
        g.label_path(1, 2, ts, seed=0)


def test_conditional_generator_draws_the_asked_class_and_soft_labels(cond_run: Path):
    g = load_generator(cond_run)
    assert g.conditional
    z = g.noise(4, 0)
    hard = g.images(z, torch.full((4,), 7))
    onehot = torch.nn.functional.one_hot(torch.full((4,), 7), 10).float()
    np.testing.assert_allclose(hard, g.images(z, onehot), atol=1e-6)
    labels, images = g.label_path(2, 7, np.array([0.0, 0.5, 1.0]), seed=0)
    np.testing.assert_allclose(labels.sum(1).numpy(), 1, atol=1e-6)
    assert labels[1, 2] == pytest.approx(0.5) and labels[1, 7] == pytest.approx(0.5)
    np.testing.assert_allclose(images[2], g.images(g.noise(1, 0), torch.tensor([7]))[0], atol=1e-5)
