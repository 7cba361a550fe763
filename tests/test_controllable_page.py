"""The controllable-generation lesson: its figures on a real ascent, and its page under AppTest with tiny runs."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest

from gan_core.config import get_preset
from gan_core.lessons.control import AscentResult
from gan_core.runs.status import Status
from tests.pages import page_app
from ui import live, style
from ui.figures import controllable

PAGE = "app_pages/controllable.py"
TINY = dict(steps=150, g_width=16, d_width=16, g_depth=2, d_depth=2, batch_size=32, sample_every=100)


def _result(steps: int = 4, n: int = 3, target: int = 2) -> AscentResult:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(steps + 1, n, 10)).astype(np.float32)
    probs = np.exp(logits) / np.exp(logits).sum(2, keepdims=True)
    images = rng.uniform(size=(steps + 1, n, 1, 8, 8)).astype(np.float32)
    return AscentResult(target, 0.1, 0.1, np.zeros((steps + 1, n, 4)), images, logits, probs, np.zeros(steps + 1))


def _png_size(png: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(png)).size


# -- figures -------------------------------------------------------------------------------------------------------------
def test_ascent_grid_has_a_column_per_sample_and_a_row_per_step():
    w, h = _png_size(controllable.ascent_grid(_result(steps=4, n=3), min_size=0))
    assert (w, h) == (3 * 9 + 1, 5 * 9 + 1)  # 8×8 images with 1-pixel padding


def test_probability_figures_show_the_target_and_every_other_class():
    result = _result()
    fig = controllable.class_prob_figure(result)
    assert len(fig.data) == 10
    target = fig.data[2]
    assert target.name == "2 (target)" and target.line.width > fig.data[0].line.width
    np.testing.assert_allclose(target.y, result.probs[:, :, 2].mean(1))
    # one digit palette: each digit in the colour the VAE page's latent space gives it
    assert [t.line.color for t in fig.data] == list(style.DIGIT_COLORS)
    heat = controllable.target_heatmap(result)
    np.testing.assert_allclose(heat.data[0].z, result.probs[:, :, 2])
    labels = controllable.label_prob_figure(np.linspace(0, 1, 5), np.full((5, 10), 0.1), 1, 7, 0.5)
    assert [t.name for t in labels.data] == ["p(digit 1)", "p(digit 7)"]
    assert [t.line.color for t in labels.data] == [style.DIGIT_COLORS[1], style.DIGIT_COLORS[7]]


def test_sentences_keep_entanglement_and_the_step_size_straight():
    change = np.array([0.0, 0.02, 0.5, -0.3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    line = controllable.others_sentence(change, target=2)
    assert line.startswith("Other digits: 3 fell the most (-0.30); 1 (+0.02) rose on the way to 2")
    assert "not by itself entanglement" in line  # entanglement: one z direction changing several features
    quiet = controllable.others_sentence(np.array([0.0, -0.1, 0.1]), target=2)
    assert "none rose" in quiet and "entanglement" not in quiet
    # η = 0.1 on each of 8 samples' own scores moves z as the lab's weight 0.8 on their mean; the lab's 0.1 is η 0.0125
    assert controllable.step_sentence(0.1, 8) == (
        "Step size: η = 0.1 on each sample's own score is the lab's weight 0.8 on the mean over these 8 samples; the "
        "lab's own step (0.1 on the mean over 8 images) is η = 0.0125.")


# -- the page ------------------------------------------------------------------------------------------------------------


def _run(app: AppTest) -> AppTest:
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def _train(preset: str, name: str) -> str:
    run_id = live.start(get_preset(preset).config.replace(**TINY), name)
    assert live.get_manager().wait(run_id, timeout=60).status is Status.FINISHED
    return run_id


def test_without_runs_the_page_offers_to_train_both_generators(fresh_manager):
    app = _run(page_app(PAGE, 30))
    assert app.title[0].value == "Controllable generation"
    assert {b.key for b in app.button} == {"ctl_run_train", "ctl_cond_run_train"}
    assert sum("No trained" in i.value for i in app.info) == 2
    assert not app.get("image")

    app.button(key="ctl_run_train").click()
    _run(app)
    (run_id,) = live.get_manager().ids()
    assert live.get_manager().snapshot(run_id).config.steps == get_preset("digits").config.steps
    assert any("is training" in i.value for i in app.info)  # the progress bar follows it
    live.get_manager().stop(run_id)


def _metric(app: AppTest, label: str) -> str:
    return next(m.value for m in app.metric if m.label.startswith(label))


def test_ascent_grid_appears_and_the_target_slider_changes_it(fresh_manager):
    run_id = _train("digits", "tiny")
    app = page_app(PAGE, 30)
    _run(app)
    assert app.selectbox(key="ctl_run").value == run_id
    images = app.get("image")
    assert len(images) == 3  # the ascent grid, the interpolation strip, the two images at t
    assert app.metric[0].label == "Mean p(digit 3)"
    assert any("same classifier steers z and scores" in w.value for w in app.warning)
    assert any("the lab's weight 0.8 on the mean over these 8 samples" in c.value for c in app.caption)
    grid = images[0].value[0]
    probs = app.get("plotly_chart")[0].proto.spec

    app.slider(key="ctl_target").set_value(7)
    _run(app)
    assert app.metric[0].label == "Mean p(digit 7)"
    assert app.get("image")[0].value[0] != grid
    assert app.get("plotly_chart")[0].proto.spec != probs

    strip = app.get("image")[1].value[0]
    app.button(key="ctl_resample_ab").click()
    _run(app)
    assert (app.number_input(key="ctl_seed_a").value, app.number_input(key="ctl_seed_b").value) == (3, 4)
    assert app.get("image")[1].value[0] != strip
    assert any("No trained conditional" in i.value for i in app.info)


def test_a_conditional_run_draws_the_picked_class(fresh_manager):
    _train("digits-conditional", "tiny-cond")
    app = _run(page_app(PAGE, 30))
    assert any("No trained digits" in i.value for i in app.info)  # the unconditional part still offers training
    assert any("16 noise vectors, each with the label 3" in c.captions[0] for c in app.get("image"))
    app.segmented_control(key="ctl_digit").set_value(5)
    _run(app)
    assert any("each with the label 5" in c.captions[0] for c in app.get("image"))
    app.slider(key="ctl_t_label").set_value(1.0)
    _run(app)
    assert any(c.captions[0].endswith("y = 1.00·e7") for c in app.get("image"))
