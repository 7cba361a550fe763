"""GAN Lab's layered view of 2D data as a plotly figure: D's output over the plane, G's manifold, real and generated
points, and G's push on each generated point. Pure functions, no streamlit; the Training and Home pages draw it for 2D
runs.

Layers, bottom to top: D's map (pale, so every mark keeps its contrast on it), G's manifold (thin), G's push
(near-black arrows on a white outline), real data, G's samples (rimmed in white), the modes' circles. The points sit
over the arrows so neither the data nor the samples are ever hidden; an arrow starts at its sample and reaches out past
it. Colours: ui/style.py's PLANE_*.

Pages rebuild it up to once a second for every viewer (through ui.cache, once per snapshot), so it is a handful of
traces fed whole numpy arrays (plotly serialises those as compact binary) and a small layout; nothing loops over points
in Python.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas  # noqa: F401  plotly imports pandas lazily, reading sys.modules without a lock: importing it here, under
import plotly.graph_objects as go  # the import lock, keeps two threads from seeing a half-imported pandas

from gan_core.train.records import SampleRecord
from ui.style import (
    LEGEND_TOP,
    MARGIN,
    PLANE_ARROW,
    PLANE_FAKE,
    PLANE_FIELD_SCALE,
    PLANE_FONT_SIZE,
    PLANE_MANIFOLD,
    PLANE_MODES,
    PLANE_OUTLINE,
    PLANE_REAL,
)

ARROW_FRACTION = 0.08  # the longest of G's push arrows spans this fraction of the plot's width
# Arrows drawn at most: one for every fourth of the 512 samples the 2D presets draw. All 512 covered the plane in black
# and hid the data; a quarter of them, taken evenly over the fixed noise, shows the same flow.
MAX_ARROWS = 128


def _arrow_segments(start: np.ndarray, push: np.ndarray, length: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, y and marker sizes for one scatter trace of segments start → start + scaled push, NaN between segments.

    The push is scaled so the longest arrow has `length`: raw gradients range over orders of magnitude during
    training, and only their directions and relative sizes carry the lesson.
    """
    n = min(len(start), len(push))
    keep = np.unique(np.linspace(0, n - 1, min(n, MAX_ARROWS)).round().astype(int)) if n else np.zeros(0, int)
    start, push = start[keep], push[keep]
    ok = np.isfinite(start).all(axis=1) & np.isfinite(push).all(axis=1)
    start, push = start[ok], push[ok]
    longest = float(np.linalg.norm(push, axis=1).max()) if len(push) else 0.0
    scale = length / longest if longest > 0 else 0.0
    end = start + scale * push
    gap = np.full(len(start), np.nan)  # plotly breaks a line at NaN, as at None, and NaN keeps the arrays numeric
    xs = np.column_stack([start[:, 0], end[:, 0], gap]).ravel().astype(np.float32)
    ys = np.column_stack([start[:, 1], end[:, 1], gap]).ravel().astype(np.float32)
    # An arrowhead marker only at each segment's end; angleref="previous" points it along the segment.
    sizes = np.tile(np.array([0.0, 9.0, 0.0]), len(start))
    return xs, ys, sizes


def _mesh_lines(grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x and y of one line trace through a (rows, cols, 2) grid of points: each row, then each column, NaN between."""
    grid = np.asarray(grid, dtype=np.float32)
    lines = []
    for g in (grid, grid.transpose(1, 0, 2)):
        gap = np.full((g.shape[0], 1, 2), np.nan, np.float32)
        lines.append(np.concatenate([g, gap], axis=1).reshape(-1, 2))
    xy = np.concatenate(lines)
    return xy[:, 0], xy[:, 1]


def _plane_range(record: SampleRecord, layers: Sequence[np.ndarray | None]) -> tuple[float, float, float, float]:
    """The plotted square: the record's extent, else the points' bounding box with a margin."""
    if record.extent is not None:
        x0, x1, y0, y1 = record.extent
        return float(x0), float(x1), float(y0), float(y1)
    points = [p for p in layers if p is not None and len(p)]
    stacked = np.concatenate(points) if points else np.zeros((1, 2))
    stacked = stacked[np.isfinite(stacked).all(axis=1)]
    if not len(stacked):
        stacked = np.zeros((1, 2))
    lo, hi = stacked.min(axis=0), stacked.max(axis=0)
    pad = 0.1 * float((hi - lo).max()) + 0.5
    return float(lo[0] - pad), float(hi[0] + pad), float(lo[1] - pad), float(hi[1] + pad)


def plane_figure(record: SampleRecord, real: np.ndarray | None, *, show_real: bool = True, show_fake: bool = True,
                 show_field: bool = True, show_arrows: bool = True, show_manifold: bool = True,
                 modes: np.ndarray | None = None, probability: bool = True, height: int = 480,
                 fake_name: str = "generated", revision: str = "plane") -> go.Figure:
    """GAN Lab's layered view of 2D data: D's output over the plane, G's manifold, real and generated points, G's push.

    Each layer is drawn only when its flag is on and the record has its data (field, arrows and manifold may be None:
    folders written before the manifold was recorded have none). `fake_name` labels G's points in the legend (the
    D-filtered plane calls them what D kept); `revision` is plotly's uirevision, one per plane on a page so that
    zooming one leaves the others alone (a zoom lasts until the figure changes: a browser draws each new figure as a
    new chart, ui/plotly_chart.py).
    """
    # float32 is ample for plotting and halves the payload sent to every viewer.
    fake = np.asarray(record.samples, dtype=np.float32).reshape(-1, 2)
    real = None if real is None else np.asarray(real, dtype=np.float32).reshape(-1, 2)
    modes = None if modes is None else np.asarray(modes, dtype=np.float32).reshape(-1, 2)
    x0, x1, y0, y1 = _plane_range(record, [real, fake, modes])
    traces: list[go.BaseTraceType] = []

    if show_field and record.field is not None:
        field = np.asarray(record.field, dtype=np.float32)
        rows, cols = field.shape
        common = dict(
            x=np.linspace(x0, x1, cols), y=np.linspace(y0, y1, rows), z=field, name="D's output",
            colorscale=[list(stop) for stop in PLANE_FIELD_SCALE], zsmooth="best",
            showlegend=False,  # its colour bar is its key, and the legend keeps to one line above a wide plot
            hovertemplate="(%{x:.2f}, %{y:.2f}) → %{z:.3f}<extra></extra>",
        )
        if probability:
            # Fixed [0, 1] so white is always 0.5, D's "can't tell", and colours compare across steps.
            traces.append(go.Heatmap(**common, zmin=0.0, zmax=1.0, colorbar=dict(title="D(x): real?", thickness=14)))
        else:
            # A critic's scores have no natural centre (WGAN's are shift-invariant): let the scale follow the data.
            traces.append(go.Heatmap(**common, colorbar=dict(title="critic score", thickness=14)))
    if show_manifold and record.manifold is not None:
        mx, my = _mesh_lines(record.manifold)
        traces.append(go.Scatter(x=mx, y=my, name="G's manifold", mode="lines", hoverinfo="skip",
                                 line=dict(color=PLANE_MANIFOLD, width=1), opacity=0.7))
    if show_arrows and record.arrows is not None and len(fake):
        push = np.asarray(record.arrows, dtype=np.float32).reshape(-1, 2)
        xs, ys, sizes = _arrow_segments(fake, push, ARROW_FRACTION * (x1 - x0))
        # Under the points (drawn over them, 128 arrows at step 0 buried G's whole clump of samples), on a white line
        # that keeps them readable over the manifold and any part of D's map.
        traces.append(go.Scatter(x=xs, y=ys, name="G's push (outline)", mode="lines", hoverinfo="skip",
                                 legendgroup="push", showlegend=False, line=dict(color=PLANE_OUTLINE, width=3.5),
                                 opacity=0.8))
        traces.append(go.Scatter(x=xs, y=ys, name="G's push", mode="lines+markers", hoverinfo="skip",
                                 legendgroup="push", line=dict(color=PLANE_ARROW, width=1.5),
                                 marker=dict(symbol="arrow", angleref="previous", size=sizes, color=PLANE_ARROW)))
    if show_real and real is not None and len(real):
        # a size larger than a sample's: a green rim still shows around a sample that sits on a real point
        traces.append(go.Scatter(x=real[:, 0], y=real[:, 1], name="real data", mode="markers", hoverinfo="skip",
                                 marker=dict(color=PLANE_REAL, size=8, opacity=0.7)))
    if show_fake and len(fake):
        traces.append(go.Scatter(x=fake[:, 0], y=fake[:, 1], name=fake_name, mode="markers", hoverinfo="skip",
                                 marker=dict(color=PLANE_FAKE, size=6, opacity=0.9,
                                             line=dict(color=PLANE_OUTLINE, width=0.8))))
    if modes is not None and len(modes):
        traces.append(go.Scatter(x=modes[:, 0], y=modes[:, 1], name="modes", mode="markers", hoverinfo="skip",
                                 showlegend=False,  # the key beside the plot names them; the legend stays one line
                                 marker=dict(symbol="circle-open", color=PLANE_MODES, size=16, line=dict(width=1.5))))

    fig = go.Figure(traces)
    fig.update_layout(
        # the legend a size smaller than the axes so its entries fit one line above the plot, not two
        height=height, margin=MARGIN, legend=dict(LEGEND_TOP, font=dict(size=PLANE_FONT_SIZE - 1)), uirevision=revision,
        font=dict(size=PLANE_FONT_SIZE),
        plot_bgcolor="white",
        xaxis=dict(range=[x0, x1], constrain="domain", showgrid=False, zeroline=False),
        # Equal aspect: a circle of data must look like a circle, or the ring's geometry misleads.
        yaxis=dict(range=[y0, y1], scaleanchor="x", scaleratio=1, constrain="domain", showgrid=False, zeroline=False),
    )
    return fig
