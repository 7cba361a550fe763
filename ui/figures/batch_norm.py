"""Figures of the Batch-norm page: the toy batch worked by hand, and a run's batch-norm and drift records.

Pure functions, no streamlit. The toy batch's figure is plotly (it changes only when the reader edits a value). The run
charts refresh every second while a run trains, so they are Vega-Lite (spec, data) pairs: a keyed chart
(ui.cache.vega_chart) swaps its data in place, where st.plotly_chart would remount. Each spec depends only on the
data's shape (which layers, which variants), never on the values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from gan_core.lessons import explain
from gan_core.lessons.explain import BatchNormResult
from gan_core.train.probes import HIST_EDGES, ProbeRecord
from ui.style import BN_INFER_COLOR, BN_SOURCES, BN_STAGES, BN_TRAIN_COLOR, FIT, LEGEND_TOP, MARGIN, run_colors
from ui.text import minus

STATISTICS = ("mean", "variance")


# -- the toy batch -------------------------------------------------------------------------------------------------------
def toy_table(result: BatchNormResult, y_infer: np.ndarray) -> pd.DataFrame:
    """One row per value: x, x̂, y in training mode (batch statistics) and at inference (running statistics)."""
    return pd.DataFrame({"x": result.x, "x̂": result.x_hat, "y (training)": result.y,
                         "y (inference)": np.asarray(y_infer, dtype=np.float64)})


def toy_figure(result: BatchNormResult, running_mean: float, running_var: float, gamma: float, beta: float, *,
               eps: float = 1e-5, height: int = 340) -> go.Figure:
    """Batch norm as the straight line it is for one feature: output y against input x, in training mode (through the
    batch's mean, slope γ/σ_B) and at inference (through the running mean, slope γ/σ_run), with the batch's values on
    both. The vertical gap at each value is how much the mode changes that value's output."""
    x = result.x
    y_infer = explain.batchnorm_infer(x, running_mean, running_var, gamma, beta, eps)
    lo, hi = min(x.min(), running_mean), max(x.max(), running_mean)
    pad = 0.1 * (hi - lo) or 1.0
    ends = np.array([lo - pad, hi + pad])
    # training mode is the same affine map as inference, with the batch's statistics in place of the running ones
    train_line = explain.batchnorm_infer(ends, result.mean, result.var, gamma, beta, eps)
    infer_line = explain.batchnorm_infer(ends, running_mean, running_var, gamma, beta, eps)
    gap_x = np.repeat(x, 3)
    gap_y = np.column_stack([result.y, y_infer, np.full(len(x), np.nan)]).ravel()
    fig = go.Figure([
        go.Scatter(x=gap_x, y=gap_y, mode="lines", line=dict(color="#999", width=1, dash="dot"), hoverinfo="skip",
                   showlegend=False),
        go.Scatter(x=ends, y=train_line, mode="lines", line=dict(color=BN_TRAIN_COLOR, width=2), hoverinfo="skip",
                   name="training: the batch's μ and σ²"),
        go.Scatter(x=ends, y=infer_line, mode="lines", line=dict(color=BN_INFER_COLOR, width=2), hoverinfo="skip",
                   name="inference: the running μ and σ²"),
        go.Scatter(x=x, y=result.y, mode="markers", marker=dict(size=10, color=BN_TRAIN_COLOR), showlegend=False,
                   hovertemplate="x = %{x:.4g}<br>training y = %{y:.4g}<extra></extra>"),
        go.Scatter(x=x, y=y_infer, mode="markers", marker=dict(size=10, color=BN_INFER_COLOR), showlegend=False,
                   hovertemplate="x = %{x:.4g}<br>inference y = %{y:.4g}<extra></extra>"),
        # each line crosses y = β at its own mean; a label sits on the side of the point its line leaves free
        go.Scatter(x=[result.mean, running_mean], y=[beta, beta], mode="markers+text",
                   text=["μ<sub>B</sub>", "μ<sub>run</sub>"], textposition=["bottom right", "top left"],
                   marker=dict(size=9, symbol="x", color="#444"), showlegend=False,
                   hovertemplate="%{text} = %{x:.4g}<extra></extra>"),
    ])
    fig.add_hline(y=beta, line=dict(color="#bbb", width=1))
    fig.update_layout(height=height, margin=MARGIN, legend=LEGEND_TOP, uirevision="bn_toy", xaxis_title="input x",
                      yaxis_title="output y", hovermode="closest")
    return fig


# -- a run's batch-norm layers -------------------------------------------------------------------------------------------
def bn_layers(probes: Sequence[ProbeRecord]) -> list[str]:
    """The BatchNorm layers the probes saw, as "G block 1": G's first, then D's, each from the input side."""
    seen = {(s.net, s.layer) for record in probes for s in record.batchnorm}
    return [f"{net} {layer}" for net, layer in sorted(seen, key=lambda k: (k[0] != "G", k[0], len(k[1]), k[1]))]


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


def bn_stats_chart(probes: Sequence[ProbeRecord], layer: str, statistic: str, *,
                   height: int = 200) -> tuple[dict[str, Any], pd.DataFrame]:
    """One BN layer's batch `statistic` (mean or variance, channel-averaged) at each probe step, thin and light, against
    the running value BN keeps for inference, bold: a smoothed, lagging copy of the batch line."""
    assert statistic in STATISTICS, statistic
    frame = bn_stats_frame(probes)
    data = frame[(frame["layer"] == layer) & (frame["statistic"] == statistic)]
    data = data.drop(columns=["layer", "statistic"]).reset_index(drop=True)
    spec = {
        "height": height, "autosize": FIT, "title": {"text": f"{layer}: {statistic}", "fontSize": 13},
        "mark": {"type": "line", "clip": True},
        "encoding": {
            "x": {"field": "step", "type": "quantitative", "title": "step"},
            "y": {"field": "value", "type": "quantitative", "title": None, "scale": {"zero": statistic == "variance"}},
            "color": {"field": "source", "type": "nominal", "legend": None,  # small multiples: the page says it once
                      "scale": {"domain": list(BN_SOURCES), "range": list(BN_SOURCES.values())}},
            "strokeWidth": {"field": "source", "type": "nominal", "legend": None,
                            "scale": {"domain": list(BN_SOURCES), "range": [1.2, 2.8]}},
            "tooltip": [{"field": "source"}, {"field": "step", "format": ",d"}, {"field": "value", "format": ".4g"}],
        },
    }
    return spec, data


def learned_text(record: ProbeRecord) -> str | None:
    """The record's learned γ and β, per layer: "G block 1: γ 0.97–1.04, β −0.03–0.05" (their range over the layer's
    channels); None when the record has none (written before they were kept)."""
    parts = [f"{s.net} {s.layer}: γ {_span(s.gamma)}, β {_span(s.beta)}" for s in record.batchnorm
             if s.gamma is not None and s.beta is not None and s.gamma.size and s.beta.size]
    return "; ".join(parts) or None


def _span(values: np.ndarray) -> str:
    low, high = float(np.min(values)), float(np.max(values))
    text = f"{low:.2f}" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f} to {high:.2f}"
    return minus(text)


def hist_frame(record: ProbeRecord) -> pd.DataFrame:
    """Long format (layer, x, x_end, fraction, stage): each BN layer's input and output histograms, as fractions of their
    values, over the probes' fixed bins [x, x_end) (values beyond ±4 are counted in the end bins)."""
    rows = []
    for s in record.batchnorm:
        for stage, counts in (("before BN", s.hist_in), ("after BN", s.hist_out)):
            counts = np.asarray(counts, dtype=np.float64)
            rows.append(pd.DataFrame({"layer": f"{s.net} {s.layer}", "x": HIST_EDGES[:-1], "x_end": HIST_EDGES[1:],
                                      "fraction": counts / max(counts.sum(), 1.0), "stage": stage}))
    if not rows:
        return pd.DataFrame({"layer": [], "x": [], "x_end": [], "fraction": [], "stage": []})
    return pd.concat(rows, ignore_index=True)


def hist_chart(record: ProbeRecord, layer: str, *, height: int = 200) -> tuple[dict[str, Any], pd.DataFrame]:
    """One BN layer's pre-BN values (grey) and post-BN values (blue, after γ and β), overlaid."""
    frame = hist_frame(record)
    data = frame[frame["layer"] == layer].drop(columns="layer").reset_index(drop=True)
    spec = {
        "height": height, "autosize": FIT, "title": {"text": layer, "fontSize": 13},
        "mark": {"type": "bar", "opacity": 0.6, "binSpacing": 0},
        "encoding": {
            "x": {"field": "x", "type": "quantitative", "title": "value", "bin": {"binned": True},
                  "scale": {"domain": [float(HIST_EDGES[0]), float(HIST_EDGES[-1])]}},
            "x2": {"field": "x_end"},
            "y": {"field": "fraction", "type": "quantitative", "title": None, "stack": None},
            "color": {"field": "stage", "type": "nominal", "legend": None,
                      "scale": {"domain": list(BN_STAGES), "range": list(BN_STAGES.values())}},
            "tooltip": [{"field": "stage"}, {"field": "x", "format": ".1f", "title": "from"},
                        {"field": "x_end", "format": ".1f", "title": "to"}, {"field": "fraction", "format": ".3f"}],
        },
    }
    return spec, data


# -- the comparison: batch norm on against off ---------------------------------------------------------------------------
def _variant_color(variants: Sequence[str], legend: bool) -> dict[str, Any]:
    return {"field": "variant", "type": "nominal", "title": None, "legend": {"orient": "top"} if legend else None,
            "scale": {"domain": list(variants), "range": run_colors(len(variants))}}


def variant_loss_chart(runs: Mapping[str, Mapping[str, np.ndarray]], *,
                       height: int = 220) -> tuple[dict[str, Any], pd.DataFrame]:
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
        "height": height, "autosize": FIT,
        "mark": {"type": "line", "strokeWidth": 2, "clip": True},
        "encoding": {
            "x": {"field": "step", "type": "quantitative", "title": "step"},
            "y": {"field": "value", "type": "quantitative", "title": "loss (smoothed)"},
            "color": _variant_color(list(runs), legend=True),
            "strokeDash": {"field": "loss", "type": "nominal", "title": None, "legend": {"orient": "top"},
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


def drift_layers(runs: Mapping[str, Sequence[ProbeRecord]], net: str) -> list[str]:
    """`net`'s hidden layers recorded in any variant, in order: block 1, block 2, …, block 10."""
    names = {s.layer for probes in runs.values() for record in probes for s in record.layers if s.net == net}
    return sorted(names, key=lambda name: (len(name), name))


def drift_chart(runs: Mapping[str, Sequence[ProbeRecord]], net: str, layer: str, *,
                height: int = 220) -> tuple[dict[str, Any], pd.DataFrame]:
    """One hidden layer of `net`: the band mean ± std of the values entering its activation over training, per variant.
    With batch norm the band stays put (BN re-centres and re-scales every batch); without, it drifts as the layers
    before it learn: the internal covariate shift the next layer has to chase."""
    frame = drift_frame(runs, net)
    data = frame[frame["layer"] == layer].drop(columns="layer").reset_index(drop=True)
    color = _variant_color(list(runs), legend=False)  # small multiples: the loss chart above carries the legend
    x = {"field": "step", "type": "quantitative", "title": "step"}
    spec = {
        "height": height, "autosize": FIT, "title": {"text": f"{net} {layer}", "fontSize": 13},
        "layer": [
            {"mark": {"type": "area", "opacity": 0.18, "clip": True},
             "encoding": {"x": x, "y": {"field": "low", "type": "quantitative", "title": "mean ± std"},
                          "y2": {"field": "high"}, "color": color}},
            {"mark": {"type": "line", "strokeWidth": 2, "clip": True},
             "encoding": {"x": x, "y": {"field": "mean", "type": "quantitative"}, "color": color,
                          "tooltip": [{"field": "variant"}, {"field": "step", "format": ",d"},
                                      {"field": "mean", "format": ".3f"}, {"field": "low", "format": ".3f"},
                                      {"field": "high", "format": ".3f"}]}},
        ],
    }
    return spec, data
