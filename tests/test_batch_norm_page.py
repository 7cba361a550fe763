"""The batch-norm lesson: its figure functions on synthetic probe records, and its page under AppTest."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from gan_core.config import Activation
from gan_core.lessons import comparisons as lesson_comparisons
from gan_core.lessons import explain
from gan_core.lessons.comparisons import get_comparison
from gan_core.runs.probe_log import PROBES_FILE
from gan_core.runs.status import Status
from gan_core.train.probes import HIST_EDGES, BatchNormStats, LayerStats, ProbeRecord
from tests.tiny import tiny
from ui import collapse_evidence, comparisons, live, style
from ui.figures import batch_norm

# Through the app's entry: the page links to the Mode collapse page, and st.page_link only finds pages that
# st.navigation registered (a page run on its own has no other page to link to)
APP = str(Path(__file__).resolve().parents[1] / "dashboard.py")
PAGE, MC_PAGE = "app_pages/batch_norm.py", "app_pages/mode_collapse.py"
BINS = len(HIST_EDGES) - 1

pytestmark = pytest.mark.usefixtures("fresh_manager")


def _bn(net: str, layer: str, mean: list[float], var: list[float], run_mean: list[float], run_var: list[float],
        hist_in: np.ndarray | None = None, hist_out: np.ndarray | None = None) -> BatchNormStats:
    return BatchNormStats(net, layer, np.array(mean), np.array(var), np.array(run_mean), np.array(run_var),
                          np.ones(BINS) if hist_in is None else hist_in, np.ones(BINS) if hist_out is None else hist_out)


def _layer(net: str, layer: str, mean: float, std: float) -> LayerStats:
    return LayerStats(net, layer, Activation.RELU, 0.0, 0.0, mean, std, np.zeros(BINS))


def _record(step: int, batchnorm: tuple[BatchNormStats, ...] = (), layers: tuple[LayerStats, ...] = ()) -> ProbeRecord:
    return ProbeRecord(step, {"G": {}, "D": {}}, layers, batchnorm)


# -- figures -------------------------------------------------------------------------------------------------------------
def test_learned_text_gives_each_layers_gamma_and_beta_range_or_none_for_old_records():
    record = _record(10, (dataclasses.replace(_bn("G", "block 1", [0.0, 0.0], [1.0, 1.0], [0.0] * 2, [1.0] * 2),
                                              gamma=np.array([0.9, 1.1]), beta=np.array([-0.05, -0.05])),))
    assert batch_norm.learned_text(record) == "G block 1: γ 0.90 to 1.10, β −0.05"
    assert batch_norm.learned_text(_record(10, (_bn("G", "block 1", [0.0], [1.0], [0.0], [1.0]),))) is None


def test_bn_stats_average_over_channels_per_layer_and_source():
    probes = [
        _record(10, (_bn("D", "block 1", [0.0], [1.0], [0.0], [1.0]),
                     _bn("G", "block 1", [1.0, 3.0], [2.0, 4.0], [0.1, 0.3], [1.0, 1.0]),
                     _bn("G", "block 2", [0.0], [1.0], [0.0], [1.0]))),
        _record(20, (_bn("G", "block 1", [2.0, 4.0], [1.0, 1.0], [0.3, 0.5], [1.5, 2.5]),
                     _bn("G", "block 2", [5.0], [9.0], [0.5], [1.8]))),
    ]
    assert batch_norm.bn_layers(probes) == ["G block 1", "G block 2", "D block 1"]  # G first, as the lesson reads
    frame = batch_norm.bn_stats_frame(probes).set_index(["step", "layer", "statistic", "source"])["value"]
    assert frame[(10, "G block 1", "mean", "batch")] == pytest.approx(2.0)
    assert frame[(10, "G block 1", "mean", "running")] == pytest.approx(0.2)
    assert frame[(20, "G block 1", "variance", "running")] == pytest.approx(2.0)
    assert frame[(20, "G block 2", "variance", "batch")] == pytest.approx(9.0)
    spec, data = batch_norm.bn_stats_chart(probes, "G block 2", "variance")
    assert data.to_dict("list") == {"step": [10, 10, 20, 20], "source": ["batch", "running"] * 2,
                                    "value": pytest.approx([1.0, 1.0, 9.0, 1.8])}
    assert spec["title"]["text"] == "G block 2: variance"
    # the spec depends only on the layer, never on the values, so a keyed chart can swap its data in place
    assert batch_norm.bn_stats_chart(probes[:1], "G block 2", "variance")[0] == spec
    with pytest.raises(AssertionError):
        batch_norm.bn_stats_chart(probes, "G block 2", "std")


def test_histograms_are_fractions_over_the_probe_bins():
    hist_in = np.zeros(BINS)
    hist_in[-1] = 30.0  # everything beyond +4 lands in the last bin
    hist_out = np.zeros(BINS)
    hist_out[BINS // 2 - 1: BINS // 2 + 1] = [10.0, 30.0]
    record = _record(50, (_bn("D", "block 1", [0.0], [1.0], [0.0], [1.0], hist_in, hist_out),
                          _bn("D", "block 2", [0.0], [1.0], [0.0], [1.0])))
    frame = batch_norm.hist_frame(record)
    assert len(frame) == 2 * 2 * BINS
    sums = frame.groupby(["layer", "stage"])["fraction"].sum()
    assert sums.to_numpy() == pytest.approx(np.ones(4))
    spec, data = batch_norm.hist_chart(record, "D block 1")
    assert len(data) == 2 * BINS and spec["title"]["text"] == "D block 1"
    after = data[data["stage"] == "after BN"].set_index("x")["fraction"]
    assert after.max() == pytest.approx(0.75) and after.idxmax() == pytest.approx(0.0)  # the bin [0, 0.2)
    assert data[data["stage"] == "before BN"]["x_end"].iloc[-1] == pytest.approx(HIST_EDGES[-1])
    assert data["x"].min() == pytest.approx(HIST_EDGES[0])
    assert batch_norm.hist_frame(_record(60)).empty


def test_drift_bands_are_mean_plus_minus_std_of_one_net_per_variant():
    runs = {
        "batch norm": [_record(10, layers=(_layer("G", "block 1", 0.0, 1.0), _layer("D", "block 1", 0.5, 0.2))),
                       _record(20, layers=(_layer("G", "block 1", 0.1, 1.1), _layer("D", "block 1", 0.4, 0.3)))],
        "no batch norm": [_record(10, layers=(_layer("G", "block 1", 0.3, 0.5), _layer("G", "block 10", 0.0, 0.1)))],
    }
    frame = batch_norm.drift_frame(runs, "G")
    assert len(frame) == 4 and set(frame["variant"]) == set(runs)
    row = frame[(frame["variant"] == "no batch norm") & (frame["layer"] == "block 1")].iloc[0]
    assert (row["low"], row["mean"], row["high"]) == pytest.approx((-0.2, 0.3, 0.8))
    assert len(batch_norm.drift_frame(runs, "D")) == 2
    assert batch_norm.drift_layers(runs, "G") == ["block 1", "block 10"]
    spec, data = batch_norm.drift_chart(runs, "G", "block 1")
    assert data["variant"].tolist() == ["batch norm", "batch norm", "no batch norm"]
    assert spec["layer"][0]["encoding"]["color"]["scale"]["domain"] == list(runs)


def test_variant_losses_one_line_per_variant_and_loss_with_inf_as_gap():
    metrics = {"step": np.array([1, 2, 3]), "g_loss_smooth": np.array([1.0, np.inf, 0.5]),
               "d_loss_smooth": np.array([0.7, 0.6])}  # a snapshot may fall between two columns' appends
    spec, data = batch_norm.variant_loss_chart({"batch norm": metrics, "no batch norm": {}})
    assert len(data) == 3 + 2
    assert np.isnan(data[(data["loss"] == "G loss")]["value"].iloc[1])
    assert spec["encoding"]["color"]["scale"]["domain"] == ["batch norm", "no batch norm"]


def test_toy_table_and_figure_show_both_modes():
    result = explain.batchnorm_train([1.0, 2.0, 4.0, 9.0], gamma=2.0, beta=1.0)
    y_infer = explain.batchnorm_infer(result.x, 2.0, 4.0, gamma=2.0, beta=1.0)
    table = batch_norm.toy_table(result, y_infer)
    assert list(table.columns) == ["x", "x̂", "y (training)", "y (inference)"]
    assert table["x̂"].mean() == pytest.approx(0.0, abs=1e-12)
    assert table["y (inference)"].iloc[0] == pytest.approx(2.0 * (1.0 - 2.0) / np.sqrt(4.0 + 1e-5) + 1.0)
    fig = batch_norm.toy_figure(result, 2.0, 4.0, 2.0, 1.0)
    training, inference = (next(tr for tr in fig.data if tr.mode == "markers" and tr.marker.color == c)
                           for c in (style.BN_TRAIN_COLOR, style.BN_INFER_COLOR))
    assert list(training.y) == pytest.approx(list(result.y)) and list(inference.y) == pytest.approx(list(y_infer))
    lines = [tr for tr in fig.data if tr.mode == "lines" and tr.name]
    # both maps cross y = β at their own mean: the batch's 4 and the running 2
    for line, mean in zip(lines, (4.0, 2.0), strict=True):
        slope = (line.y[1] - line.y[0]) / (line.x[1] - line.x[0])
        assert line.y[0] + slope * (mean - line.x[0]) == pytest.approx(1.0)


# -- the page ------------------------------------------------------------------------------------------------------------


def _page(selected: str | None = None, page: str = PAGE) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60).switch_page(page)
    if selected is not None:
        app.session_state[live.SELECTED] = selected
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def _metrics(app: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in app.metric}


def _vega_specs(app: AppTest) -> list[str]:
    """The page's Vega-Lite specs, as JSON text (AppTest does not expose a chart's key)."""
    return [json.dumps(json.loads(el.proto.spec), ensure_ascii=False) for el in app.get("vega_lite_chart")]


def test_page_without_runs_shows_the_maths_and_says_there_is_no_run():
    app = _page()
    assert app.title[0].value == "Batch norm"
    assert any("\\mu_B" in el.value and "= 4" in el.value for el in app.latex)
    assert any("No run yet" in el.value for el in app.info)
    assert _metrics(app) == {"in training": "-0.9733", "at inference": "-0.5"}


def test_gamma_and_running_statistics_change_the_values_shown():
    app = _page()
    app.number_input(key="bn_gamma").set_value(2.0).run()
    app.number_input(key="bn_beta").set_value(1.0).run()
    assert not app.exception
    assert _metrics(app) == {"in training": "-0.9467", "at inference": "0"}
    assert any("2\\,\\hat x_i + 1" in el.value for el in app.latex)
    app.number_input(key="bn_running_mean").set_value(1.0).run()
    assert _metrics(app)["at inference"] == "1"  # x equals the running mean: y = β


def test_comparison_button_starts_both_variants():
    app = _page()
    app.button(key="bn_compare_start").click().run()
    assert not app.exception, [e.value for e in app.exception]
    runs = comparisons.store().current("batchnorm").runs
    assert list(runs) == list(get_comparison("batchnorm").variants)
    manager = live.get_manager()
    assert sorted(manager.ids()) == sorted(runs.values())
    configs = [manager.snapshot(i).config for i in runs.values()]
    assert [c.g_batchnorm for c in configs] == [True, False]
    assert app.session_state[live.SELECTED] == runs["batch norm"]
    specs = _vega_specs(app)
    assert any("loss (smoothed)" in s for s in specs)
    # the drift chart, or (before the first probe step) the line saying when it comes
    assert any("mean ± std" in s for s in specs) or any("first layer records" in c.value for c in app.caption)


def test_a_finished_run_with_batch_norm_shows_its_statistics_after_a_restart_too():
    config = tiny("digits", width=8, steps=12, probe_every=4, sample_every=6,
                  batch_size=16, g_batchnorm=True, d_batchnorm=True)
    manager = live.get_manager()
    run_id = manager.start(config, "tiny-bn")
    snap = manager.wait(run_id, timeout=30)
    assert snap.status is Status.FINISHED and snap.probes
    app = _page(run_id)
    specs = _vega_specs(app)
    layers = ["G block 1", "G block 2", "G block 3", "D block 1", "D block 2", "D block 3"]
    assert len(specs) == 3 * len(layers), "mean, variance and histogram per BN layer"
    assert all(c.proto.datasets and not c.proto.data.data for c in app.get("vega_lite_chart"))  # through ui.cache
    titles = [json.loads(s)["title"]["text"] for s in specs]
    assert titles == [f"{layer}: {statistic}" for layer in layers for statistic in ("mean", "variance")] + layers
    assert app.select_slider(key="bn_hist_step").value == snap.probes[-1].step
    learned = batch_norm.learned_text(snap.probes[-1])
    assert "G block 1: γ " in learned and ", β " in learned
    assert any(f"This run's at step {snap.probes[-1].step:,}, over each layer's channels: {learned}." in m.value
               for m in app.markdown)
    app.select_slider(key="bn_hist_step").set_value(snap.probes[0].step).run()
    assert not app.exception, [e.value for e in app.exception]
    assert any(f"This run's at step {snap.probes[0].step:,}" in m.value for m in app.markdown)  # the step shown
    # after a restart the probe records come from the run's folder: the same charts
    live.reset_manager()
    app = _page(run_id)
    assert _vega_specs(app) == specs and app.select_slider(key="bn_hist_step").options == [f"step {p.step:,}"
                                                                                         for p in snap.probes]
    # a folder written before probe records were saved has none: the page says so instead of drawing empty charts
    (snap.path / PROBES_FILE).unlink()
    live.reset_manager()
    app = _page(run_id)
    assert not app.get("vega_lite_chart")
    assert any("runs trained before probe records were saved" in el.value for el in app.info)


# -- the page's words, and the sentence it shares with the Mode collapse page --------------------------------------------
def _texts(app: AppTest) -> str:
    parts = [m.value for m in app.markdown] + [c.value for c in app.caption] + [i.value for i in app.info]
    return "\n".join(map(str, parts))


def test_page_names_both_shifts_where_batch_norm_sits_the_caveat_and_eval_mode():
    app = _page()
    text = _texts(app)
    assert "**Covariate shift**" in text and "**internal covariate shift**" in text and "**Internal covariate shift**" in text
    assert "linear → BN → activation" in text
    assert "smoothing the cost surface" in text
    assert "G in eval mode, with its running statistics" in text
    assert "γ = √(σ²_B + ε)" in text and "γ = σ " not in text
    # the Mode collapse page, linked: its demo is this page's GAN without batch norm
    links = [el.proto for el in app.get("page_link")]
    assert any(link.page == "mode_collapse" and link.label.startswith("Mode collapse") for link in links), links
    assert "Press **Train with and without batch norm** above" in text  # no comparison yet: nothing measured to quote


@pytest.mark.parametrize(("measured", "ends"), [
    ({"batch norm": 9.0, "no batch norm": 1.0}, "only the run without batch norm collapsed to 3 or fewer."),
    ({"batch norm": 2.0, "no batch norm": 1.0}, "both collapsed to 3 or fewer."),
    ({"batch norm": 10.0, "no batch norm": 7.0}, "neither collapsed to 3 or fewer."),
])
def test_evidence_sentence_reads_the_comparisons_prediction_rule(measured, ends):
    line = collapse_evidence.sentence(0, measured)
    no_bn, bn = measured["no batch norm"], measured["batch norm"]
    assert line.startswith(f"On seed 0, without batch norm G drew {no_bn:.0f} of 10 digits; with it, {bn:.0f}: ")
    assert ends in line


def test_evidence_sentence_waits_for_both_numbers():
    assert collapse_evidence.sentence(0, {"batch norm": 9.0, "no batch norm": float("nan")}) is None
    assert collapse_evidence.sentence(0, {"batch norm": 9.0}) is None


def _finished_short_comparison(monkeypatch: pytest.MonkeyPatch) -> object:
    """The room's batch-norm comparison as the lesson defines it, shortened so that it ends in seconds (the labels and
    the rule are its own), started and waited for until both runs finished."""
    short = dataclasses.replace(get_comparison("batchnorm"), base=get_comparison("batchnorm").base.replace(
        steps=20, sample_every=10, n_samples=200, probe_every=10))
    monkeypatch.setitem(lesson_comparisons.COMPARISONS, "batchnorm", short)
    shown = comparisons.store().start("batchnorm")
    for run_id in shown.runs.values():
        assert live.get_manager().wait(run_id, timeout=60).status is Status.FINISHED
    return shown


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_both_pages_quote_the_same_measured_comparison(monkeypatch):
    shown = _finished_short_comparison(monkeypatch)
    manager = live.get_manager()
    measured = {label: comparisons.classes_covered(manager.snapshot(run_id)) for label, run_id in shown.runs.items()}
    expected = collapse_evidence.sentence(shown.seed, measured)
    assert expected is not None and f"On seed {shown.seed}, without batch norm" in expected
    for app in (_page(), _page(page=MC_PAGE)):
        assert any(expected in c.value for c in app.caption)  # Mode collapse says whose comparison it is


@pytest.mark.slow
def test_a_fresh_browser_after_the_rooms_comparison_sees_the_batch_norm_run_not_a_request_to_find_one(monkeypatch):
    """The sidebar's default is the newest run, the comparison's run *without* batch norm: the section shows the
    comparison's run with batch norm instead, and says so; a run picked on purpose is never overridden."""
    shown = _finished_short_comparison(monkeypatch)
    manager = live.get_manager()
    with_bn, without = shown.runs["batch norm"], shown.runs["no batch norm"]
    assert live.run_order(manager)[0] == without  # what a fresh browser's sidebar shows

    app = _page()
    text = " ".join(m.value for m in app.markdown)
    assert "has no batch norm" not in " ".join(i.value for i in app.info)
    assert f"Run **{with_bn}**, the room's comparison run with batch norm" in text and without in text
    assert app.get("vega_lite_chart"), "the section's charts are drawn"

    for run_id in (with_bn, without):  # then picked on purpose in the sidebar: shown as it is
        app.sidebar.selectbox(key=live.PICKER).select(run_id).run()
    assert not app.exception
    assert any(f"**{without}** has no batch norm" in i.value for i in app.info)
