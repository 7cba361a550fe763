"""Figures of the Mode-collapse page: class histograms, their evolution, coverage over time, the 2D modes, and the
generator gradient a winning discriminator leaves. Pure functions (stats in, chart specs or plotly figures out).

Live charts are Vega-Lite (spec, data) pairs whose spec depends only on names and sizes, never on values, so a keyed
chart (ui.cache.vega_chart) swaps its data in place (see ui/figures/curves.py). Every number comes from
gan_core.evaluation or gan_core.lessons.explain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from gan_core.lessons import explain
from ui.style import D_COLOR, FAKE_COLOR, FIT, G_COLOR, LEGEND_TOP, MARGIN, MISSED_COLOR, REAL_COLOR, run_colors, vega_legend_top

COVERED, MISSED = "covered", "not covered"


# -- images: the classifier's histogram ---------------------------------------------------------------------------------
def histogram_frame(stats: Mapping[str, Any]) -> pd.DataFrame:
    """One row per class: the fraction of generated samples the classifier puts in it, the data's fraction, and
    whether it counts as covered (metrics.class_stats' covered_mask)."""
    counts = np.asarray(stats["class_histogram"], dtype=np.float64)
    n = max(counts.sum(), 1.0)
    data = np.asarray(stats["data_distribution"], dtype=np.float64)
    covered = np.asarray(stats["covered_mask"], dtype=bool)
    return pd.DataFrame({
        "class": [str(c) for c in range(len(counts))],
        "generated": (counts / n).astype(np.float32),
        "data": data.astype(np.float32),
        "status": pd.Categorical([COVERED if c else MISSED for c in covered], categories=[COVERED, MISSED]),
    })


def class_histogram_chart(stats: Mapping[str, Any], *, height: int = 280) -> tuple[dict, pd.DataFrame]:
    """Bars: the share of G's samples per class (purple: covered, red: not); black ticks: the data's share."""
    data = histogram_frame(stats)
    x = {"field": "class", "type": "nominal", "title": "class the classifier sees", "sort": None, "axis": {"labelAngle": 0}}
    y_scale = {"domainMin": 0}  # follows the tallest bar: a spread histogram (10 % each) must not look flat
    spec = {
        "height": height, "autosize": FIT,
        "layer": [
            {"mark": {"type": "bar", "tooltip": True},
             "encoding": {"x": x, "y": {"field": "generated", "type": "quantitative", "title": "share of samples",
                                        "scale": y_scale, "axis": {"format": "%"}},
                          "color": {"field": "status", "type": "nominal", "title": None,
                                    "scale": {"domain": [COVERED, MISSED], "range": [FAKE_COLOR, MISSED_COLOR]},
                                    "legend": vega_legend_top()}}},
            {"mark": {"type": "tick", "color": "black", "thickness": 3, "size": 30},
             "encoding": {"x": x, "y": {"field": "data", "type": "quantitative", "scale": y_scale},
                          "tooltip": [{"field": "class"}, {"field": "data", "title": "data's share", "format": ".1%"}]}},
        ],
    }
    return spec, data


def class_heatmap_chart(rows: Sequence[Mapping[str, Any]], *, height: int = 260) -> tuple[dict, pd.DataFrame]:
    """Snapshot step (x) × class (y), coloured by the share of samples in that class: collapse is one bright row."""
    records = []
    for row in rows:
        counts = np.asarray(row["class_histogram"], dtype=np.float64)
        share = counts / max(counts.sum(), 1.0)
        records += [(int(row["step"]), str(c), float(s)) for c, s in enumerate(share)]
    data = pd.DataFrame(records, columns=["step", "class", "share"])
    data["share"] = data["share"].astype(np.float32)
    spec = {
        "height": height, "autosize": FIT,
        "mark": {"type": "rect", "tooltip": True},
        "encoding": {
            "x": {"field": "step", "type": "ordinal", "title": "step",
                  "axis": {"labelOverlap": "greedy", "labelAngle": 0, "format": "~s"}},
            "y": {"field": "class", "type": "ordinal", "title": "class", "sort": "descending", "axis": {"labelOverlap": False}},
            "color": {"field": "share", "type": "quantitative", "title": "share",
                      "scale": {"scheme": "purples", "domain": [0, 1]}, "legend": {"format": "%"}},
        },
    }
    return spec, data


# -- coverage over time, one line per run -------------------------------------------------------------------------------
def series_chart(runs: Mapping[str, Mapping[str, np.ndarray]], column: str, *, title: str, domain: Sequence[float] | None = None,
                 total: float | None = None, height: int = 240) -> tuple[dict, pd.DataFrame]:
    """One line of `column` against step per run (tables from gan_core.evaluation.coverage.coverage_table); a dashed rule at
    `total` (all classes or modes) when given."""
    names = list(runs)
    parts = [(i, np.asarray(t["step"]), np.asarray(t.get(column, np.zeros(len(t["step"]))))) for i, t in enumerate(runs.values())]
    sizes = [len(p[1]) for p in parts]
    data = pd.DataFrame({
        "step": np.concatenate([p[1] for p in parts]).astype(np.float32) if parts else np.zeros(0, np.float32),
        "value": np.concatenate([p[2] for p in parts]).astype(np.float32) if parts else np.zeros(0, np.float32),
        "run": pd.Categorical.from_codes(np.repeat([p[0] for p in parts], sizes).astype(np.int32), categories=names),
    })
    y: dict[str, Any] = {"field": "value", "type": "quantitative", "title": title}
    if domain is not None:
        y["scale"] = {"domain": list(domain)}
    color = {"field": "run", "type": "nominal", "title": None,
             "scale": {"domain": names, "range": run_colors(len(names))},
             "legend": vega_legend_top() if len(names) > 1 else None}
    layers: list[dict[str, Any]] = [{
        "mark": {"type": "line", "strokeWidth": 2.5, "point": True, "clip": True},
        "encoding": {"x": {"field": "step", "type": "quantitative", "title": "step", "scale": {"nice": False, "zero": False},
                           "axis": {"format": "~s"}},
                     "y": y, "color": color,
                     "tooltip": [{"field": "run"}, {"field": "step", "format": ",d"}, {"field": "value", "format": ".3g"}]},
    }]
    if total is not None:
        layers.append({"data": {"values": [{}]}, "mark": {"type": "rule", "color": "grey", "strokeDash": [4, 3]},
                       "encoding": {"y": {"datum": float(total), "type": "quantitative"}}})
    return {"height": height, "autosize": FIT, "layer": layers}, data


# -- 2D: the modes -------------------------------------------------------------------------------------------------------
def mode_figure(samples: np.ndarray, real: np.ndarray | None, modes: np.ndarray, stats: Mapping[str, Any], *,
                height: int = 420) -> go.Figure:
    """Real points, G's samples, and each mode ringed green when covered, red when missed; hover gives its count."""
    fake = np.asarray(samples, dtype=np.float32).reshape(-1, 2)
    modes = np.asarray(modes, dtype=np.float32).reshape(-1, 2)
    covered = np.asarray(stats["covered_mask"], dtype=bool)
    counts = np.asarray(stats["mode_counts"])
    traces: list[go.BaseTraceType] = []
    if real is not None and len(real):
        real = np.asarray(real, dtype=np.float32).reshape(-1, 2)
        traces.append(go.Scatter(x=real[:, 0], y=real[:, 1], name="real data", mode="markers", hoverinfo="skip",
                                 marker=dict(color=REAL_COLOR, size=3, opacity=0.4)))
    traces.append(go.Scatter(x=fake[:, 0], y=fake[:, 1], name="generated", mode="markers", hoverinfo="skip",
                             marker=dict(color=FAKE_COLOR, size=4, opacity=0.7)))
    for mask, name, color in ((covered, COVERED, REAL_COLOR), (~covered, "missed", MISSED_COLOR)):
        if mask.any():
            traces.append(go.Scatter(
                x=modes[mask, 0], y=modes[mask, 1], name=f"mode {name}", mode="markers", customdata=counts[mask],
                hovertemplate="%{customdata} high-quality samples<extra></extra>",
                marker=dict(symbol="circle-open", color=color, size=22, line=dict(width=3))))
    span = float(np.abs(modes).max()) * 1.25 + 0.2
    fig = go.Figure(traces)
    fig.update_layout(height=height, margin=MARGIN, legend=LEGEND_TOP, uirevision="modes",
                      xaxis=dict(range=[-span, span], constrain="domain", showgrid=False, zeroline=False),
                      yaxis=dict(range=[-span, span], scaleanchor="x", scaleratio=1, constrain="domain", showgrid=False,
                                 zeroline=False))
    return fig


# -- the vanishing gradient ---------------------------------------------------------------------------------------------
GRAD_SERIES = {"minimax: |∂J/∂l| = D(G(z))": D_COLOR, "non-saturating: |∂J/∂l| = 1 − D(G(z))": G_COLOR}


def logit_gradient_chart(step: np.ndarray, d_fake: np.ndarray, *, height: int = 260) -> tuple[dict, pd.DataFrame]:
    """The size of G's loss gradient at D's logit on a fake, over training, under each BCE objective, from the run's
    D(G(z)) (explain.g_grad_logit_minimax / _non_saturating). Smoothed by 20-step means: a batch's mean is noisy."""
    step = np.asarray(step, dtype=np.float64).ravel()
    d = np.clip(np.nan_to_num(np.asarray(d_fake, dtype=np.float64).ravel(), nan=0.5), 0.0, 1.0)
    n = min(len(step), len(d))
    step, d = step[:n], d[:n]
    if n >= 20:
        kernel = np.ones(20) / 20
        d = np.convolve(d, kernel, mode="valid")
        step = step[19:]
    minimax = np.abs(explain.g_grad_logit_minimax(d)) if len(d) else np.zeros(0)
    non_sat = np.abs(explain.g_grad_logit_non_saturating(d)) if len(d) else np.zeros(0)
    names = list(GRAD_SERIES)
    data = pd.DataFrame({
        "step": np.concatenate([step, step]).astype(np.float32),
        "value": np.concatenate([minimax, non_sat]).astype(np.float32),
        "series": pd.Categorical.from_codes(np.repeat([0, 1], len(step)).astype(np.int32), categories=names),
    })
    spec = {
        "height": height, "autosize": FIT,
        "mark": {"type": "line", "strokeWidth": 2.5, "clip": True},
        "encoding": {
            "x": {"field": "step", "type": "quantitative", "title": "step", "scale": {"nice": False, "zero": False},
                  "axis": {"format": "~s"}},
            "y": {"field": "value", "type": "quantitative", "title": "gradient size w.r.t. D's logit, |∂J_G/∂l|",
                  "scale": {"domain": [0, 1]}},
            "color": {"field": "series", "type": "nominal", "title": None,
                      "scale": {"domain": names, "range": list(GRAD_SERIES.values())},
                      "legend": vega_legend_top(direction="vertical", labelLimit=320)},
            "tooltip": [{"field": "series"}, {"field": "step", "format": ",d"}, {"field": "value", "format": ".3g"}],
        },
    }
    return spec, data
