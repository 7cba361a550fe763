"""The mode-collapse lesson: its figures on synthetic stats, and its page under AppTest."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from gan_core.config import Loss, get_preset
from gan_core.data import load_digits, mixture
from gan_core.evaluation import coverage, rejection
from gan_core.evaluation.evaluate import evaluate_run
from gan_core.lessons import comparisons as lesson_comparisons
from gan_core.lessons import explain
from gan_core.lessons.comparisons import get_comparison
from gan_core.runs.status import Status
from gan_core.runs.uploads import save_points_upload
from gan_core.train.records import SampleRecord
from ui import comparisons, live, style
from ui.figures import mode_collapse

# Through the app's entry: the page links to the Batch norm page, and st.page_link only finds pages that st.navigation
# registered (a page run on its own has no other page to link to)
APP = str(Path(__file__).resolve().parents[1] / "dashboard.py")
PAGE = "app_pages/mode_collapse.py"
START = "mc_cmp_digits_start"
pytestmark = pytest.mark.usefixtures("one_thread")  # the classifier trains once per session: 0.7 s on one thread, 9 s on two


def _image_stats(counts: list[int], covered: list[bool]) -> dict:
    return {"step": 100, "class_histogram": counts, "covered_mask": covered, "data_distribution": [0.1] * 10,
            "classes_covered": sum(covered), "kl_to_data": 1.0, "n": sum(counts)}


# -- figures -------------------------------------------------------------------------------------------------------------
def test_class_histogram_chart_shows_shares_data_and_covered_classes():
    stats = _image_stats([0, 0, 0, 750, 0, 0, 0, 250, 0, 0], [False] * 3 + [True] + [False] * 3 + [True, False, False])
    spec, data = mode_collapse.class_histogram_chart(stats)
    assert list(data["class"]) == [str(c) for c in range(10)]
    np.testing.assert_allclose(data["generated"], [0, 0, 0, 0.75, 0, 0, 0, 0.25, 0, 0], atol=1e-6)
    np.testing.assert_allclose(data["data"], 0.1, atol=1e-6)
    covered, missed = mode_collapse.COVERED, mode_collapse.MISSED
    assert list(data["status"]) == [missed] * 3 + [covered] + [missed] * 3 + [covered, missed, missed]
    json.dumps(spec)
    other = _image_stats([100] * 10, [True] * 10)
    assert mode_collapse.class_histogram_chart(other)[0] == spec  # live chart: the spec does not depend on the values


def test_class_heatmap_has_one_cell_per_step_and_class_summing_to_one_per_step():
    rows = [_image_stats([100] * 10, [True] * 10) | {"step": 0},
            _image_stats([0] * 9 + [1000], [False] * 9 + [True]) | {"step": 50}]
    spec, data = mode_collapse.class_heatmap_chart(rows)
    assert len(data) == 20
    assert data.groupby("step")["share"].sum().tolist() == pytest.approx([1.0, 1.0])
    assert float(data[(data["step"] == 50) & (data["class"] == "9")]["share"].iloc[0]) == pytest.approx(1.0)
    assert spec == mode_collapse.class_heatmap_chart(rows[:1])[0]


def test_series_chart_one_line_per_run_and_a_rule_at_the_total():
    tables = {"BCE": {"step": np.array([0, 50, 100.0]), "covered": np.array([3, 2, 1.0])},
              "WGAN-GP": {"step": np.array([0, 50.0]), "covered": np.array([4, 10.0])}}
    spec, data = mode_collapse.series_chart(tables, "covered", title="covered", domain=(0, 10), total=10)
    assert list(data["run"].cat.categories) == ["BCE", "WGAN-GP"] and len(data) == 5
    np.testing.assert_allclose(data[data["run"] == "WGAN-GP"]["value"], [4, 10])
    assert spec["layer"][1]["encoding"]["y"]["datum"] == 10.0
    assert spec == mode_collapse.series_chart({k: {**t, "covered": t["covered"] * 0} for k, t in tables.items()}, "covered",
                                   title="covered", domain=(0, 10), total=10)[0]


def test_mode_figure_rings_covered_modes_green_and_missed_red():
    ring = mixture("ring")
    modes = ring.modes.numpy()
    samples = np.repeat(modes[:3], 20, axis=0)  # on three modes exactly
    stats = coverage.point_stats(samples, ring)
    assert stats["modes_covered"] == 3 and stats["high_quality_fraction"] == 1.0
    fig = mode_collapse.mode_figure(samples, None, modes, stats)
    by_name = {t.name: t for t in fig.data}
    assert len(by_name["mode covered"].x) == 3 and len(by_name["mode missed"].x) == 5
    assert by_name["mode missed"].marker.line.color is None or by_name["mode missed"].marker.color == style.MISSED_COLOR
    np.testing.assert_array_equal(by_name["mode covered"].customdata, [20, 20, 20])


def test_logit_gradient_chart_follows_explain():
    step = np.arange(100, dtype=np.float64)
    d_fake = np.full(100, 0.02)  # D rejects the fakes with confidence
    spec, data = mode_collapse.logit_gradient_chart(step, d_fake)
    minimax = data[data["series"] == list(mode_collapse.GRAD_SERIES)[0]]["value"].to_numpy()
    non_sat = data[data["series"] == list(mode_collapse.GRAD_SERIES)[1]]["value"].to_numpy()
    assert len(minimax) == 81  # 20-step means
    np.testing.assert_allclose(minimax, abs(explain.g_grad_logit_minimax(0.02)), atol=1e-6)  # vanished
    np.testing.assert_allclose(non_sat, abs(explain.g_grad_logit_non_saturating(0.02)), atol=1e-6)  # still ~1
    assert mode_collapse.logit_gradient_chart(step[:5], d_fake[:5])[0] == spec


def test_record_stats_counts_one_class_for_one_repeated_digit():
    digits = load_digits()
    sevens = digits.x[digits.y == 7][:50].numpy()
    stats = coverage.record_stats(SampleRecord(40, sevens, None), digits)
    assert stats["step"] == 40 and stats["n"] == 50
    assert stats["classes_covered"] == 1 and stats["class_histogram"][7] >= 45
    assert stats["kl_to_data"] > 2.0  # close to log 10
    mixed = coverage.record_stats(SampleRecord(0, digits.x[:500].numpy(), None), digits)
    assert mixed["classes_covered"] == 10 and mixed["kl_to_data"] < 0.05
    table = coverage.coverage_table([mixed, stats])
    np.testing.assert_array_equal(table["covered"], [10, 1])


def test_collapse_presets_differ_only_in_the_loss_and_its_settings():
    c = get_comparison("collapse-digits")
    configs = c.configs()
    assert configs["BCE"] == get_preset("digits-collapse").config.replace(seed=0)
    assert configs["WGAN-GP"].loss is Loss.WGAN_GP and configs["BCE"].loss is Loss.BCE
    assert c.differing_fields() == {"loss", "d_steps", "beta2"}
    assert all(cfg.n_samples == 1000 for cfg in configs.values())


# -- the page ------------------------------------------------------------------------------------------------------------


def _app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=60).switch_page(PAGE)


def _texts(app: AppTest) -> str:
    parts = [m.value for m in app.markdown] + [c.value for c in app.caption] + [i.value for i in app.info]
    return "\n".join(map(str, parts))


def test_page_without_runs_explains_and_offers_the_comparison(fresh_manager):
    app = _app().run()
    assert not app.exception
    assert "No run yet" in _texts(app)
    assert app.button(key=START).label == "Run the comparison"


def test_comparison_button_starts_both_variants(fresh_manager):
    app = _app().run()
    app.button(key=START).click().run()
    assert not app.exception
    runs = comparisons.store().current("collapse-digits").runs
    assert list(runs) == ["BCE", "WGAN-GP"]
    manager = live.get_manager()
    configs = {label: manager.snapshot(run_id).config for label, run_id in runs.items()}
    assert configs == get_comparison("collapse-digits").configs()
    assert app.session_state[live.SELECTED] == runs["BCE"]
    for run_id in runs.values():
        manager.stop(run_id)


def _finished(config, name: str) -> str:
    manager = live.get_manager()
    run_id = manager.start(config, name)
    assert manager.wait(run_id, timeout=30).status is Status.FINISHED
    return run_id


def test_a_finished_digits_run_shows_its_class_histogram(fresh_manager):
    config = get_preset("digits-collapse").config.replace(steps=30, sample_every=10, n_samples=200, probe_every=5)
    run_id = _finished(config, "tiny-digits")
    app = _app()
    app.session_state[live.SELECTED] = run_id
    app.run()
    assert not app.exception
    labels = [m.label for m in app.metric]
    assert "Classes covered" in labels and "KL to the data" in labels
    samples = next(m for m in app.metric if m.label == "Samples judged")
    assert samples.value == "200"
    text = _texts(app)
    assert "What the classifier sees" in text and "out of 200" in text
    assert len(app.get("vega_lite_chart")) >= 4  # histogram, heatmap, coverage, KL (+ the gradient charts)
    # every chart through ui.cache.vega_chart: data serialised once as Arrow bytes, never a DataFrame per browser
    assert all(c.proto.datasets and not c.proto.data.data for c in app.get("vega_lite_chart"))
    assert app.get("image"), "the sample grid is shown"


def test_a_finished_ring_run_shows_coverage_over_time(fresh_manager):
    config = get_preset("ring-bce").config.replace(steps=20, sample_every=5, n_samples=64, probe_every=5)
    run_id = _finished(config, "tiny-ring")
    app = _app()
    app.session_state[live.SELECTED] = run_id
    app.run()
    assert not app.exception
    labels = [m.label for m in app.metric]
    assert "Modes covered" in labels and "High-quality samples" in labels and "Classes covered" not in labels
    assert "modes ringed green" in _texts(app)
    assert len(app.get("plotly_chart")) >= 1
    assert len(app.get("vega_lite_chart")) >= 2  # modes covered, high-quality share over time


def test_page_teaches_bce_then_w_loss_then_collapse_with_formulas_from_wloss(fresh_manager):
    app = _app().run()
    assert not app.exception
    headers = [h.value for h in app.subheader]
    order = ["Why: what BCE gives G once D wins", "W-loss: a critic, the earth mover's distance, and 1-Lipschitz",
             "What that changes for collapse: BCE against WGAN-GP"]
    assert [h for h in headers if h in order] == order
    latex = "\n".join(el.value for el in app.latex)
    # the worked values, by hand: EMD {0, 1} to {10, 11} is 10, to {20, 21} is 20; W-loss (2 + 4)/2 − (1 − 1)/2 = 3;
    # penalty 10·((5 − 1)² + (1 − 1)²)/2 = 80 (the same values tests/test_wloss.py works out)
    assert "\\to 10," in latex and "\\to 20" in latex
    assert "\\Rightarrow\\; 3" in latex
    assert "= 80" in latex and "\\hat x = \\epsilon x + (1 - \\epsilon)\\,g(z)" in latex
    text = _texts(app) + "\n".join(str(e.proto) for e in app.get("expandable"))
    assert "**non-saturating**" in text and "*with* a strong gradient" in text  # the demo's collapse is not starvation
    assert "Does not**: promise that G draws every mode" in text
    assert "every class or mode stays covered" not in text
    assert "batch norm removed from G" in text
    links = [el.proto for el in app.get("page_link")]
    assert any(link.page == "batch_norm" and link.label.startswith("Batch norm") for link in links), links
    assert "Press **Train with and without batch norm** on the Batch norm page" in text  # nothing measured yet


def test_a_ring_run_says_what_d_knows_with_its_raw_and_filtered_figures(fresh_manager):
    config = get_preset("ring-bce").config.replace(steps=60, sample_every=20, n_samples=64, probe_every=20)
    run_id = _finished(config, "drs-ring")
    app = _app()
    app.session_state[live.SELECTED] = run_id
    app.run()
    assert not app.exception
    text = _texts(app)
    assert "**What D knows that G has not learned.** D may still tell G's bridges between modes from real data" in text
    assert "can then remove many of them" in text
    # the measured line is evaluate_run(..., rejection=True) on the run's checkpoint, the same numbers `eval` prints
    expected = evaluate_run(rejection.load_trainer(live.get_manager().snapshot(run_id).path), n=2500, seed=0,
                            rejection=True)
    line = next(c.value for c in app.caption if "after D's filter" in c.value)
    assert f"**{expected['high_quality_fraction']:.0%}** high quality from G alone" in line
    assert f"**{expected['rejection']['high_quality_fraction']:.0%}** after D's filter" in line
    assert f"accepted {expected['rejection']['acceptance_rate']:.0%}, the first 2,500 of them" in line and "step 60" in line


def test_a_critic_ring_run_says_the_filter_needs_bce(fresh_manager):
    config = get_preset("ring-wgan").config.replace(steps=4, sample_every=2, n_samples=64, probe_every=2)
    run_id = _finished(config, "drs-wring")
    app = _app()
    app.session_state[live.SELECTED] = run_id
    app.run()
    assert not app.exception
    text = _texts(app)
    assert "What D knows that G has not learned" in text and "Measured on BCE runs only" in text
    assert "after D's filter" not in text


@pytest.mark.slow
def test_a_fresh_browser_whose_newest_run_cannot_be_judged_sees_the_rooms_comparison(fresh_manager, monkeypatch):
    """The room's collapse comparison ran, then someone trained on their own points (no modes to count): a fresh
    browser's sidebar shows that run; the section shows the comparison's BCE run and says why. Picked on purpose, the
    points run is shown as it is, with the reason it cannot be judged."""
    c = get_comparison("collapse-digits")
    monkeypatch.setitem(lesson_comparisons.COMPARISONS, "collapse-digits", dataclasses.replace(  # ends in seconds
        c, base=c.base.replace(steps=20, sample_every=10, n_samples=200),
        variants={"BCE": {}, "WGAN-GP": {**c.variants["WGAN-GP"], "steps": 4}}))
    runs = comparisons.store().start("collapse-digits").runs
    manager = live.get_manager()
    for run_id in runs.values():
        assert manager.wait(run_id, timeout=60).status is Status.FINISHED
    csv = save_points_upload("points.csv", b"x,y\n" + b"".join(f"{i},{i % 7}\n".encode() for i in range(50)),
                             manager.runs_dir)
    points = _finished(get_preset("ring-bce").config.replace(dataset="points", points_csv=str(csv), steps=10,
                                                            sample_every=5, n_samples=32), "my-points")
    assert live.run_order(manager)[0] == points

    app = _app().run()
    assert not app.exception
    assert (f"Run **{runs['BCE']}**, the room's comparison run with digits data and bce loss (the sidebar's run, "
            f"{points}, has points data: no classes or modes to count" in _texts(app))
    assert "Classes covered" in [m.label for m in app.metric], _texts(app)[:3000]

    for run_id in (runs["WGAN-GP"], points):  # a pick is a change: the run already shown is picked by picking another
        app.sidebar.selectbox(key=live.PICKER).select(run_id).run()
    assert not app.exception
    assert "the room's comparison run" not in _texts(app)
    assert "which has no classes or modes to count" in _texts(app)
