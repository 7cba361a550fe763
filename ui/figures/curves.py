"""A run's curves over training steps, as Vega-Lite (spec, data) pairs: D's and G's losses, D's two outputs, and one
curve of several runs overlaid. Pure functions, no streamlit; the Training, Home, BCE and Mode-collapse pages draw them.

Why not plotly for these: st.plotly_chart derives its element identity from the figure, so every refresh of a live
panel mounted a new chart in the browser. st.vega_lite_chart with a `key` keeps one chart and swaps its data in place,
as long as the spec stays the same. So every spec here depends only on its arguments' *shape* (loss type, series and
run names, height), never on the data: the data travel separately as one long DataFrame
(step, value, series[, kind]) that Streamlit sends as Arrow.

Call through the shared cache, which serialises the data once for every browser:
`cache.vega_chart((run, version, "loss"), lambda: loss_chart(metrics, max_points=MAX_POINTS), key="...")`.
Thin faint raw lines, bold smoothed lines in the same colour; colours from ui.style.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from gan_core.config import Loss
from ui.style import D_COLOR, FAKE_COLOR, FIT, G_COLOR, REAL_COLOR, TOOLTIP_STEP, run_colors

KINDS = ("raw", "smooth")
LOSS_SERIES = {"D loss": D_COLOR, "G loss": G_COLOR}
D_OUTPUT_SERIES = {"D(x): real data": REAL_COLOR, "D(G(z)): generated": FAKE_COLOR}

RAW_WIDTH, SMOOTH_WIDTH, RUN_WIDTH = 1.0, 2.5, 2.0
RAW_OPACITY = 0.3
# Points per curve sent to a browser: a chart is at most ~700 pixels wide. The history holds up to 2,000 steps; sending
# them all was ~280 kB a second per browser on the Training page (measured: tests/load/classroom.py).
MAX_POINTS = 500

_EMPTY = np.empty(0, dtype=np.float32)
_TOOLTIP_VALUE = {"field": "value", "type": "quantitative", "title": "value", "format": ".4g"}


def ema(values: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """Exponential moving average s_t = (1 − α)·s_{t−1} + α·x_t, started at the first finite value.

    A NaN (or infinite) input keeps the previous average, so one bad row does not blank the rest of the curve;
    positions before the first finite value stay NaN.
    """
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    x = np.asarray(values, dtype=np.float64).ravel()
    out = np.full(x.shape, np.nan)
    avg = math.nan
    keep = 1.0 - alpha
    # A plain loop over a list: a few thousand points take well under a millisecond, and NaN-skipping makes the
    # closed-form (lfilter) version awkward to get right.
    for i, v in enumerate(x.tolist()):
        if math.isfinite(v):
            avg = v if math.isnan(avg) else keep * avg + alpha * v
        out[i] = avg
    return out


# -- data ----------------------------------------------------------------------------------------------------------------
def _finite32(values: np.ndarray) -> np.ndarray:
    """float32 with ±inf as NaN: an infinite loss would give Vega an infinite axis extent and blank the chart."""
    out = np.asarray(values, dtype=np.float32)
    return np.where(np.isfinite(out), out, np.float32(np.nan)).astype(np.float32, copy=False)


def _xy(metrics: Mapping[str, np.ndarray], name: str) -> tuple[np.ndarray, np.ndarray]:
    """(step, column) as float32, cut to a common length (a snapshot may fall between appends to two columns).

    A missing column reads as empty, so a chart never fails on an old run. float32 holds steps exactly to 16.7 M.
    """
    step, values = metrics.get("step"), metrics.get(name)
    step = _EMPTY if step is None else np.asarray(step, dtype=np.float64).ravel()
    values = _EMPTY if values is None else np.asarray(values, dtype=np.float64).ravel()
    n = min(len(step), len(values))
    return step[:n].astype(np.float32), values[:n]


def _frame(parts: Sequence[tuple[int, int, np.ndarray, np.ndarray]], series: Sequence[str],
           with_kind: bool = True, max_points: int | None = None) -> pd.DataFrame:
    """Long format from (series index, kind index, step, value) parts; series and kind as categoricals.

    Categoricals travel as small integer codes plus one copy of each name, not one string per row. With `max_points`,
    each part is thinned (thin_rows) after any smoothing, so a smoothed line is the same at any resolution.
    """
    if max_points is not None:
        parts = [(i, k, step[rows], values[rows]) for i, k, step, values in parts
                 for rows in [thin_rows(len(step), max_points)]]
    sizes = [len(step) for _, _, step, _ in parts]
    step = np.concatenate([p[2] for p in parts]).astype(np.float32) if parts else _EMPTY
    value = _finite32(np.concatenate([p[3] for p in parts])) if parts else _EMPTY
    columns: dict[str, Any] = {
        "step": step,
        "value": value,
        "series": pd.Categorical.from_codes(np.repeat([p[0] for p in parts], sizes).astype(np.int32), categories=list(series)),
    }
    if with_kind:
        columns["kind"] = pd.Categorical.from_codes(np.repeat([p[1] for p in parts], sizes).astype(np.int32),
                                                    categories=list(KINDS))
    return pd.DataFrame(columns)


def thin_rows(n: int, max_points: int | None = MAX_POINTS) -> np.ndarray:
    """Which of `n` rows to draw: at most ~`max_points`, every k-th from the first (k a power of two), and the newest.

    The stride is counted from the first row and only ever doubles, as the history's own thinning does, so the points
    drawn stay in place from one refresh to the next (a moving selection would make a noisy curve shimmer).
    """
    stride = 1
    while max_points is not None and n > stride * max_points:
        stride *= 2
    rows = np.arange(0, n, stride)
    return np.append(rows, n - 1) if n and rows[-1] != n - 1 else rows


# -- spec ----------------------------------------------------------------------------------------------------------------
def _color(domain: Sequence[str], colors: Sequence[str], title: str | None) -> dict[str, Any]:
    """Colour by series through an explicit scale, so each role keeps its colour whatever the data hold."""
    legend: dict[str, Any] = {"orient": "top", "direction": "horizontal", "symbolType": "stroke", "symbolStrokeWidth": 2.5,
                              "symbolOpacity": 1, "labelLimit": 260, "offset": 6, "padding": 0}
    if title is None:
        legend["title"] = None
    else:
        legend["titleOrient"] = "left"
    return {"field": "series", "type": "nominal", "title": title,
            "scale": {"domain": list(domain), "range": list(colors)},
            # No legend without entries: an empty legend gives Vega's "fit" layout an infinite size and a blank chart.
            "legend": legend if domain else None}


def _encoding(y_title: str, y_scale: dict[str, Any], color: dict[str, Any]) -> dict[str, Any]:
    return {
        # No "nice" rounding on x: the axis ends at the newest step, as plotly's autorange did, instead of jumping
        # between round numbers as the run grows.
        "x": {"field": "step", "type": "quantitative", "title": "step", "scale": {"nice": False, "zero": False},
              "axis": {"format": "~s", "labelFlush": True, "titlePadding": 4}},
        "y": {"field": "value", "type": "quantitative", "title": y_title, "scale": y_scale},
        "color": color,
    }


def _spec(height: int, layers: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "height": height,
        "autosize": FIT,  # ui.style: the whole chart's height, the container's width
        "layer": layers,
    }


def _raw_and_smooth_layers(encoding: dict[str, Any]) -> list[dict[str, Any]]:
    """Raw: thin and faint, no tooltip. Smoothed: bold, with the tooltip. Both colour by series on one shared scale."""
    tooltip = [{"field": "series", "type": "nominal", "title": "series"}, TOOLTIP_STEP, _TOOLTIP_VALUE]
    return [
        {"transform": [{"filter": "datum.kind == 'raw'"}],
         "mark": {"type": "line", "strokeWidth": RAW_WIDTH, "opacity": RAW_OPACITY, "clip": True, "tooltip": None},
         "encoding": encoding},
        {"transform": [{"filter": "datum.kind == 'smooth'"}],
         "mark": {"type": "line", "strokeWidth": SMOOTH_WIDTH, "clip": True},
         "encoding": {**encoding, "tooltip": tooltip}},
    ]


# -- charts --------------------------------------------------------------------------------------------------------------
def loss_chart(metrics: Mapping[str, np.ndarray], *, height: int = 280,
               max_points: int | None = None) -> tuple[dict, pd.DataFrame]:
    """D's and G's losses over steps: raw values thin and faint, their moving averages bold in the same colour.

    The averages are the run's "*_smooth" columns; an old snapshot without them is smoothed here with ema.
    """
    parts = []
    for i, net in enumerate(("d", "g")):
        step, raw = _xy(metrics, f"{net}_loss")
        if f"{net}_loss_smooth" in metrics:
            smooth_step, smooth = _xy(metrics, f"{net}_loss_smooth")
        else:
            smooth_step, smooth = step, ema(raw)
        parts += [(i, 0, step, raw), (i, 1, smooth_step, smooth)]
    data = _frame(parts, list(LOSS_SERIES), max_points=max_points)
    encoding = _encoding("loss", {"zero": False}, _color(list(LOSS_SERIES), list(LOSS_SERIES.values()), None))
    return _spec(height, _raw_and_smooth_layers(encoding)), data


def d_output_chart(metrics: Mapping[str, np.ndarray], loss: Loss, *, height: int = 280,
                   max_points: int | None = None) -> tuple[dict, pd.DataFrame]:
    """D(x) on real and D(G(z)) on generated data over steps: probabilities for BCE, raw critic scores otherwise.

    Each step's value is one batch's mean, so it is noisy: thin raw lines, with a bold moving average (ema).
    """
    parts = []
    for i, column in enumerate(("d_real", "d_fake")):
        step, values = _xy(metrics, column)
        parts += [(i, 0, step, values), (i, 1, step, ema(values))]
    data = _frame(parts, list(D_OUTPUT_SERIES), max_points=max_points)
    color = _color(list(D_OUTPUT_SERIES), list(D_OUTPUT_SERIES.values()), None)
    if loss is not Loss.BCE:
        return _spec(height, _raw_and_smooth_layers(_encoding("critic score", {"zero": False}, color))), data
    # A probability: fixed [0, 1], and a rule at 1/2, D's output everywhere at equilibrium, to show how far each curve
    # is from "can't tell". The rule and its label have their own one-row data, so each is drawn once, not once per row.
    layers = _raw_and_smooth_layers(_encoding("probability real", {"domain": [0, 1]}, color))
    one, half = {"values": [{}]}, {"datum": 0.5, "type": "quantitative"}
    layers += [
        {"data": one, "mark": {"type": "rule", "color": "grey", "strokeDash": [2, 3], "strokeWidth": 1, "tooltip": None},
         "encoding": {"y": half}},
        {"data": one, "mark": {"type": "text", "text": "D can't tell", "color": "grey", "align": "left", "baseline": "bottom",
                               "dx": 3, "dy": -2, "tooltip": None},
         "encoding": {"y": half, "x": {"value": 0}}},
    ]
    return _spec(height, layers), data


def _unique(names: Sequence[str]) -> list[str]:
    """Run names as legend entries: a repeated name gets " (2)", " (3)"…, so each run keeps its own colour."""
    used: set[str] = set()
    out = []
    for name in map(str, names):
        label, k = name, 2
        while label in used:
            label, k = f"{name} ({k})", k + 1
        used.add(label)
        out.append(label)
    return out


def compare_chart(runs: Sequence[tuple[str, Mapping[str, np.ndarray]]], column: str = "g_loss_smooth", *,
                  height: int = 320, max_points: int | None = None) -> tuple[dict, pd.DataFrame]:
    """One line of `column` against step per run, coloured by run (legend "run")."""
    names = _unique([name for name, _ in runs])
    data = _frame([(i, 0, *_xy(metrics, column)) for i, (_, metrics) in enumerate(runs)], names, with_kind=False,
                  max_points=max_points)
    encoding = _encoding(column, {"zero": False}, _color(names, run_colors(len(names)), "run"))
    tooltip = [{"field": "series", "type": "nominal", "title": "run"}, TOOLTIP_STEP, _TOOLTIP_VALUE]
    layers = [{"mark": {"type": "line", "strokeWidth": RUN_WIDTH, "clip": True}, "encoding": {**encoding, "tooltip": tooltip}}]
    return _spec(height, layers), data
