"""The Sweep page's pictures: one outcome over the grid as a heatmap, and a cell's latest samples as a small image."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import plotly.graph_objects as go

from gan_core.runs.state import RunSnapshot
from gan_core.sweeps.outcomes import OutcomeGrid
from gan_core.sweeps.spec import shown
from ui.figures import images
from ui.style import TITLED_MARGIN

# What each outcome means, how to print it, and which way is better (the colour scale runs from bad to good).
OUTCOMES: dict[str, tuple[str, str, bool]] = {
    "modes_covered": ("modes covered", "{:.1f}", True),
    "high_quality_fraction": ("high-quality share", "{:.0%}", True),
    "classes_covered": ("digits covered", "{:.1f}", True),
    "fcd": ("FCD (lower is closer to the data)", "{:.3g}", False),
}
# The colour scale over the whole possible range, so 6.5 of 8 modes does not look like a failure (None: the data's own)
FULL_SCALE: dict[str, tuple[float, float] | None] = {"high_quality_fraction": (0.0, 1.0), "classes_covered": (0.0, 10.0),
                                                     "fcd": None}
CELL_SIZE = 160  # px: a cell's picture; eight fit across a 1280-pixel projector beside the sidebar, four with room


def outcome_keys(is_2d: bool) -> list[str]:
    """The outcomes a sweep over this kind of data reports, the headline first."""
    return ["modes_covered", "high_quality_fraction"] if is_2d else ["classes_covered", "fcd"]


def outcome_heatmap(grid: OutcomeGrid, modes_total: int | None = None, height: int = 320) -> go.Figure:
    """Rows: the first field's values; columns: the second's (one column for a one-field sweep). Each square shows the
    outcome averaged over the seeds that have it, and how many seeds that is; blank until a run has finished.
    `modes_total`: the mixture's number of modes, the top of the modes-covered scale."""
    title, fmt, higher_better = OUTCOMES[grid.key]
    columns = [shown(v) for v in grid.column_values] or ["all"]
    rows = [shown(v) for v in grid.row_values]
    text = [[("" if math.isnan(m) else fmt.format(m) + (f"<br>{n} seeds" if n > 1 else ""))
             for m, n in zip(mean_row, seed_row, strict=True)] for mean_row, seed_row in zip(grid.mean, grid.seeds,
                                                                                              strict=True)]
    scale = (0.0, float(modes_total)) if grid.key == "modes_covered" and modes_total else FULL_SCALE.get(grid.key)
    zmin, zmax = scale if scale else (None, None)
    fig = go.Figure(go.Heatmap(
        z=grid.mean, zmin=zmin, zmax=zmax, x=columns, y=rows, text=text, texttemplate="%{text}", textfont=dict(size=16),
        colorscale="Viridis", reversescale=not higher_better, colorbar=dict(title=title.split(" (")[0], thickness=14),
        hovertemplate=f"{grid.row_field}=%{{y}}" + (f", {grid.column_field}=%{{x}}" if grid.column_field else "")
                      + ": %{text}<extra></extra>"))
    fig.update_layout(height=height, margin=TITLED_MARGIN, title=title,
                      xaxis=dict(title=grid.column_field or "", type="category", side="top"),
                      yaxis=dict(title=grid.row_field, type="category", autorange="reversed"))
    return fig


def cell_picture(snap: RunSnapshot) -> np.ndarray | None:
    """The run's latest samples as a small image: 16 digits in a 4×4 grid, or 2D points on the data; None before any."""
    record = snap.latest_samples
    if record is None:
        return None
    if record.samples.ndim == 4:
        return images.sample_grid(record.samples[:16], nrow=4, min_size=CELL_SIZE)
    return images.scatter_image(record.samples, snap.real, record.extent, size=CELL_SIZE)


def figure_text(key: str, value: Any) -> str:
    """One outcome for a caption, e.g. "digits covered 9"."""
    title, fmt, _ = OUTCOMES[key]
    return f"{title.split(' (')[0]} {fmt.format(value)}"
