"""Figures of the batch-norm lesson: the toy batch worked by hand, and a run's batch-norm and drift records.

Pure functions, no streamlit. The toy batch's figure is plotly (it changes only when the reader edits a value). The run
charts refresh every second while a run trains, so they are Vega-Lite (spec, data) pairs: a keyed st.vega_lite_chart
swaps its data in place, where st.plotly_chart would remount. Each spec depends only on the data's shape (which layers,
which variants), never on the values.

Call: `spec, data = bn_stats_chart(probes, "mean")` then `st.vega_lite_chart(data, spec, key="...")`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from gan_core.explain import BatchNormResult
from gan_core.probes import HIST_EDGES, ProbeRecord
from ui.figures import D_COLOR, G_COLOR

STATISTICS = ("mean", "variance")
SOURCES = {"batch": "#9ecae1", "running": "#08519c"}  # the batch's (jumpy) against the running average (smooth)
STAGES = {"before BN": "#bdbdbd", "after BN": "#3182bd"}
VARIANT_COLORS = ("#17becf", "#e377c2", "#bcbd22", "#8c564b")  # ui.charts' first run colours: not D/G/real/fake
TRAIN_COLOR, INFER_COLOR = G_COLOR, D_COLOR
FACET_COLUMNS = 4
_CENTRES = (HIST_EDGES[:-1] + HIST_EDGES[1:]) / 2
_MARGIN = dict(l=50, r=10, t=30, b=40)
_LEGEND = dict(orientation="h", yanchor="bottom", y=1.0, xanchor="left", x=0.0)


# -- the toy batch -------------------------------------------------------------------------------------------------------
def toy_table(result: BatchNormResult, y_infer: np.ndarray) -> pd.DataFrame:
    """One row per value: x, x − μ, x̂, y in training mode (batch statistics) and at inference (running statistics)."""
    return pd.DataFrame({
        "x": result.x, "x − μ": result.x - result.mean, "x̂": result.x_hat, "y (training)": result.y,
        "y (inference)": np.asarray(y_infer, dtype=np.float64),
    })


def toy_figure(result: BatchNormResult, y_infer: np.ndarray, *, height: int = 360) -> go.Figure:
    """Each value on four number lines, top to bottom: x, x̂, y in training, y at inference; a line joins one value's
    positions. The band on the x line is μ ± σ: the part of the input that x̂ maps onto [−1, 1]."""
    rows = ["x (input)", "x̂ (normalised)", "y = γx̂ + β (training)", "y (inference)"]
    values = [result.x, result.x_hat, result.y, np.asarray(y_infer, dtype=np.float64)]
    sd = float(np.sqrt(result.var))
    fig = go.Figure()
    fig.add_shape(type="rect", x0=result.mean - sd, x1=result.mean + sd, y0=-0.25, y1=0.25, yref="y",
                  fillcolor="rgba(120,120,120,0.15)", line_width=0)
    fig.add_shape(type="line", x0=result.mean, x1=result.mean, y0=-0.35, y1=0.35, line=dict(color="#444", dash="dot"))
    for i in range(len(result.x)):
        fig.add_trace(go.Scatter(x=[v[i] for v in values], y=list(range(len(rows))), mode="lines",
                                 line=dict(color="rgba(120,120,120,0.35)", width=1), hoverinfo="skip", showlegend=False))
    colours = ["#444", "#444", TRAIN_COLOR, INFER_COLOR]
    for row, (name, v, colour) in enumerate(zip(rows, values, colours, strict=True)):
        fig.add_trace(go.Scatter(x=v, y=np.full(len(v), row), mode="markers+text", name=name,
                                 text=[f"{a:.3g}" for a in v], textposition="top center", showlegend=False,
                                 marker=dict(size=11, color=colour), hovertemplate=f"{name}: %{{x:.4g}}<extra></extra>"))
    fig.update_yaxes(tickvals=list(range(len(rows))), ticktext=rows, autorange="reversed", range=[-0.7, len(rows) - 0.5],
                     showgrid=False, zeroline=False)
    fig.update_xaxes(zeroline=True, zerolinecolor="#999", title="value")
    fig.update_layout(height=height, margin=dict(_MARGIN, l=170), legend=_LEGEND, uirevision="bn_toy",
                      annotations=[dict(x=result.mean, y=-0.55, text=f"μ = {result.mean:.3g}, band μ ± σ",
                                        showarrow=False, font=dict(size=11, color="#444"))])
    return fig


# -- a run's batch-norm layers -------------------------------------------------------------------------------------------
def bn_layers(probes: Sequence[ProbeRecord]) -> list[str]:
    """The BatchNorm layers the probes saw, as "G block 1", in the order they were recorded."""
    seen: dict[str, None] = {}
    for record in probes:
        for s in record.batchnorm:
            seen.setdefault(f"{s.net} {s.layer}", None)
    return list(seen)


def bn_stats_frame(probes: Sequence[ProbeRecord]) -> pd.DataFrame:
    """Long format (step, layer, statistic, source, value): each BN layer's batch and running mean and variance at each
    probe step, averaged over the layer's channels."""
    rows: list[tuple[int, str, str, str, float]] = []
    for record in probes:
        for s in record.batchnorm:
            layer = f"{s.net} {s.layer}"
            for statistic, batch, running in (("mean", s.batch_mean, s.running_mean),
                                              ("variance", s.batch_var, s.running_var)):
                rows.append((record.step, layer, statistic, "batch", float(np.mean(batch))))
                rows.append((record.step, layer, statistic, "running", float(np.mean(running))))
    return pd.DataFrame(rows, columns=["step", "layer", "statistic", "source", "value"])


def _faceted(layers: Sequence[str], panel: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """`panel` repeated once per layer, FACET_COLUMNS to a row, in the given layer order."""
    return {"facet": {"field": "layer", "type": "nominal", "title": None, "sort": list(layers),
                      "header": {"labelFontSize": 13, "labelFontWeight": "bold"}},
            "columns": min(FACET_COLUMNS, max(1, len(layers))), "spec": panel, **extra}


def bn_stats_chart(probes: Sequence[ProbeRecord], statistic: str, *, width: int = 230,
                   height: int = 150) -> tuple[dict[str, Any], pd.DataFrame]:
    """One panel per BN layer: the batch's `statistic` (mean or variance, channel-averaged) at each probe step, thin and
    light, against the running value BN keeps for inference, bold. The running line is a smoothed, lagging batch line."""
    assert statistic in STATISTICS, statistic
    frame = bn_stats_frame(probes)
    data = frame[frame["statistic"] == statistic].drop(columns="statistic").reset_index(drop=True)
    spec = _faceted(bn_layers(probes), {
        "width": width, "height": height,
        "mark": {"type": "line", "clip": True},
        "encoding": {
            "x": {"field": "step", "type": "quantitative", "title": "step"},
            "y": {"field": "value", "type": "quantitative", "title": f"{statistic} (over channels)",
                  "scale": {"zero": statistic == "variance"}},
            "color": {"field": "source", "type": "nominal", "title": None,
                      "scale": {"domain": list(SOURCES), "range": list(SOURCES.values())}},
            "strokeWidth": {"field": "source", "type": "nominal", "legend": None,
                            "scale": {"domain": list(SOURCES), "range": [1.2, 2.8]}},
            "tooltip": [{"field": "layer"}, {"field": "source"}, {"field": "step", "format": ",d"},
                        {"field": "value", "format": ".4g"}],
        },
    }, resolve={"scale": {"y": "independent"}})
    return spec, data


def hist_frame(record: ProbeRecord) -> pd.DataFrame:
    """Long format (layer, x, fraction, stage): each BN layer's input and output histograms as fractions of their values,
    over the probes' fixed bins (values beyond ±4 are counted in the end bins)."""
    rows = []
    for s in record.batchnorm:
        for stage, counts in (("before BN", s.hist_in), ("after BN", s.hist_out)):
            counts = np.asarray(counts, dtype=np.float64)
            fraction = counts / max(counts.sum(), 1.0)
            rows.append(pd.DataFrame({"layer": f"{s.net} {s.layer}", "x": _CENTRES, "fraction": fraction,
                                      "stage": stage}))
    if not rows:
        return pd.DataFrame({"layer": [], "x": [], "fraction": [], "stage": []})
    return pd.concat(rows, ignore_index=True)


def hist_chart(record: ProbeRecord, *, width: int = 230, height: int = 150) -> tuple[dict[str, Any], pd.DataFrame]:
    """One panel per BN layer: its pre-BN values (grey) and post-BN values (blue, after γ and β), overlaid."""
    data = hist_frame(record)
    step = float(HIST_EDGES[1] - HIST_EDGES[0])
    spec = _faceted(list(dict.fromkeys(data["layer"])), {
        "width": width, "height": height,
        "mark": {"type": "bar", "opacity": 0.6, "width": {"band": 1}, "binSpacing": 0},
        "encoding": {
            "x": {"field": "x", "type": "quantitative", "title": "value", "bin": {"binned": True, "step": step},
                  "scale": {"domain": [float(HIST_EDGES[0]), float(HIST_EDGES[-1])]}},
            "x2": {"field": "x_end"},
            "y": {"field": "fraction", "type": "quantitative", "title": "fraction", "stack": None},
            "color": {"field": "stage", "type": "nominal", "title": None,
                      "scale": {"domain": list(STAGES), "range": list(STAGES.values())}},
            "tooltip": [{"field": "layer"}, {"field": "stage"}, {"field": "x", "format": ".2f", "title": "bin start"},
                        {"field": "fraction", "format": ".3f"}],
        },
    }, resolve={"scale": {"y": "independent"}})
    data = data.assign(x=data["x"] - step / 2, x_end=data["x"] + step / 2)
    return spec, data


# -- the comparison: batch norm on against off ---------------------------------------------------------------------------
def _variant_color(variants: Sequence[str]) -> dict[str, Any]:
    return {"field": "variant", "type": "nominal", "title": None,
            "scale": {"domain": list(variants), "range": list(VARIANT_COLORS[: len(variants)])}}


def variant_loss_chart(runs: Mapping[str, Mapping[str, np.ndarray]], *,
                       height: int = 260) -> tuple[dict[str, Any], pd.DataFrame]:
    """Each variant's smoothed G loss (solid) and D loss (dashed) over steps, coloured by variant."""
    parts = []
    for variant, metrics in runs.items():
        step = np.asarray(metrics.get("step", []), dtype=np.float32)
        for name, column in (("G loss", "g_loss_smooth"), ("D loss", "d_loss_smooth")):
            values = np.asarray(metrics.get(column, []), dtype=np.float32)
            n = min(len(step), len(values))
            values = np.where(np.isfinite(values[:n]), values[:n], np.nan)
            parts.append(pd.DataFrame({"step": step[:n], "value": values, "variant": variant, "loss": name}))
    data = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["step", "value", "variant", "loss"])
    spec = {
        "height": height,
        "mark": {"type": "line", "strokeWidth": 2, "clip": True},
        "encoding": {
            "x": {"field": "step", "type": "quantitative", "title": "step"},
            "y": {"field": "value", "type": "quantitative", "title": "loss (smoothed)"},
            "color": _variant_color(list(runs)),
            "strokeDash": {"field": "loss", "type": "nominal", "title": None,
                           "scale": {"domain": ["G loss", "D loss"], "range": [[1, 0], [5, 3]]}},
            "tooltip": [{"field": "variant"}, {"field": "loss"}, {"field": "step", "format": ",d"},
                        {"field": "value", "format": ".4g"}],
        },
    }
    return spec, data


def drift_frame(runs: Mapping[str, Sequence[ProbeRecord]], net: str) -> pd.DataFrame:
    """Long format (step, variant, layer, mean, low, high): the mean of each of `net`'s hidden layers' inputs (the
    pre-activations, i.e. after BN where there is one) and the band mean ± std, at each probe step of each variant."""
    rows = [(record.step, variant, s.layer, s.mean, s.mean - s.std, s.mean + s.std)
            for variant, probes in runs.items() for record in probes for s in record.layers if s.net == net]
    return pd.DataFrame(rows, columns=["step", "variant", "layer", "mean", "low", "high"])


def drift_chart(runs: Mapping[str, Sequence[ProbeRecord]], net: str, *, width: int = 230,
                height: int = 170) -> tuple[dict[str, Any], pd.DataFrame]:
    """One panel per hidden layer of `net`: the band mean ± std of the values entering its activation, over training,
    per variant. With batch norm the band stays put (BN re-centres and re-scales every batch); without, it drifts as the
    layers before it learn: the covariate shift the next layer has to chase."""
    data = drift_frame(runs, net)
    layers = sorted(set(data["layer"]), key=lambda name: (len(name), name))  # block 1, block 2, …, block 10
    color = _variant_color(list(runs))
    x = {"field": "step", "type": "quantitative", "title": "step"}
    spec = _faceted(layers, {
        "width": width, "height": height,
        "layer": [
            {"mark": {"type": "area", "opacity": 0.18, "clip": True},
             "encoding": {"x": x, "y": {"field": "low", "type": "quantitative", "title": "mean ± std"},
                          "y2": {"field": "high"}, "color": color}},
            {"mark": {"type": "line", "strokeWidth": 2, "clip": True},
             "encoding": {"x": x, "y": {"field": "mean", "type": "quantitative"}, "color": color,
                          "tooltip": [{"field": "variant"}, {"field": "layer"}, {"field": "step", "format": ",d"},
                                      {"field": "mean", "format": ".3f"}, {"field": "low", "format": ".3f"},
                                      {"field": "high", "format": ".3f"}]}},
        ],
    })
    return spec, data
