"""ui.figures.curves: the Vega-Lite (spec, data) pairs of the live line charts, on small synthetic and on empty metrics."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from gan_core.config import Loss
from ui import cache, style
from ui.figures import curves


def _metrics(n: int, smooth: bool = True) -> dict[str, np.ndarray]:
    step = np.arange(n, dtype=float) * 10
    d, g = 0.7 + 0.1 * np.sin(step), 1.5 + 0.2 * np.cos(step)
    m = {"step": step, "d_loss": d, "g_loss": g, "d_real": 0.8 + 0.05 * np.sin(step), "d_fake": 0.3 + 0.05 * np.cos(step)}
    if smooth:
        m |= {"d_loss_smooth": curves.ema(d), "g_loss_smooth": curves.ema(g)}
    return m


def _series(data: pd.DataFrame, series: str, kind: str | None = None) -> pd.DataFrame:
    rows = data[data["series"] == series]
    return rows if kind is None else rows[rows["kind"] == kind]


def _layers_with(spec: dict, mark: str) -> list[dict]:
    return [layer for layer in spec["layer"] if layer["mark"]["type"] == mark]


def _color_scale(spec: dict) -> dict:
    scales = [layer["encoding"]["color"]["scale"] for layer in spec["layer"] if "color" in layer.get("encoding", {})]
    assert scales and all(s == scales[0] for s in scales)  # one shared scale, so one legend
    return scales[0]


ALL = [
    lambda m: curves.loss_chart(m),
    lambda m: curves.d_output_chart(m, Loss.BCE),
    lambda m: curves.d_output_chart(m, Loss.WGAN_GP),
    lambda m: curves.compare_chart([("a", m), ("b", m)], "g_loss"),
]


# -- loss_chart --------------------------------------------------------------------------------------------------------
def test_loss_chart_data_is_long_format_with_raw_and_smooth_per_net():
    m = _metrics(7)
    spec, data = curves.loss_chart(m)
    assert list(data.columns) == ["step", "value", "series", "kind"]
    assert len(data) == 4 * 7
    assert list(data["series"].cat.categories) == ["D loss", "G loss"]
    assert list(data["kind"].cat.categories) == ["raw", "smooth"]
    for series, net in (("D loss", "d"), ("G loss", "g")):
        np.testing.assert_allclose(_series(data, series, "raw")["value"], m[f"{net}_loss"], rtol=1e-6)
        np.testing.assert_allclose(_series(data, series, "smooth")["value"], m[f"{net}_loss_smooth"], rtol=1e-6)
        np.testing.assert_array_equal(_series(data, series, "raw")["step"], m["step"])
    assert data["value"].dtype == np.float32 and data["step"].dtype == np.float32


def test_loss_chart_smooths_raw_when_smooth_column_is_missing():
    m = _metrics(30, smooth=False)
    _, data = curves.loss_chart(m)
    np.testing.assert_allclose(_series(data, "G loss", "smooth")["value"], curves.ema(m["g_loss"]), rtol=1e-6)


def test_loss_chart_spec_draws_thin_faint_raw_and_bold_smooth_with_figure_colours():
    spec, _ = curves.loss_chart(_metrics(5), height=250)
    raw, smooth = spec["layer"]
    assert raw["transform"] == [{"filter": "datum.kind == 'raw'"}]
    assert smooth["transform"] == [{"filter": "datum.kind == 'smooth'"}]
    assert raw["mark"]["strokeWidth"] == 1 and raw["mark"]["opacity"] == pytest.approx(0.3)
    assert smooth["mark"]["strokeWidth"] == 2.5 and "opacity" not in smooth["mark"]
    assert raw["mark"]["tooltip"] is None and "tooltip" not in raw["encoding"]  # tooltips on the smooth lines only
    assert [t["field"] for t in smooth["encoding"]["tooltip"]] == ["series", "step", "value"]
    assert _color_scale(spec) == {"domain": ["D loss", "G loss"], "range": [style.D_COLOR, style.G_COLOR]}
    enc = smooth["encoding"]
    assert enc["x"]["title"] == "step" and enc["y"]["title"] == "loss"
    assert enc["color"]["legend"]["orient"] == "top" and enc["color"]["legend"]["direction"] == "horizontal"
    assert spec["height"] == 250


def test_loss_chart_rounds_to_float32_and_blanks_infinities():
    m = _metrics(4)
    m["d_loss"] = np.array([0.1, np.inf, np.nan, 1 / 3])
    _, data = curves.loss_chart(m)
    raw = _series(data, "D loss", "raw")["value"].to_numpy()
    assert np.isnan(raw[1]) and np.isnan(raw[2])
    assert raw[3] == np.float32(1 / 3)


def test_loss_chart_cuts_columns_to_common_length():
    m = _metrics(6)
    m["g_loss"] = m["g_loss"][:4]  # a snapshot taken between two appends
    _, data = curves.loss_chart(m)
    assert len(_series(data, "G loss", "raw")) == 4 and len(_series(data, "D loss", "raw")) == 6


# -- d_output_chart ----------------------------------------------------------------------------------------------------
def test_d_output_chart_smooth_is_figures_ema():
    m = _metrics(25)
    _, data = curves.d_output_chart(m, Loss.BCE)
    assert list(data["series"].cat.categories) == ["D(x): real data", "D(G(z)): generated"]
    for series, column in (("D(x): real data", "d_real"), ("D(G(z)): generated", "d_fake")):
        np.testing.assert_allclose(_series(data, series, "raw")["value"], m[column], rtol=1e-6)
        np.testing.assert_allclose(_series(data, series, "smooth")["value"], curves.ema(m[column]), rtol=1e-6)


def test_d_output_chart_bce_has_probability_scale_and_cant_tell_rule():
    spec, _ = curves.d_output_chart(_metrics(5), Loss.BCE)
    assert _color_scale(spec) == {"domain": ["D(x): real data", "D(G(z)): generated"],
                                  "range": [style.REAL_COLOR, style.FAKE_COLOR]}
    line = _layers_with(spec, "line")[0]["encoding"]
    assert line["y"]["title"] == "probability real" and line["y"]["scale"]["domain"] == [0, 1]
    (rule,) = _layers_with(spec, "rule")
    assert rule["encoding"]["y"]["datum"] == 0.5 and rule["mark"]["strokeDash"] and rule["mark"]["color"] == "grey"
    assert rule["data"] == {"values": [{}]}  # drawn once, not once per row
    (text,) = _layers_with(spec, "text")
    assert text["mark"]["text"] == "D can't tell" and text["encoding"]["y"]["datum"] == 0.5


@pytest.mark.parametrize("loss", [Loss.WGAN_GP, Loss.LEAST_SQUARES])
def test_d_output_chart_critic_has_free_scale_and_no_rule(loss):
    spec, _ = curves.d_output_chart(_metrics(5), loss)
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["line", "line"]
    y = spec["layer"][0]["encoding"]["y"]
    assert y["title"] == "critic score" and "domain" not in y["scale"]


# -- compare_chart -----------------------------------------------------------------------------------------------------
def test_compare_chart_one_series_per_run_coloured_like_figures():
    runs = [(f"run{i}", _metrics(3 + i)) for i in range(12)]
    spec, data = curves.compare_chart(runs)
    assert list(data.columns) == ["step", "value", "series"]
    assert list(data["series"].cat.categories) == [name for name, _ in runs]
    assert len(data) == sum(3 + i for i in range(12))
    np.testing.assert_allclose(_series(data, "run4")["value"], runs[4][1]["g_loss_smooth"], rtol=1e-6)
    scale = _color_scale(spec)
    assert scale["domain"] == [name for name, _ in runs]
    assert scale["range"] == [style.RUN_COLORS[i % 10] for i in range(12)]
    color = spec["layer"][0]["encoding"]["color"]
    assert color["title"] == "run"
    assert spec["layer"][0]["encoding"]["y"]["title"] == "g_loss_smooth"


def test_run_colours_are_the_figures_ones():
    assert not {style.D_COLOR, style.G_COLOR, style.REAL_COLOR, style.FAKE_COLOR} & set(style.RUN_COLORS)


def test_compare_chart_keeps_repeated_run_names_apart():
    _, data = curves.compare_chart([("a", _metrics(2)), ("a", _metrics(3)), ("a (2)", _metrics(1))])
    assert list(data["series"].cat.categories) == ["a", "a (2)", "a (2) (2)"]
    assert data["series"].value_counts().to_dict() == {"a": 2, "a (2)": 3, "a (2) (2)": 1}


def test_compare_chart_without_runs():
    spec, data = curves.compare_chart([])
    assert len(data) == 0 and list(data.columns) == ["step", "value", "series"]
    json.dumps(spec)


# -- all charts --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("build", ALL)
def test_empty_metrics_give_empty_frames(build):
    for metrics in ({}, {"step": np.empty(0), "d_loss": np.empty(0), "g_loss": np.empty(0), "d_real": np.empty(0)}):
        spec, data = build(metrics)
        assert len(data) == 0 and {"step", "value", "series"} <= set(data.columns)
        json.dumps(spec)


@pytest.mark.parametrize("build", ALL)
def test_spec_is_plain_json_and_does_not_depend_on_the_data(build):
    small_spec, small = build(_metrics(3))
    big_spec, big = build(_metrics(500))
    assert len(big) > len(small)
    assert json.loads(json.dumps(small_spec)) == small_spec  # plain JSON types only
    assert small_spec == big_spec  # same spec: Streamlit updates the chart's data in place
    assert build({})[0] == small_spec
    assert small_spec["autosize"]["type"] in ("fit", "fit-x")


def test_charts_render_in_streamlit():
    from streamlit.testing.v1 import AppTest

    def app():
        import numpy as np
        import streamlit as st

        from gan_core.config import Loss
        from ui.figures import curves

        step = np.arange(50, dtype=float)
        m = {"step": step, "d_loss": np.sin(step), "g_loss": np.cos(step), "d_real": np.full(50, 0.7),
             "d_fake": np.full(50, 0.3)}
        pairs = [curves.loss_chart(m), curves.d_output_chart(m, Loss.BCE), curves.d_output_chart(m, Loss.WGAN_GP),
                 curves.compare_chart([("a", m), ("b", m)], "g_loss"), curves.loss_chart({}), curves.compare_chart([])]
        for i, (spec, data) in enumerate(pairs):
            st.vega_lite_chart(data, spec, key=f"chart{i}", width="stretch")

    at = AppTest.from_function(app, default_timeout=60).run()
    assert not at.exception
    charts = at.get("vega_lite_chart")
    assert len(charts) == 6
    sent = json.loads(charts[1].proto.spec)
    assert [layer["mark"]["type"] for layer in sent["layer"]] == ["line", "line", "rule", "text"]
    assert sent["autosize"] == {"type": "fit", "contains": "padding"}


# -- what a browser is sent: thinned, serialised once -------------------------------------------------------------------
def test_thin_rows_keeps_a_power_of_two_stride_from_the_first_row_and_the_newest():
    assert list(curves.thin_rows(5, 10)) == [0, 1, 2, 3, 4]
    assert list(curves.thin_rows(0, 10)) == []
    rows = curves.thin_rows(2001, 500)
    assert rows[0] == 0 and rows[-1] == 2000 and len(rows) <= 501
    assert set(np.diff(rows[:-1])) == {8}  # 2001 rows / 500 → stride 8 (a power of two)
    # one more row keeps every point drawn before in place (a noisy curve does not shimmer between refreshes)
    assert set(curves.thin_rows(1999, 500)[:-1]) <= set(curves.thin_rows(2000, 500))


def test_charts_thin_each_curve_after_smoothing():
    m = _metrics(3000)
    spec, data = curves.loss_chart(m, max_points=500)
    assert spec == curves.loss_chart(m)[0]  # the same chart, fewer points
    raw_g = _series(data, "G loss", "raw")
    assert 375 <= len(raw_g) <= 501 and raw_g["step"].iloc[-1] == m["step"][-1]
    _, full = curves.d_output_chart(m, Loss.BCE)
    _, thinned = curves.d_output_chart(m, Loss.BCE, max_points=500)
    smooth_full = _series(full, "D(x): real data", "smooth").set_index("step")["value"]
    smooth_thin = _series(thinned, "D(x): real data", "smooth").set_index("step")["value"]
    np.testing.assert_array_equal(smooth_thin.to_numpy(), smooth_full.loc[smooth_thin.index].to_numpy())
    _, compare = curves.compare_chart([("a", m)], "g_loss", max_points=500)
    assert len(compare) <= 501


def test_arrow_spec_carries_the_data_as_arrow_bytes_beside_an_unchanged_spec():
    import pyarrow

    spec, data = curves.loss_chart(_metrics(20))
    out = cache.arrow_spec(spec, data)
    assert out["data"] == {"name": cache.DATASET} and {k: v for k, v in out.items() if k not in ("data", "datasets")} == spec
    sent = pyarrow.ipc.open_stream(out["datasets"][cache.DATASET]).read_all().to_pandas()
    pd.testing.assert_frame_equal(sent, data)
    assert "data" not in spec  # the spec given is left as it was


def test_arrow_spec_chart_renders_in_streamlit_with_the_bytes_as_given():
    import pyarrow
    from streamlit.testing.v1 import AppTest

    def app() -> None:
        import numpy as np
        import streamlit as st

        from gan_core.config import Loss
        from ui import cache
        from ui.figures import curves

        step = np.arange(50, dtype=float)
        m = {"step": step, "d_loss": np.sin(step), "g_loss": np.cos(step), "d_real": np.full(50, 0.7),
             "d_fake": np.full(50, 0.3)}
        st.vega_lite_chart(spec=cache.arrow_spec(*curves.d_output_chart(m, Loss.BCE)), key="c", width="stretch")

    at = AppTest.from_function(app, default_timeout=60).run()
    assert not at.exception
    proto = at.get("vega_lite_chart")[0].proto
    sent = json.loads(proto.spec)
    assert "datasets" not in sent and sent["data"] == {"name": cache.DATASET}
    assert [d.name for d in proto.datasets] == [cache.DATASET]
    rows = pyarrow.ipc.open_stream(proto.datasets[0].data.data).read_all()
    assert rows.num_rows == 4 * 50


def test_thirty_browsers_missing_one_key_at_once_build_it_once():
    """A page nobody has drawn yet, opened by a room at once: one build, the others wait for it and share it."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    builds, lock = [], threading.Lock()

    def build() -> str:
        with lock:
            builds.append(1)
        time.sleep(0.2)
        return "figure"

    key = ("test_single_flight", time.time_ns())
    with ThreadPoolExecutor(30) as pool:
        got = list(pool.map(lambda _: cache.cached(key, build), range(30)))
    assert got == ["figure"] * 30 and len(builds) == 1

    def fails() -> str:
        raise ValueError("no data")

    failing = ("test_single_flight_fails", time.time_ns())
    with pytest.raises(ValueError):
        cache.cached(failing, fails)
    assert cache.cached(failing, lambda: "second try") == "second try"  # a failed build is not kept
