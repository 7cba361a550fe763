"""Figures of the Activations page: the functions and their derivatives (plotly, static maths), and what the probes
measured inside a run (Vega-Lite, live): dead units, pre-activation histograms, per-layer gradient norms.

Pure functions, no streamlit. Every curve value comes from gan_core.lessons.explain; every measured value from ProbeRecords.
The Vega-Lite specs depend only on the *names* in the records (layers, variants), never on their values, so a keyed
chart (ui.cache.vega_chart) keeps one chart and swaps its data in place while a run trains (see ui/figures/curves.py).
The Mode-collapse page draws grad_norm_chart too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from gan_core.config import Activation
from gan_core.lessons import explain
from gan_core.lessons.outcomes import DEAD_KINDS, layer_order
from gan_core.lessons.outcomes import dead_mean as dead_mean
from gan_core.lessons.outcomes import grad_ratio as grad_ratio
from gan_core.lessons.units import UnitGradients
from gan_core.train.probes import HIST_EDGES, SATURATION_GRAD, LayerStats, ProbeRecord
from ui.style import (
    CURVE_COLOR,
    D_SHADES,
    DEAD_FILL,
    DERIVATIVE_COLOR,
    FIT_X,
    G_SHADES,
    LEGEND_TOP,
    MARGIN,
    SATURATED_FILL,
    TOOLTIP_STEP,
    run_colors,
    shades,
)

CURVE_KINDS = (Activation.RELU, Activation.LEAKY_RELU, Activation.SIGMOID, Activation.TANH)
SATURATING_KINDS = frozenset({Activation.SIGMOID, Activation.TANH})  # "saturated": derivative below SATURATION_GRAD
NAMES = {Activation.RELU: "ReLU", Activation.LEAKY_RELU: "leaky ReLU", Activation.SIGMOID: "sigmoid",
         Activation.TANH: "tanh", Activation.ELU: "ELU"}
Z_RANGE = (-6.0, 6.0)
GRAD_DOMAIN = (1e-10, 1e2)  # a fixed log axis for side-by-side comparisons: both variants read on the same scale
# a handful of decade ticks labelled 1e-6, 1e2 (d3's .0e would write 1e+2)
_LOG_AXIS = {"tickCount": 6, "labelExpr": "'1e' + round(log(datum.value) / LN10)", "gridOpacity": 0.6}
_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"


# -- the functions -------------------------------------------------------------------------------------------------------
def zone_label(kind: Activation, zone: tuple[float, float], slope: float = 0.1) -> str:
    """'no gradient' where the derivative is exactly 0 (ReLU's negative side), 'saturated' where it is only small.

    Not 'dead': a unit is dead only when its z falls there for every input, which is a property of a unit in a network
    (measured below on the page), not of a point on the curve."""
    mid = (max(zone[0], Z_RANGE[0]) + min(zone[1], Z_RANGE[1])) / 2
    if float(explain.derivative(kind, mid, slope)) == 0.0:
        return "no gradient: g′ = 0"
    return f"saturated: gradient < {SATURATION_GRAD:g}"


def activation_figure(kind: Activation, slope: float = 0.1, *, height: int = 260) -> go.Figure:
    """g(z) and g'(z) over Z_RANGE, with explain.flat_zones shaded: dead (gradient 0) grey, saturated (< 0.01) red."""
    z = np.linspace(*Z_RANGE, 241)  # through 0 exactly: the kink is drawn where it is
    fig = go.Figure([
        go.Scatter(x=z, y=explain.activation(kind, z, slope), name=f"{NAMES[kind]}(z)", mode="lines",
                   line=dict(color=CURVE_COLOR, width=3)),
        go.Scatter(x=z, y=explain.derivative(kind, z, slope), name="derivative", mode="lines",
                   line=dict(color=DERIVATIVE_COLOR, width=2, dash="dash", shape="hv" if kind in DEAD_KINDS else "linear")),
    ])
    for zone in explain.flat_zones(kind, *Z_RANGE, threshold=SATURATION_GRAD, slope=slope):
        label = zone_label(kind, zone, slope)
        fig.add_vrect(x0=zone[0], x1=zone[1], fillcolor=DEAD_FILL if label.startswith("no gradient") else SATURATED_FILL,
                      line_width=0, layer="below", annotation_text=label.split(":")[0],
                      annotation_position="top left" if zone[0] <= Z_RANGE[0] else "top right",
                      annotation_font=dict(size=11, color="#555"))
    fig.update_layout(height=height, margin=MARGIN, uirevision=kind.value, hovermode="x unified", legend=LEGEND_TOP,
                      # a tick every 2: in a half-width column plotly's own choice falls back to every 5, hiding where zones end
                      xaxis=dict(title="pre-activation z", range=list(Z_RANGE), dtick=2, zeroline=True),
                      yaxis=dict(zeroline=True))
    return fig


# -- records -> long tables ----------------------------------------------------------------------------------------------
def layer_names(probes: Sequence[ProbeRecord], net: str, *, kinds: frozenset[Activation] | None = None,
                grads: bool = False) -> list[str]:
    """The layers of `net` the records hold, in network order: activation layers (of `kinds`), or gradient layers."""
    names: set[str] = set()
    for p in probes:
        if grads:
            names.update(p.grad_norms.get(net, {}))
        else:
            names.update(s.layer for s in p.layers if s.net == net and (kinds is None or s.kind in kinds))
    return sorted(names, key=layer_order)


def _frame(rows: list[tuple[float, float, str]], series: Sequence[str]) -> pd.DataFrame:
    """(step, value, series) rows as a DataFrame: float32 numbers, series as a categorical in `series` order."""
    step = np.array([r[0] for r in rows], dtype=np.float32)
    value = np.array([r[1] for r in rows], dtype=np.float32)
    value = np.where(np.isfinite(value), value, np.float32(np.nan)).astype(np.float32)
    return pd.DataFrame({"step": step, "value": value,
                         "series": pd.Categorical([r[2] for r in rows], categories=list(series))})


def fraction_rows(probes: Sequence[ProbeRecord], nets: Sequence[str] = ("D", "G"),
                  measure: str = "dead") -> tuple[pd.DataFrame, list[str]]:
    """Per layer and probe step, the fraction of units dead (ReLU-like layers) or values saturated (sigmoid, tanh).

    Series are "D block 1", …; layers of the other family are left out (a sigmoid unit is never "dead").
    """
    kinds = DEAD_KINDS if measure == "dead" else SATURATING_KINDS
    attr = "dead_fraction" if measure == "dead" else "saturated_fraction"
    series = [f"{net} {layer}" for net in nets for layer in layer_names(probes, net, kinds=kinds)]
    rows = [(p.step, getattr(s, attr), f"{s.net} {s.layer}") for p in probes for s in p.layers
            if s.net in nets and s.kind in kinds]
    return _frame(rows, series), series


def grad_rows(probes: Sequence[ProbeRecord], net: str) -> tuple[pd.DataFrame, list[str]]:
    """Per layer (block 1 … output) and probe step, ‖∇‖₂ of that layer's weights and bias; 0 reads as missing (log axis)."""
    series = layer_names(probes, net, grads=True)
    rows = [(p.step, v if v > 0 else math.nan, layer) for p in probes for layer, v in p.grad_norms.get(net, {}).items()]
    return _frame(rows, series), series


# -- Vega-Lite specs -----------------------------------------------------------------------------------------------------
def _color(series: Sequence[str], colors: Sequence[str], title: str | None = None, columns: int = 6) -> dict[str, Any]:
    """Colour by series through an explicit scale; the legend on top, wrapped after `columns` entries (a half-width
    chart holds about three "block n" labels in a row)."""
    return {"field": "series", "type": "nominal", "title": title, "sort": list(series),
            "scale": {"domain": list(series), "range": list(colors)},
            "legend": {"orient": "top", "direction": "horizontal", "symbolType": "stroke", "labelLimit": 200,
                       "columns": columns}}


def _layer_colors(series: Sequence[str]) -> list[str]:
    """Blues for D's layers, oranges for G's (by the "D "/"G " prefix, else blues), light to dark in order."""
    d = [s for s in series if not s.startswith("G ")]
    g = [s for s in series if s.startswith("G ")]
    shade = dict(zip(d, shades(len(d), D_SHADES), strict=True)) | dict(zip(g, shades(len(g), G_SHADES), strict=True))
    return [shade[s] for s in series]


def _line_spec(series: Sequence[str], colors: Sequence[str], y: dict[str, Any], height: int,
               title: str | None = None, columns: int = 6) -> dict[str, Any]:
    encoding = {
        "x": {"field": "step", "type": "quantitative", "title": "step", "scale": {"nice": False, "zero": False},
              "axis": {"format": "~s"}},
        "y": {"field": "value", "type": "quantitative", **y},
        "color": _color(series, colors, columns=columns),
        "tooltip": [{"field": "series", "type": "nominal", "title": "layer"}, TOOLTIP_STEP,
                    {"field": "value", "type": "quantitative", "title": y.get("title", "value"), "format": ".3~g"}],
    }
    spec: dict[str, Any] = {
        "$schema": _SCHEMA,
        "height": height,
        "autosize": FIT_X,
        "mark": {"type": "line", "strokeWidth": 2, "clip": True, "point": False},
        "encoding": encoding,
    }
    if title:
        spec["title"] = {"text": title, "anchor": "start", "fontSize": 13}
    return spec


def dead_fraction_chart(probes: Sequence[ProbeRecord], nets: Sequence[str] = ("D", "G"), *, measure: str = "dead",
                        height: int = 260, title: str | None = None, columns: int = 6) -> tuple[dict, pd.DataFrame]:
    """One line per layer: the fraction of its units that are dead (or of its values saturated) at each probe step.

    y is fixed to [0, 1], so two runs' charts side by side read on the same scale.
    """
    data, series = fraction_rows(probes, nets, measure)
    what = "units dead" if measure == "dead" else "values saturated"
    y = {"title": f"fraction of {what}", "scale": {"domain": [0, 1]}, "axis": {"format": ".0%"}}
    return _line_spec(series, _layer_colors(series), y, height, title, columns), data


def grad_norm_chart(probes: Sequence[ProbeRecord], net: str, *, height: int = 260, title: str | None = None,
                    fixed_domain: bool = False, columns: int = 3) -> tuple[dict, pd.DataFrame]:
    """One line per layer of `net` (block 1 … output): its gradient norm at each probe step, on a log axis.

    `fixed_domain`: GRAD_DOMAIN instead of the data's range, so side-by-side variants share a scale.
    """
    data, series = grad_rows(probes, net)
    palette = G_SHADES if net == "G" else D_SHADES
    scale: dict[str, Any] = {"type": "log"}
    if fixed_domain:
        scale["domain"] = list(GRAD_DOMAIN)
    y = {"title": f"{net}: gradient norm ‖∇‖ (log)", "scale": scale, "axis": _LOG_AXIS}
    return _line_spec(series, shades(len(series), palette), y, height, title, columns), data


def histogram_rows(layers: Sequence[LayerStats]) -> tuple[pd.DataFrame, list[str]]:
    """Each layer's pre-activation histogram (HIST_EDGES bins) as fractions of its values: lo, hi, value, series."""
    names = [f"{s.net} {s.layer}" for s in sorted(layers, key=lambda s: (s.net, layer_order(s.layer)))]
    by_name = {f"{s.net} {s.layer}": s for s in layers}
    n = len(HIST_EDGES) - 1
    parts = []
    for name in names:
        counts = np.asarray(by_name[name].hist, dtype=np.float64)
        total = counts.sum()
        parts.append(pd.DataFrame({"lo": HIST_EDGES[:-1].astype(np.float32), "hi": HIST_EDGES[1:].astype(np.float32),
                                   "value": (counts / total if total > 0 else counts).astype(np.float32),
                                   "series": [name] * n}))
    data = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        {"lo": np.empty(0, np.float32), "hi": np.empty(0, np.float32), "value": np.empty(0, np.float32), "series": []})
    data["series"] = pd.Categorical(data["series"], categories=names)
    return data, names


def negative_share(stats: LayerStats) -> float:
    """The fraction of a layer's pre-activations below 0 (from its histogram: HIST_EDGES has a bin edge at 0)."""
    counts = np.asarray(stats.hist, dtype=np.float64)
    total = counts.sum()
    return float(counts[HIST_EDGES[1:] <= 0].sum() / total) if total > 0 else math.nan


def negative_side(layers: Sequence[LayerStats]) -> str:
    """What the shaded z < 0 means for these layers' activation: 0 out of a ReLU, a·z out of a leaky ReLU."""
    kinds = {layer.kind for layer in layers}
    said = [text for kind, text in ((Activation.RELU, "ReLU outputs 0"), (Activation.LEAKY_RELU, "leaky ReLU outputs a·z"))
            if kind in kinds]
    return "z < 0: " + (", ".join(said) if said else "the activation's negative side")


def histogram_chart(layers: Sequence[LayerStats], *, height: int = 240, title: str | None = None) -> tuple[dict, pd.DataFrame]:
    """The layers' pre-activation histograms as overlaid step outlines, z < 0 shaded (labelled by negative_side)."""
    data, series = histogram_rows(layers)
    colors = _layer_colors(series)
    x = {"field": "lo", "type": "quantitative", "title": "pre-activation z (values beyond ±4 in the end bins)",
         "scale": {"domain": [float(HIST_EDGES[0]), float(HIST_EDGES[-1])], "nice": False}}
    one = {"values": [{}]}
    spec: dict[str, Any] = {
        "$schema": _SCHEMA,
        "height": height,
        "autosize": FIT_X,
        "layer": [
            {"data": one, "mark": {"type": "rect", "color": "#888", "opacity": 0.15},
             "encoding": {"x": {"datum": float(HIST_EDGES[0]), "type": "quantitative"}, "x2": {"datum": 0.0}}},
            {"data": one, "mark": {"type": "text", "text": negative_side(layers), "align": "left", "baseline": "top",
                                   "dx": 4, "dy": 4, "color": "#555"},
             "encoding": {"x": {"datum": float(HIST_EDGES[0]), "type": "quantitative"}, "y": {"value": 0}}},
            {"mark": {"type": "bar", "opacity": 0.35, "binSpacing": 0},
             "encoding": {"x": x, "x2": {"field": "hi"},
                          "y": {"field": "value", "type": "quantitative", "title": "share of values", "stack": None,
                                "axis": {"format": ".0%"}},
                          "y2": {"datum": 0},  # overlaid, not stacked: each layer's bars start at 0
                          "color": _color(series, colors) | {"legend": {"orient": "top", "direction": "horizontal",
                                                                        "symbolType": "square", "title": None}},
                          "tooltip": [{"field": "series", "type": "nominal", "title": "layer"},
                                      {"field": "lo", "type": "quantitative", "title": "from z", "format": ".1f"},
                                      {"field": "value", "type": "quantitative", "title": "share", "format": ".1%"}]}},
        ],
    }
    if title:
        spec["title"] = {"text": title, "anchor": "start", "fontSize": 13}
    return spec, data


def grad_profile_chart(probes: Mapping[str, ProbeRecord], net: str, *, height: int = 260) -> tuple[dict, pd.DataFrame]:
    """Each variant's latest gradient norm per layer of `net`, input side to loss side: a flat line or a cliff."""
    labels = list(probes)
    layers = sorted({layer for p in probes.values() for layer in p.grad_norms.get(net, {})}, key=layer_order)
    rows = [(layers.index(layer), v if v > 0 else math.nan, label) for label, p in probes.items()
            for layer, v in p.grad_norms.get(net, {}).items()]
    data = _frame(rows, labels).rename(columns={"step": "position"})
    data["layer"] = pd.Categorical([layers[int(i)] for i in data["position"]], categories=layers)
    spec: dict[str, Any] = {
        "$schema": _SCHEMA,
        "height": height,
        "autosize": FIT_X,
        "mark": {"type": "line", "strokeWidth": 2.5, "point": {"size": 60}},
        "encoding": {
            "x": {"field": "layer", "type": "ordinal", "sort": layers, "title": f"{net}'s layers: input side → loss side",
                  "axis": {"labelAngle": 0}},
            "y": {"field": "value", "type": "quantitative", "title": "gradient norm (log)",
                  "scale": {"type": "log", "domain": list(GRAD_DOMAIN)}, "axis": _LOG_AXIS},
            "color": _color(labels, run_colors(len(labels)), "variant"),
            "tooltip": [{"field": "series", "type": "nominal", "title": "variant"},
                        {"field": "layer", "type": "nominal", "title": "layer"},
                        {"field": "value", "type": "quantitative", "title": "‖∇‖", "format": ".2e"}],
        },
    }
    return spec, data


def unit_gradient_rows(layers: Sequence[UnitGradients]) -> pd.DataFrame:
    """Per layer, the mean gradient reaching a unit's weights, over the units counted dead and over the others."""
    rows = [(u.layer, who, u.mean_grad(dead=who == "counted dead"), int((u.dead == (who == "counted dead")).sum()))
            for u in sorted(layers, key=lambda u: layer_order(u.layer)) for who in ("alive", "counted dead")]
    data = pd.DataFrame(rows, columns=["layer", "units", "value", "count"])
    data = data[data["count"] > 0].reset_index(drop=True)  # no bar for a group with no units
    data["label"] = [f"{v:.2g}" if v > 0 else "0" for v in data["value"]]
    return data


def unit_gradient_chart(layers: Sequence[UnitGradients], *, height: int = 220,
                        y_max: float | None = None) -> tuple[dict, pd.DataFrame]:
    """Grouped bars per layer: the mean ‖∇‖ on a unit's incoming weights, living units beside those counted dead.

    A ReLU unit counted dead reads exactly 0; a leaky one reads about its slope times a living unit's. `y_max`: a
    shared axis for side-by-side variants."""
    data = unit_gradient_rows(layers)
    order = sorted({u.layer for u in layers}, key=layer_order)
    y: dict[str, Any] = {"field": "value", "type": "quantitative", "title": "mean ‖∇‖ on a unit's weights"}
    if y_max:
        y["scale"] = {"domain": [0, y_max]}
    color = {"field": "units", "type": "nominal", "title": None, "sort": ["alive", "counted dead"],
             "scale": {"domain": ["alive", "counted dead"], "range": [CURVE_COLOR, "#888888"]},
             "legend": {"orient": "top", "direction": "horizontal"}}
    x = {"field": "layer", "type": "nominal", "sort": order, "title": None, "axis": {"labelAngle": 0}}
    offset = {"field": "units", "sort": ["alive", "counted dead"]}
    tooltip = [{"field": "layer", "type": "nominal"}, {"field": "units", "type": "nominal"},
               {"field": "count", "type": "quantitative", "title": "units"},
               {"field": "value", "type": "quantitative", "title": "mean ‖∇‖", "format": ".3~g"}]
    spec: dict[str, Any] = {
        "$schema": _SCHEMA, "height": height, "autosize": FIT_X,
        "encoding": {"x": x, "xOffset": offset},
        "layer": [
            {"mark": {"type": "bar"}, "encoding": {"y": y, "color": color, "tooltip": tooltip}},
            {"mark": {"type": "text", "dy": -6, "fontSize": 12, "color": "#333"},
             "encoding": {"y": y, "text": {"field": "label"}}},
        ],
    }
    return spec, data


# -- numbers to read aloud -----------------------------------------------------------------------------------------------
# dead_mean and grad_ratio (imported above) are the engine's: the numbers a comparison's question is answered with, read
# by the pages from here and by the lesson's export from gan_core.lessons.outcomes, so the two cannot disagree
def ratio_text(ratio: float) -> str:
    """0.000061 → '1/16,000'; 0.4 → '1/2.5'; 3 → '3×'; NaN → '—'."""
    if not math.isfinite(ratio) or ratio <= 0:
        return "—"
    if ratio >= 1:
        return f"{ratio:.2g}×"
    inverse = float(f"{1 / ratio:.2g}")  # two significant figures: a number to read aloud, not to copy
    return f"1/{inverse:,.0f}" if inverse >= 100 else f"1/{inverse:g}"
