"""Every colour, margin and legend placement the pages use, in one place, so a colour means one thing on every page.

Roles first: D blue and G orange (as in the Home diagram), real green and generated purple (GAN Lab's, and the two ends
of the plane's PRGn decision map, so a point's colour matches the side of D it belongs on). Then palettes for things
that come in numbers: runs and variants, digits, a network's layers. No plotting library is imported here: plotly
figures and Vega-Lite specs both read these plain values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# -- roles ---------------------------------------------------------------------------------------------------------------
D_COLOR = "#1f77b4"
G_COLOR = "#ff7f0e"
REAL_COLOR = "#1b7837"
FAKE_COLOR = "#762a83"
REAL_LIGHT = "#b4dcaa"  # real data behind generated dots, where it must not hide them
MISSED_COLOR = "#d62728"  # a class or mode G does not draw
VAE_COLOR = "#00897b"  # teal: the VAE's own parts, apart from the GAN's D blue and G orange
NEUTRAL_FILL = "#eeeeee"  # diagram nodes that belong to neither network (noise, latent space, D's verdict)
# Light fills of the role colours for diagram boxes (text must stay readable on them).
D_FILL, G_FILL, REAL_FILL, FAKE_FILL = "#c6dbef", "#ffd8a8", "#d9f0d3", "#e5d4ef"
HIGHLIGHT_COLOR = "#e4572e"  # where the reader's slider stands (t along a path)

# -- the 2D plane (GAN Lab's layered view) -------------------------------------------------------------------------------
# Readable in every state of training, on a projector and with colour-blind eyes (tests/test_plane_colors.py checks it
# under simulated deuteranopia, protanopia and tritanopia). D's map keeps PRGn's meaning (green: D says real, purple:
# fake; ColorBrewer lists PRGn as colour-blind safe) but only its pale tints, so the dark green real data and dark purple
# samples keep a contrast of at least 3:1 (WCAG's figure for graphics) over any part of it: once D wins the whole plane
# is its "fake" end, and samples drawn in full purple on full purple vanished. Contrast in lightness is what survives
# colour blindness and a washed-out projector; hue alone does not.
PLANE_FIELD_SCALE = ((0.0, "#d4bddb"), (0.5, "#f7f7f7"), (1.0, "#bfe5b9"))  # D = 0, D = 0.5 (can't tell), D = 1
PLANE_REAL = REAL_COLOR
PLANE_FAKE = FAKE_COLOR
PLANE_OUTLINE = "#ffffff"  # around each sample and under each arrow: a mark stays visible over any other
PLANE_ARROW = "#262626"  # near-black: G's orange was 1.8:1 on the pale map and, to protanopes, close to the data's green
PLANE_MANIFOLD = "#e08214"  # G's own orange (PuOr's), thin and behind the points: context, not a mark to read from afar
PLANE_MODES = "#000000"
PLANE_FONT_SIZE = 14  # read from the back of a room

# -- things that come in numbers -----------------------------------------------------------------------------------------
# Runs overlaid, and the variants of a comparison: D3's ten without D's blue and G's orange (which mean D and G), so a run
# is never mistaken for a network; the two light ones last.
RUN_COLORS = ("#17becf", "#e377c2", "#bcbd22", "#8c564b", "#d62728", "#7f7f7f", "#2ca02c", "#9467bd", "#aec7e8", "#ffbb78")
# One colour per digit 0-9 on every page (D3's ten, in order): a digit keeps its colour from the VAE's latent space to
# the classifier's probabilities on the controllable-generation page.
DIGIT_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
# Two ways along one path (linear and spherical interpolation): lines that are neither digits nor runs.
PATH_COLORS = ("#1f77b4", "#2ca02c")
# A network's layers, light (first layer, next to the input) to dark (last, next to the loss): D in blues, G in oranges.
D_SHADES = ("#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b")
G_SHADES = ("#fdae6b", "#fd8d3c", "#f16913", "#d94801", "#a63603", "#7f2704")

# -- the activations lesson: a function, its slope, and where the slope is 0 or nearly ----------------------------------
CURVE_COLOR = "#1f77b4"
DERIVATIVE_COLOR = "#d62728"
DEAD_FILL = "rgba(120, 120, 120, 0.22)"
SATURATED_FILL = "rgba(214, 39, 40, 0.12)"

# -- the batch-norm lesson ----------------------------------------------------------------------------------------------
BN_TRAIN_COLOR, BN_INFER_COLOR = G_COLOR, D_COLOR  # training mode against inference mode
BN_SOURCES = {"batch": D_SHADES[0], "running": D_SHADES[4]}  # the batch's statistic (jumpy) against the running one
BN_STAGES = {"before BN": "#bdbdbd", "after BN": "#3182bd"}

# -- the VAE lesson -----------------------------------------------------------------------------------------------------
VAE_LOSS_COLORS = {"loss": "#333333", "reconstruction": VAE_COLOR, "kl": "#c2185b"}

# -- plotly layout ------------------------------------------------------------------------------------------------------
MARGIN = dict(l=50, r=10, t=30, b=40)
TITLED_MARGIN = dict(l=50, r=20, t=60, b=40)  # room for a figure's own title above the legend
LEGEND_TOP = dict(orientation="h", yanchor="bottom", y=1.0, xanchor="left", x=0.0)
LEGEND_TOP_RIGHT = dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0)  # leaves narrow plots wide
PLOTLY_CONFIG = {"displayModeBar": False}  # a classroom needs no zoom/export toolbar over every chart

# -- Vega-Lite layout ---------------------------------------------------------------------------------------------------
# The width follows the container (width="stretch") and `height` is the whole chart's, legend and axes included, as
# plotly's height is; padding counts, so nothing overflows the element.
FIT = {"type": "fit", "contains": "padding"}
FIT_X = {"type": "fit-x", "contains": "padding"}  # the height is the plot's alone: small multiples line up
VEGA_LEGEND_TOP = {"orient": "top", "direction": "horizontal"}
TOOLTIP_STEP = {"field": "step", "type": "quantitative", "title": "step", "format": ",d"}


def run_colors(n: int) -> list[str]:
    """Colours for n runs or variants, in order, cycling through RUN_COLORS."""
    return [RUN_COLORS[i % len(RUN_COLORS)] for i in range(n)]


def shades(n: int, palette: Sequence[str]) -> list[str]:
    """n colours spread over a light-to-dark palette (one alone takes a middle-dark shade)."""
    if n == 1:
        return [palette[-2]]
    return [palette[round(i * (len(palette) - 1) / (n - 1))] for i in range(n)]


def vega_legend_top(**extra: Any) -> dict[str, Any]:
    """A Vega-Lite legend above the plot, entries in a row; `extra` adds or overrides properties."""
    return {**VEGA_LEGEND_TOP, **extra}
