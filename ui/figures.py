"""Pure functions from engine records and arrays to plotly Figures and images; no streamlit, so tests need no browser.

Pages rebuild these up to once a second for every viewer, so each figure is a handful of traces fed whole numpy arrays
(plotly serialises those as compact binary) and a small layout; nothing loops over points in Python.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
import pandas  # noqa: F401  plotly imports pandas lazily, reading sys.modules without a lock: importing it here, under
import plotly.graph_objects as go  # the import lock, keeps two threads from seeing a half-imported pandas
import torch
from PIL import Image

from gan_core.train.records import SampleRecord

# One colour per role on every page, so "purple = generated" is learnt once. Real/fake follow GAN Lab (green/purple)
# and are the two ends of the decision heatmap's PRGn scale, so a point's colour matches the side of D it belongs on.
D_COLOR = "#1f77b4"
G_COLOR = "#ff7f0e"
REAL_COLOR = "#1b7837"
FAKE_COLOR = "#762a83"

ARROW_FRACTION = 0.08  # the longest of G's push arrows spans this fraction of the plot's width
_MARGIN = dict(l=50, r=10, t=30, b=40)
_LEGEND = dict(orientation="h", yanchor="bottom", y=1.0, xanchor="left", x=0.0)


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


def sample_grid(samples: np.ndarray, nrow: int | None = None, min_size: int = 256) -> np.ndarray:
    """Images (N, C, H, W) in [0, 1] → one (H', W', 3) uint8 RGB grid, upscaled by whole pixels to ≥ min_size wide.

    Nearest-neighbour upscaling keeps 8×8 digits crisp; leaving it to the browser would blur them. (N, H, W) is read
    as grey.
    """
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or len(x) == 0:
        raise ValueError(f"expected a non-empty (N, C, H, W) array, got shape {x.shape}")
    # Imported here, as gan_core.data does: torchvision costs ~1.5 s to import and only this function needs it.
    from torchvision.utils import make_grid

    nrow = nrow or math.ceil(math.sqrt(len(x)))
    # Mid-grey padding shows as a line between black backgrounds and between white strokes alike.
    grid = make_grid(torch.from_numpy(np.nan_to_num(x)), nrow=nrow, padding=1, pad_value=0.5)  # (3, H', W'); grey → RGB
    image = (grid.clamp_(0, 1).mul_(255).round_().to(torch.uint8)).permute(1, 2, 0).numpy()
    factor = max(1, math.ceil(min_size / image.shape[1]))
    if factor > 1:
        image = image.repeat(factor, axis=0).repeat(factor, axis=1)
    return np.ascontiguousarray(image)


def png_bytes(image: np.ndarray) -> bytes:
    """Encode a uint8 (H, W) or (H, W, 3) image as PNG."""
    buffer = io.BytesIO()
    # Fast compression: these small images are re-encoded every refresh, and size barely changes at higher levels.
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _arrow_segments(start: np.ndarray, push: np.ndarray, length: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, y and marker sizes for one scatter trace of segments start → start + scaled push, NaN between segments.

    The push is scaled so the longest arrow has `length`: raw gradients range over orders of magnitude during
    training, and only their directions and relative sizes carry the lesson.
    """
    n = min(len(start), len(push))
    start, push = start[:n], push[:n]
    ok = np.isfinite(start).all(axis=1) & np.isfinite(push).all(axis=1)
    start, push = start[ok], push[ok]
    longest = float(np.linalg.norm(push, axis=1).max()) if len(push) else 0.0
    scale = length / longest if longest > 0 else 0.0
    end = start + scale * push
    gap = np.full(len(start), np.nan)  # plotly breaks a line at NaN, as at None, and NaN keeps the arrays numeric
    xs = np.column_stack([start[:, 0], end[:, 0], gap]).ravel().astype(np.float32)
    ys = np.column_stack([start[:, 1], end[:, 1], gap]).ravel().astype(np.float32)
    # An arrowhead marker only at each segment's end; angleref="previous" points it along the segment.
    sizes = np.tile(np.array([0.0, 7.0, 0.0]), len(start))
    return xs, ys, sizes


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
                 show_field: bool = True, show_arrows: bool = True, modes: np.ndarray | None = None,
                 probability: bool = True, height: int = 480) -> go.Figure:
    """GAN Lab's layered view of 2D data: D's output over the plane, real and generated points, G's push on each.

    Each layer is drawn only when its flag is on and the record has its data (field and arrows may be None).
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
            x=np.linspace(x0, x1, cols), y=np.linspace(y0, y1, rows), z=field, name="D's output", colorscale="PRGn",
            opacity=0.75, zsmooth="best", showlegend=True, hovertemplate="(%{x:.2f}, %{y:.2f}) → %{z:.3f}<extra></extra>",
        )
        if probability:
            # Fixed [0, 1] so white is always 0.5, D's "can't tell", and colours compare across steps.
            traces.append(go.Heatmap(**common, zmin=0.0, zmax=1.0, colorbar=dict(title="D(x): real?", thickness=12)))
        else:
            # A critic's scores have no natural centre (WGAN's are shift-invariant): let the scale follow the data.
            traces.append(go.Heatmap(**common, colorbar=dict(title="critic score", thickness=12)))
    if show_real and real is not None and len(real):
        traces.append(go.Scatter(x=real[:, 0], y=real[:, 1], name="real data", mode="markers", hoverinfo="skip",
                                 marker=dict(color=REAL_COLOR, size=3, opacity=0.5)))
    if modes is not None and len(modes):
        traces.append(go.Scatter(x=modes[:, 0], y=modes[:, 1], name="modes", mode="markers", hoverinfo="skip",
                                 marker=dict(symbol="circle-open", color="black", size=12, line=dict(width=1))))
    if show_fake and len(fake):
        traces.append(go.Scatter(x=fake[:, 0], y=fake[:, 1], name="generated", mode="markers", hoverinfo="skip",
                                 marker=dict(color=FAKE_COLOR, size=4, opacity=0.8)))
    if show_arrows and record.arrows is not None and len(fake):
        push = np.asarray(record.arrows, dtype=np.float32).reshape(-1, 2)
        xs, ys, sizes = _arrow_segments(fake, push, ARROW_FRACTION * (x1 - x0))
        traces.append(go.Scatter(x=xs, y=ys, name="G's push", mode="lines+markers", hoverinfo="skip",
                                 line=dict(color=G_COLOR, width=1.2),
                                 marker=dict(symbol="arrow", angleref="previous", size=sizes, color=G_COLOR)))

    fig = go.Figure(traces)
    fig.update_layout(
        height=height, margin=_MARGIN, legend=_LEGEND, uirevision="plane",
        xaxis=dict(range=[x0, x1], constrain="domain", showgrid=False, zeroline=False),
        # Equal aspect: a circle of data must look like a circle, or the ring's geometry misleads.
        yaxis=dict(range=[y0, y1], scaleanchor="x", scaleratio=1, constrain="domain", showgrid=False, zeroline=False),
    )
    return fig


def scatter_image(fake: np.ndarray, real: np.ndarray | None, extent: tuple[float, float, float, float] | None,
                  size: int = 512) -> np.ndarray:
    """2D samples drawn as dots on a white square (real data light green behind): a PNG-able (size, size, 3) uint8 image.

    Drawn with numpy rather than plotly, because exporting a plotly figure needs a browser engine this app does not ship.
    """
    fake = np.asarray(fake, dtype=np.float64).reshape(-1, 2)
    layers = [fake] if real is None else [np.asarray(real, dtype=np.float64).reshape(-1, 2), fake]
    if extent is None:
        both = np.concatenate(layers)
        both = both[np.isfinite(both).all(axis=1)]
        lo, hi = (both.min(axis=0), both.max(axis=0)) if len(both) else (np.zeros(2), np.ones(2))
        pad = 0.1 * float((hi - lo).max()) + 1e-6
        extent = (lo[0] - pad, hi[0] + pad, lo[1] - pad, hi[1] + pad)
    x0, x1, y0, y1 = extent
    image = np.full((size, size, 3), 255, dtype=np.uint8)
    colors = ([] if real is None else [(180, 220, 170)]) + [tuple(int(FAKE_COLOR[i:i + 2], 16) for i in (1, 3, 5))]
    for points, color in zip(layers, colors, strict=True):
        ok = np.isfinite(points).all(axis=1)
        col = ((points[ok, 0] - x0) / (x1 - x0) * (size - 1)).round().astype(int)
        row = ((y1 - points[ok, 1]) / (y1 - y0) * (size - 1)).round().astype(int)  # y grows upwards
        for dr in (-1, 0, 1):  # 3×3 dots
            for dc in (-1, 0, 1):
                r, c = row + dr, col + dc
                inside = (r >= 0) & (r < size) & (c >= 0) & (c < size)
                image[r[inside], c[inside]] = color
    return image
