"""The VAE-vs-GAN lesson: its figure helpers, and its page under AppTest (with no runs, training the VAE, beside a GAN)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from gan_core.config import get_preset
from gan_core.data import load_digits
from gan_core.lessons import vae
from gan_core.runs.status import Status
from tests.pages import page_app
from tests.tiny import tiny
from ui import live, style
from ui.figures import vae_vs_gan

PAGE = "app_pages/vae_vs_gan.py"
TINY_VAE_STEPS = 30


# -- the figure helpers ------------------------------------------------------------------------------------------------------
def test_architecture_diagrams_name_each_models_parts():
    for dot, parts in ((vae_vs_gan.vae_dot(), ("encoder", "latent space", "decoder", "reconstruction")),
                       (vae_vs_gan.gan_dot(), ("generator", "discriminator", "real image", "fake image", "gradient"))):
        assert dot.startswith("digraph") and dot.count("{") == dot.count("}")
        assert all(part in dot for part in parts)


def test_loss_figure_draws_the_total_and_its_two_terms():
    history = {"step": np.array([10, 20]), "loss": np.array([30.0, 25.0]), "reconstruction": np.array([28.0, 22.0]),
               "kl": np.array([2.0, 3.0])}
    fig = vae_vs_gan.loss_figure(history)
    assert [t.name for t in fig.data] == [vae_vs_gan.LOSS_NAMES[k] for k in ("loss", "reconstruction", "kl")]
    np.testing.assert_array_equal(fig.data[2].y, [2.0, 3.0])


def test_latent_figure_has_one_trace_per_digit_in_its_colour():
    mu = np.random.default_rng(0).normal(size=(30, 2))
    labels = np.arange(30) % 10
    fig = vae_vs_gan.latent_figure(mu, labels)
    digits = [t for t in fig.data if t.mode == "markers"]
    assert [t.name for t in digits] == [str(k) for k in range(10)]
    assert digits[3].marker.color == style.DIGIT_COLORS[3] and len(digits[3].x) == 3
    np.testing.assert_allclose(digits[0].x, mu[labels == 0, 0].astype(np.float32))
    with pytest.raises(ValueError):
        vae_vs_gan.latent_figure(mu, labels[:5])


def test_latent_grid_reads_like_a_plot():
    z = vae_vs_gan.latent_grid(3, 2.0)
    assert z.shape == (9, 2)
    np.testing.assert_array_equal(z[0], [-2, 2])  # top left: z₁ low, z₂ high
    np.testing.assert_array_equal(z[2], [2, 2])  # top right
    np.testing.assert_array_equal(z[-1], [2, -2])  # bottom right


def test_latent_note_says_which_comparison_is_like_with_like():
    assert "like with like" in vae_vs_gan.latent_note(32, 32).lower() and "32 random numbers" in vae_vs_gan.latent_note(32, 32)
    assert vae_vs_gan.latent_note(2, 32).startswith("A 2-D code can be drawn") and "Pick 32-D" in vae_vs_gan.latent_note(2, 32)


# -- the page ------------------------------------------------------------------------------------------------------------------
@pytest.fixture
def fresh(fresh_manager: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Its own cache folder and a tiny VAE, beside a fresh RunManager."""
    monkeypatch.setenv("GAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("GAN_VAE_STEPS", str(TINY_VAE_STEPS))
    vae.clear_memo()
    yield
    vae.clear_memo()


def _ok(app: AppTest) -> AppTest:
    assert not app.exception, [e.value for e in app.exception]
    return app


def _markdown(app: AppTest) -> str:
    return "\n".join(m.value for m in app.markdown)


def test_page_without_runs_or_vae_offers_to_train_the_vae(fresh):
    app = _ok(page_app(PAGE, 60).run())
    assert app.title[0].value == "VAE vs GAN"
    assert len(app.get("graphviz_chart")) == 2
    assert any("VAE trained yet" in i.value for i in app.info)
    assert app.button(key="vae_train")
    assert not app.get("plotly_chart")


def test_training_the_vae_shows_its_loss_latent_space_and_grids(fresh):
    app = _ok(page_app(PAGE, 60).run())
    _ok(app.button(key="vae_train").click().run())
    assert not any("VAE trained yet" in i.value for i in app.info)
    assert len(app.latex) == 4
    charts = app.get("plotly_chart")
    assert len(charts) == 2  # the loss curve and the latent scatter
    assert len(app.get("image")) >= 5  # VAE samples, the decoded lattice, originals / reconstructions / samples
    assert f"{TINY_VAE_STEPS:,} updates" in _markdown(app)
    assert vae.cached_vae(load_digits()) is not None  # on disk now: a second browser skips the training
    assert any("No finished digits GAN" in i.value for i in app.info)  # nothing to compare with yet
    labels = [m.label for m in app.metric]
    assert labels.count("Sharpness") == 4 and {"BCE (nats)", "KL (nats)"} <= set(labels)


def test_train_the_default_gan_button_starts_a_digits_run(fresh):
    vae.get_vae(load_digits())
    app = _ok(page_app(PAGE, 60).run())
    _ok(app.button(key="vae_gan_train").click().run())
    (snap,) = live.get_manager().snapshots()
    assert snap.config == get_preset("digits").config
    assert f"run `{snap.id}`" in _markdown(app)
    assert not any("No finished digits GAN" in i.value for i in app.info)


def test_a_finished_digits_gan_stands_beside_the_vae(fresh):
    config = tiny("digits", width=8, steps=12, batch_size=16, sample_every=4)
    run_id = live.start(config, "tiny")
    assert live.get_manager().wait(run_id, timeout=60).status is Status.FINISHED
    vae.get_vae(load_digits())
    app = _ok(page_app(PAGE, 60).run())
    assert f"run `{run_id}`" in _markdown(app)
    assert not any("No finished digits GAN" in i.value for i in app.info)
    gan_metric = next(m for m in app.metric if m.label == "Sharpness" and "vs the VAE" in (m.delta or ""))
    samples = live.get_manager().snapshot(run_id).latest_samples
    assert samples.step == 12
    assert gan_metric.value == f"{vae.sharpness(samples.samples):.2f}"
    assert any("step 12" in (c or "") for img in app.get("image") for c in _captions(img))


def _captions(img) -> list[str]:
    return [i.caption for i in img.proto.imgs]


def test_the_like_with_like_vae_has_the_gans_latent_size(fresh):
    gan_z = get_preset("digits").config.z_dim
    app = _ok(page_app(PAGE, 60).run())
    assert "critic" not in _markdown(app) and "any z" not in _markdown(app)
    _ok(app.segmented_control(key="vae_latent_dim").set_value(gan_z).run())
    assert any(f"No {gan_z}-D VAE trained yet" in i.value for i in app.info)
    _ok(app.button(key="vae_train").click().run())
    assert vae.cached_vae(load_digits(), latent_dim=gan_z)[0].latent_dim == gan_z
    assert vae.cached_vae(load_digits(), latent_dim=2) is None  # only the one asked for was trained
    assert f"**VAE** · {gan_z}-D latent space" in _markdown(app)
    assert any(rf"\sum_{{j=1}}^{{{gan_z}}}" in el.value for el in app.latex)  # the KL sums over its 32 dimensions
    assert any("Only a 2-D latent space can be drawn" in i.value for i in app.info)
    assert len(app.get("plotly_chart")) == 1  # the loss curve, no latent scatter

    vae.get_vae(load_digits(), latent_dim=2)  # with the 2-D one trained too, its latent space stands in
    _ok(app.run())
    assert not any("Only a 2-D latent space" in i.value for i in app.info)
    assert len(app.get("plotly_chart")) == 2  # the 32-D VAE's loss curve and the 2-D one's latent scatter

