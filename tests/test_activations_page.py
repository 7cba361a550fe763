"""The activations lesson: its figure functions on synthetic probe records, and its page under AppTest."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pyarrow
import pytest
from streamlit.testing.v1 import AppTest

from gan_core.config import Activation
from gan_core.lessons import comparisons as lesson_comparisons
from gan_core.lessons import explain
from gan_core.lessons.comparisons import get_comparison
from gan_core.lessons.units import UnitGradients
from gan_core.runs.probe_log import PROBES_FILE
from gan_core.runs.status import Status
from gan_core.train.probes import HIST_EDGES, LayerStats, ProbeRecord
from tests.pages import page_app
from tests.tiny import tiny
from ui import comparisons, live, style
from ui.figures import activations

PAGE = "app_pages/activations.py"
BINS = len(HIST_EDGES) - 1
R, L, S = Activation.RELU, Activation.LEAKY_RELU, Activation.SIGMOID


def _layer(net: str, layer: str, kind: Activation, dead: float = 0.0, saturated: float = 0.0,
           hist: np.ndarray | None = None) -> LayerStats:
    return LayerStats(net, layer, kind, dead, saturated, 0.0, 1.0, np.ones(BINS) if hist is None else hist)


def _probes(n: int = 4) -> list[ProbeRecord]:
    """D: two ReLU blocks whose dead fraction grows; G: a leaky block and a sigmoid block; grads halving per layer."""
    out = []
    for i in range(n):
        step = 10 * (i + 1)
        layers = (_layer("D", "block 1", R, dead=0.1 * i), _layer("D", "block 2", R, dead=0.05 * i),
                  _layer("G", "block 1", L, dead=0.01 * i), _layer("G", "block 2", S, saturated=0.2))
        grads = {"D": {"output": 1.0, "block 2": 0.5, "block 1": 0.25},
                 "G": {"block 1": 1e-6 * (i + 1), "block 2": 1e-3, "block 10": 0.0, "output": 0.1}}
        out.append(ProbeRecord(step, grads, layers, ()))
    return out


def _rows(data, series: str):
    return data[data["series"] == series]


# -- the functions -------------------------------------------------------------------------------------------------------
def _zones(fig) -> list[tuple[float, float]]:
    return [(shape.x0, shape.x1) for shape in fig.layout.shapes]


def test_activation_figure_plots_explain_and_shades_its_flat_zones():
    relu = activations.activation_figure(R)
    z = np.asarray(relu.data[0].x)
    np.testing.assert_allclose(relu.data[0].y, np.maximum(z, 0))
    np.testing.assert_allclose(relu.data[1].y, explain.derivative(R, z))
    assert _zones(relu) == [(-6.0, 0.0)]
    assert relu.layout.annotations[0].text == "no gradient"  # not "dead": one input's z < 0 is not a dead unit

    sigmoid = activations.activation_figure(S)
    (a0, a1), (b0, b1) = _zones(sigmoid)
    assert a0 == -6.0 and b1 == 6.0 and a1 == pytest.approx(-4.585, abs=1e-3) and b0 == pytest.approx(4.585, abs=1e-3)
    assert [a.text for a in sigmoid.layout.annotations] == ["saturated", "saturated"]
    assert _zones(activations.activation_figure(Activation.TANH))[1][0] == pytest.approx(2.993, abs=1e-3)

    assert _zones(activations.activation_figure(L, 0.1)) == []  # a slope of 0.1 is never below the 0.01 threshold
    np.testing.assert_allclose(activations.activation_figure(L, 0.3).data[0].y[0], -6 * 0.3)
    assert activations.zone_label(L, (-6.0, 0.0), 0.005).startswith("saturated")  # small, not zero
    assert activations.zone_label(L, (-6.0, 0.0), 0.0).startswith("no gradient")


# -- measured: dead units ------------------------------------------------------------------------------------------------
def test_dead_fraction_chart_has_one_line_per_relu_like_layer():
    probes = _probes()
    spec, data = activations.dead_fraction_chart(probes)
    assert list(data["series"].cat.categories) == ["D block 1", "D block 2", "G block 1"]  # the sigmoid layer is left out
    assert len(data) == 3 * len(probes)
    np.testing.assert_allclose(_rows(data, "D block 1")["value"], [0.0, 0.1, 0.2, 0.3], atol=1e-6)
    np.testing.assert_array_equal(_rows(data, "D block 2")["step"], [10, 20, 30, 40])
    assert spec["encoding"]["y"]["scale"]["domain"] == [0, 1]
    colors = spec["encoding"]["color"]["scale"]["range"]
    assert colors[0] != colors[1] and colors[2] in style.G_SHADES and colors[0] in style.D_SHADES  # D blue, G orange
    json.dumps(spec)

    d_only, d_data = activations.dead_fraction_chart(probes, ("D",))
    assert list(d_data["series"].cat.categories) == ["D block 1", "D block 2"]
    _, saturated = activations.dead_fraction_chart(probes, measure="saturated")
    assert list(saturated["series"].cat.categories) == ["G block 2"]
    np.testing.assert_allclose(saturated["value"], 0.2, atol=1e-6)


def test_live_specs_depend_on_names_not_values():
    """A keyed Vega-Lite chart updates in place only while its spec stays the same: new values must not change it."""
    early, late = _probes(2), _probes(4)
    for build in (activations.dead_fraction_chart, lambda p: activations.grad_norm_chart(p, "G"),
                  lambda p: activations.histogram_chart(p[-1].layers),
                  lambda p: activations.grad_norm_chart(p, "D", fixed_domain=True)):
        assert build(early)[0] == build(late)[0]
    assert activations.dead_fraction_chart([])[1].empty and activations.histogram_chart([])[1].empty


def test_histogram_rows_are_fractions_per_layer_and_count_the_negative_side():
    hist = np.zeros(BINS)
    hist[:BINS // 2] = 3.0  # every value below 0 (HIST_EDGES has an edge at 0)
    hist[-1] = 1.0
    layers = [_layer("D", "block 2", R, hist=hist), _layer("D", "block 1", R)]
    spec, data = activations.histogram_chart(layers)
    assert list(data["series"].cat.categories) == ["D block 1", "D block 2"]  # network order
    for name in ("D block 1", "D block 2"):
        assert _rows(data, name)["value"].sum() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(_rows(data, "D block 2")["lo"], HIST_EDGES[:-1], atol=1e-6)
    assert activations.negative_share(layers[0]) == pytest.approx(60 / 61)
    assert activations.negative_share(layers[1]) == pytest.approx(0.5)
    assert math.isnan(activations.negative_share(_layer("D", "block 1", R, hist=np.zeros(BINS))))


# -- measured: gradients -------------------------------------------------------------------------------------------------
def test_grad_norm_chart_orders_layers_and_drops_zeros_from_the_log_axis():
    spec, data = activations.grad_norm_chart(_probes(), "G")
    assert list(data["series"].cat.categories) == ["block 1", "block 2", "block 10", "output"]  # 10 after 2, output last
    np.testing.assert_allclose(_rows(data, "block 1")["value"], [1e-6, 2e-6, 3e-6, 4e-6], rtol=1e-5)
    assert _rows(data, "block 10")["value"].isna().all()  # a zero norm has no place on a log axis
    assert spec["encoding"]["y"]["scale"] == {"type": "log"}
    fixed, _ = activations.grad_norm_chart(_probes(), "G", fixed_domain=True)
    assert fixed["encoding"]["y"]["scale"]["domain"] == list(activations.GRAD_DOMAIN)


def test_grad_profile_and_ratio_compare_first_and_last_layer():
    latest = {"sigmoid": _probes()[-1], "leaky ReLU": ProbeRecord(5, {"G": {"block 1": 0.5, "output": 1.0}}, (), ())}
    spec, data = activations.grad_profile_chart(latest, "G")
    assert spec["encoding"]["x"]["sort"] == ["block 1", "block 2", "block 10", "output"]
    leaky = _rows(data, "leaky ReLU")
    assert list(leaky["layer"]) == ["block 1", "output"] and list(leaky["value"]) == [0.5, 1.0]
    assert activations.grad_ratio(latest["sigmoid"], "G") == pytest.approx(4e-5)
    assert activations.grad_ratio(latest["sigmoid"], "D") == pytest.approx(0.25)
    assert math.isnan(activations.grad_ratio(latest["leaky ReLU"], "D"))
    assert [activations.ratio_text(x) for x in (4e-5, 0.25, 0.4, 3.0, math.nan)] == ["1/25,000", "1/4", "1/2.5", "3×", "—"]
    assert activations.dead_mean(_probes()[-1], "D") == pytest.approx(0.225)
    assert math.isnan(activations.dead_mean(ProbeRecord(1, {}, (_layer("G", "block 1", S),), ()), "G"))


def test_unit_gradient_chart_puts_dead_units_beside_living_ones():
    relu = UnitGradients("block 1", R, dead=np.array([False, True, True]), grad=np.array([0.4, 0.0, 0.0]))
    leaky = UnitGradients("block 2", L, dead=np.array([False, False, True]), grad=np.array([0.2, 0.4, 0.06]))
    spec, data = activations.unit_gradient_chart([leaky, relu], y_max=1.0)
    assert list(data["layer"]) == ["block 1", "block 1", "block 2", "block 2"]  # network order
    assert list(data["units"]) == ["alive", "counted dead"] * 2
    np.testing.assert_allclose(data["value"], [0.4, 0.0, 0.3, 0.06])
    assert list(data["count"]) == [1, 2, 2, 1]
    assert list(data["label"]) == ["0.4", "0", "0.3", "0.06"]  # a ReLU unit counted dead reads exactly 0
    assert spec["layer"][0]["encoding"]["y"]["scale"]["domain"] == [0, 1.0]
    alive_only = UnitGradients("block 1", L, dead=np.array([False]), grad=np.array([0.5]))
    assert list(activations.unit_gradient_rows([alive_only])["units"]) == ["alive"]  # no empty group


# -- the page ------------------------------------------------------------------------------------------------------------


def _page() -> AppTest:
    app = page_app(PAGE, 30).run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def _charts(app: AppTest, text: str) -> list:
    return [c for c in app.get("vega_lite_chart") if text in c.proto.spec]


def test_page_without_runs_explains_and_offers_the_comparisons(fresh_manager):
    app = _page()
    assert app.title[0].value == "Activations"
    assert any(r"\max(az, z)" in el.value for el in app.latex) and any(r"\sigma(z)\," in el.value for el in app.latex)
    assert len(app.get("plotly_chart")) == 4
    assert any("No run selected" in i.value for i in app.info)
    (why,) = [e for e in app.expander if e.label.startswith("Why non-linear")]
    # the worked example's numbers come from units.compose_linear: W₂W₁ = [1 1], W₂b₁ + b₂ = 3
    assert any(r"\begin{bmatrix}1 & 1\end{bmatrix},\ W_2b_1 + b_2 = 3" in el.value for el in why.latex)
    assert any("dead only if every input lands there" in c.value for c in app.caption)
    # no key set: this browser is the presenter, so it may ask the room to predict first
    assert {b.key for b in app.button} == {"act_dying_start", "act_vanishing_start", "act_dying_ask",
                                           "act_vanishing_ask"}
    assert not app.get("vega_lite_chart")


def test_slope_slider_changes_the_value_shown(fresh_manager):
    app = _page()

    def shown() -> str:
        return next(c.value for c in app.caption if c.value.startswith("leaky ReLU(−2)"))

    assert shown().startswith("leaky ReLU(−2) = −0.2,")
    app.slider(key="act_slope").set_value(0.35).run()
    assert not app.exception
    assert shown().startswith("leaky ReLU(−2) = −0.7,") and "gradient there is 0.35" in shown()


@pytest.mark.parametrize("name", ["dying-relu", "vanishing-gradients"])
def test_comparison_button_starts_both_variants(fresh_manager, name):
    app = _page()
    key = "act_dying_start" if name == "dying-relu" else "act_vanishing_start"
    app.button(key=key).click().run()
    assert not app.exception, [e.value for e in app.exception]
    runs = comparisons.store().current(name).runs
    assert set(runs) == set(get_comparison(name).variants)
    manager = live.get_manager()
    assert set(manager.ids()) == set(runs.values())
    assert all(manager.snapshot(i).status.active for i in runs.values())
    again = key.replace("_start", "_again")
    assert app.button(key=again).disabled  # one click is enough: no second pair while these train
    assert not [b for b in app.button if b.key == key]
    assert sum(label in m.value for m in app.markdown for label in runs) >= 2  # a column per variant


def test_a_finished_run_shows_its_dead_units_and_gradients(fresh_manager):
    config = tiny("digits", width=8, steps=12, probe_every=4, batch_size=16, sample_every=100, d_activation="relu")
    run_id = live.start(config, "tiny")
    assert live.get_manager().wait(run_id, timeout=30).status is Status.FINISHED
    app = page_app(PAGE, 30)
    app.session_state[live.SELECTED] = run_id
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    (dead,) = _charts(app, "fraction of units dead")
    # what the browser receives: the Arrow bytes ui.cache serialised once for every browser
    data = pyarrow.ipc.open_stream(dead.proto.datasets[0].data.data).read_all().to_pandas()
    assert set(data["series"]) == {f"{net} block {i}" for net in "DG" for i in (1, 2, 3)}
    assert sorted(set(data["step"])) == [4, 8, 12]
    assert data["value"].between(0, 1).all()
    assert len(_charts(app, "gradient norm")) == 2  # D and G
    assert all(c.proto.datasets and not c.proto.data.data for c in app.get("vega_lite_chart"))  # through ui.cache
    assert not app.info

    specs = [c.proto.spec for c in app.get("vega_lite_chart")]

    live.reset_manager()  # a server restart: the new manager reads the probe records from the run's folder
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert [c.proto.spec for c in app.get("vega_lite_chart")] == specs
    (dead,) = _charts(app, "fraction of units dead")
    again = pyarrow.ipc.open_stream(dead.proto.datasets[0].data.data).read_all().to_pandas()
    assert again.equals(data) and not app.info

    (live.get_manager().runs_dir / run_id / PROBES_FILE).unlink()  # as in a folder written before probes were saved
    live.reset_manager()
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert not app.get("vega_lite_chart")
    assert sum("has no probe records in its folder" in i.value for i in app.info) == 2


@pytest.mark.usefixtures("one_thread")
def test_ended_dying_comparison_measures_the_gradient_dead_units_get(fresh_manager, monkeypatch):
    # the lesson's own comparison (its high learning rate kills ReLUs within a few dozen steps), shortened
    base = get_comparison("dying-relu").base
    short = dataclasses.replace(get_comparison("dying-relu"), base=base.replace(steps=40, probe_every=10))
    monkeypatch.setitem(lesson_comparisons.COMPARISONS, "dying-relu", short)
    shown = comparisons.store().start("dying-relu")
    manager = live.get_manager()
    for run_id in shown.runs.values():
        assert manager.wait(run_id, timeout=60).status is Status.FINISHED
    app = _page()
    charts = _charts(app, "on a unit's weights")
    assert len(charts) == 2  # one per variant
    relu = pyarrow.ipc.open_stream(charts[0].proto.datasets[0].data.data).read_all().to_pandas()
    dead = relu[relu["units"] == "counted dead"]
    assert not dead.empty and (dead["value"] == 0).all()  # counted dead in the ReLU run: exactly nothing comes back
    assert any(c.value.startswith("A unit counted dead gets 0% ") for c in app.caption)



@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_a_fresh_browser_after_the_rooms_comparisons_sees_their_runs_not_a_request_to_find_one(fresh_manager,
                                                                                               monkeypatch):
    """Both comparisons ran, the vanishing-gradients one last: a fresh browser's sidebar shows its newest run, leaky
    ReLU in G and D, which has no ReLU and no sigmoid. Each section shows its comparison's run that has, and says so;
    a run picked on purpose is never overridden."""
    manager = live.get_manager()
    shown = {}
    for name in ("dying-relu", "vanishing-gradients"):
        c = get_comparison(name)
        monkeypatch.setitem(lesson_comparisons.COMPARISONS, name,
                            dataclasses.replace(c, base=c.base.replace(steps=20, probe_every=10)))
        shown[name] = comparisons.store().start(name).runs
        for run_id in shown[name].values():
            assert manager.wait(run_id, timeout=60).status is Status.FINISHED
    newest = shown["vanishing-gradients"]["leaky ReLU"]
    assert live.run_order(manager)[0] == newest  # what a fresh browser's sidebar shows

    app = _page()
    text = " ".join(m.value for m in app.markdown)
    assert (f"Run **{shown['dying-relu']['ReLU in D']}**, the room's comparison run with ReLU units (the sidebar's "
            f"run, {newest}, has no ReLU units" in text)
    assert f"Run **{shown['vanishing-gradients']['sigmoid']}**, the room's comparison run with sigmoid or tanh" in text
    assert _charts(app, "fraction of units dead") and len(_charts(app, "gradient norm")) >= 2
    assert not [i for i in app.info if "pick" in i.value]

    app.sidebar.selectbox(key=live.PICKER).select(shown["dying-relu"]["leaky ReLU in D"]).run()
    app.sidebar.selectbox(key=live.PICKER).select(newest).run()  # picked on purpose: shown as it is
    assert not app.exception
    assert "the room's comparison run" not in " ".join(m.value for m in app.markdown)
    assert any(f"**{newest}**" in m.value for m in app.markdown)


def test_the_histograms_say_what_the_negative_side_gives_for_their_own_activation():
    hist = np.ones(BINS)

    def layers(*kinds: Activation) -> list[LayerStats]:
        return [LayerStats("D", f"block {i}", kind, 0.0, 0.0, 0.0, 1.0, hist) for i, kind in enumerate(kinds, 1)]

    assert activations.negative_side(layers(R, R)) == "z < 0: ReLU outputs 0"
    assert activations.negative_side(layers(L)) == "z < 0: leaky ReLU outputs a·z"  # never "0" on a leaky run
    assert activations.negative_side(layers(R, L)) == "z < 0: ReLU outputs 0, leaky ReLU outputs a·z"
    spec, _ = activations.histogram_chart(layers(L))
    assert spec["layer"][1]["mark"]["text"] == "z < 0: leaky ReLU outputs a·z"
