"""The VAE: its KL closed form against hand values and torch.distributions, the reparameterisation gradient, training,
reconstruction, sampling, sharpness, and the disk cache."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from gan_core.data import load_digits
from gan_core.lessons import vae

STEPS = 300  # enough to move the loss well below its start; a fraction of a second


@pytest.fixture(scope="module")
def trained(one_thread) -> tuple[vae.VAE, dict[str, np.ndarray]]:
    return vae.train_vae(load_digits(), steps=STEPS, seed=0)


# -- the maths -------------------------------------------------------------------------------------------------------------
def test_kl_is_zero_at_the_prior_and_one_half_per_unit_mean_shift():
    zero = torch.zeros(3, 2)
    assert torch.allclose(vae.kl_divergence(zero, zero), torch.zeros(3))  # μ = 0, σ = 1: q is the prior
    assert torch.allclose(vae.kl_divergence(torch.ones(1, 2), torch.zeros(1, 2)), torch.tensor([1.0]))  # 0.5 per dim
    # σ = e (log σ² = 2), μ = 0, one dim: −½ (1 + 2 − 0 − e²) = (e² − 3) / 2
    assert vae.kl_divergence(torch.zeros(1, 1), torch.full((1, 1), 2.0)).item() == pytest.approx((math.e ** 2 - 3) / 2)


def test_kl_matches_torch_distributions():
    gen = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(16, 5, generator=gen) * 2, torch.randn(16, 5, generator=gen)
    expected = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum(1)
    torch.testing.assert_close(vae.kl_divergence(mu, logvar), expected, rtol=1e-5, atol=1e-5)


def test_reconstruction_bce_is_minus_log_likelihood_summed_over_pixels():
    x = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    p = torch.tensor([[[[0.9, 0.2], [0.5, 0.5]]]])
    expected = -(math.log(0.9) + math.log(0.8) + 2 * math.log(0.5))
    assert vae.reconstruction_bce(torch.logit(p), x).item() == pytest.approx(expected, rel=1e-5)


def test_reparameterisation_passes_gradients_to_mu_and_sigma():
    mu = torch.tensor([0.5, -1.0], requires_grad=True)
    logvar = torch.tensor([0.0, 1.0], requires_grad=True)
    gen = torch.Generator().manual_seed(1)
    z = vae.reparameterize(mu, logvar, gen)
    eps = torch.randn(2, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(z.detach(), mu.detach() + torch.exp(0.5 * logvar.detach()) * eps)
    z.sum().backward()
    torch.testing.assert_close(mu.grad, torch.ones(2))  # ∂z/∂μ = 1
    torch.testing.assert_close(logvar.grad, 0.5 * torch.exp(0.5 * logvar.detach()) * eps)  # ∂z/∂log σ² = ½ σ ε


# -- training and using it -------------------------------------------------------------------------------------------------
def test_training_reduces_the_loss_and_reports_progress(one_thread):
    calls: list[tuple[int, int, float]] = []
    model, history = vae.train_vae(load_digits(), steps=60, seed=3, progress=lambda *a: calls.append(a))
    assert [c[0] for c in calls] == list(range(10, 61, 10)) and calls[-1][1] == 60
    assert list(history["step"]) == [c[0] for c in calls]
    np.testing.assert_allclose(history["loss"], history["reconstruction"] + history["kl"], rtol=1e-6)
    assert history["loss"][-1] < 0.8 * history["loss"][0]


def test_same_seed_same_model(trained):
    model, history = trained
    again, history2 = vae.train_vae(load_digits(), steps=STEPS, seed=0)
    np.testing.assert_array_equal(history["loss"], history2["loss"])
    np.testing.assert_array_equal(vae.sample(model, 4, seed=1), vae.sample(again, 4, seed=1))


def test_reconstructions_are_closer_than_random_digits(trained):
    model, history = trained
    x = load_digits().x[:300]
    rec = vae.reconstruct(model, x)
    assert rec.shape == tuple(x.shape) and rec.min() >= 0 and rec.max() <= 1
    others = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(0))]
    rec_err = float(((rec - x.numpy()) ** 2).mean())
    rand_err = float(((others - x) ** 2).mean())
    assert rec_err < 0.5 * rand_err, (rec_err, rand_err)


def test_encode_decode_and_sample_shapes(trained):
    model, _ = trained
    mu, logvar = vae.encode(model, load_digits().x[:5])
    assert mu.shape == logvar.shape == (5, 2)
    s = vae.sample(model, 7, seed=2)
    assert s.shape == (7, 1, 8, 8) and s.dtype == np.float32
    np.testing.assert_array_equal(s, vae.sample(model, 7, seed=2))
    assert not np.array_equal(s, vae.sample(model, 7, seed=3))
    assert vae.decode(model, np.zeros((1, 2), np.float32)).shape == (1, 1, 8, 8)


# -- sharpness ---------------------------------------------------------------------------------------------------------------
def test_sharpness_is_one_for_black_and_white_and_zero_for_grey():
    assert vae.sharpness(np.array([0.0, 1.0, 1.0])) == 1.0
    assert vae.sharpness(np.full((2, 1, 8, 8), 0.5)) == 0.0
    assert vae.sharpness(np.array([0.25, 1.0])) == pytest.approx((0.5 + 1.0) / 2)
    with pytest.raises(ValueError):
        vae.sharpness(np.zeros(0))


def test_blurring_lowers_sharpness():
    x = load_digits().x[:100].numpy()
    blurred = x.copy()
    blurred[..., 1:-1, 1:-1] = (x[..., :-2, 1:-1] + x[..., 2:, 1:-1] + x[..., 1:-1, :-2] + x[..., 1:-1, 2:]
                                + x[..., 1:-1, 1:-1]) / 5
    assert vae.sharpness(blurred) < vae.sharpness(x)


def test_vae_samples_are_blurrier_than_the_data(trained):
    model, _ = trained
    assert vae.sharpness(vae.sample(model, 500, seed=0)) < vae.sharpness(load_digits().x.numpy()) - 0.05


# -- the cache ---------------------------------------------------------------------------------------------------------------
def test_cache_round_trips_and_keys_by_settings(tmp_path: Path, one_thread):
    source = load_digits()
    vae.clear_memo()
    assert vae.cached_vae(source, steps=20, cache_dir=tmp_path) is None
    model, info = vae.get_vae(source, steps=20, seed=1, cache_dir=tmp_path)
    assert info["source"] == "trained" and Path(info["path"]).is_file() and info["steps"] == 20
    assert vae.get_vae(source, steps=20, seed=1, cache_dir=tmp_path)[1]["source"] == "memory"

    vae.clear_memo()  # a new server process: read from disk, the same model and history
    again, info2 = vae.cached_vae(source, steps=20, seed=1, cache_dir=tmp_path)
    assert info2["source"] == "disk"
    np.testing.assert_array_equal(vae.sample(model, 3, seed=0), vae.sample(again, 3, seed=0))
    np.testing.assert_array_equal(info["history"]["loss"], info2["history"]["loss"])
    assert vae.cached_vae(source, steps=20, seed=2, cache_dir=tmp_path) is None  # another seed: another file

    vae.clear_memo()
    Path(info["path"]).write_bytes(b"not a checkpoint")
    assert vae.cached_vae(source, steps=20, seed=1, cache_dir=tmp_path) is None
    _, info3 = vae.get_vae(source, steps=20, seed=1, cache_dir=tmp_path)
    assert info3["source"] == "trained" and "replaced unusable cache file" in info3["note"]
    vae.clear_memo()


def test_steps_default_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GAN_VAE_STEPS", "7")
    assert vae.default_steps() == 7
    monkeypatch.delenv("GAN_VAE_STEPS")
    assert vae.default_steps() == vae.DEFAULT_STEPS
