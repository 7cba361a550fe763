"""Draw your own data: a canvas over the plane in the New run form, where a click adds a point and a drag paints a
stroke of points. The conversion, the checks and the CSV are the engine's (gan_core.drawing); the drawing is
streamlit-drawable-canvas's (its toolbar undoes, redoes and clears). What is drawn is saved like an upload, as a
points CSV in the runs folder, so the CLI, resume and Ray runs read it like any other.
"""

from __future__ import annotations

import base64
from pathlib import Path

import streamlit as st

from gan_core import drawing
from gan_core.config import ConfigError
from gan_core.runs.uploads import save_points_upload
from ui import cache
from ui.style import REAL_COLOR
from ui.text import md_escape

WIDTH, HEIGHT = 480, 360  # pixels, 4:3 like drawing.X_RANGE by Y_RANGE; fits the New run dialog at 1280x720
POINT, BRUSH = "Point (click)", "Brush (drag)"
_START = "draw_start"  # (the starting shape's name or None, a counter): a new counter starts the canvas afresh
_TOOL = "draw_tool"
_BRUSH = "draw_brush"
INK = REAL_COLOR  # drawn points are the run's real data: the plane's colour for it
FIRST_SHAPE = "two moons"  # what the canvas opens with: a shape no preset has, trainable at once
FILE_NAME = "drawn.csv"  # saved as uploads/drawn-<hash>.csv: the same drawing is the same file


def drawn_points() -> Path | None:
    """The canvas, its tools and starting shapes; the saved CSV's path once the drawing is enough to train on."""
    # imported here, inside a page's run: the component registers itself with the running app when imported, and
    # raises where none runs (a test or a tool importing this module)
    from streamlit_drawable_canvas import st_canvas  # noqa: PLC0415

    start, generation = st.session_state.get(_START, (FIRST_SHAPE, 0))
    board, tools = st.columns([WIDTH + 20, 400])
    tools.caption("Click the plane to add a point, or pick the brush and drag to paint a stroke of points. "
                  "The toolbar over the plane undoes, redoes and clears.")
    tool = tools.segmented_control("Tool", [POINT, BRUSH], default=POINT, key=_TOOL)
    brush = 12
    if tool == BRUSH:
        brush = tools.slider("Brush width (pixels)", 2, 40, 12, key=_BRUSH,
                             help="A wide brush paints a thick band of points, a thin one a line.")
    tools.markdown("**Start again from**")
    shapes = tools.columns(2)
    for i, name in enumerate([*drawing.SHAPES, None]):
        shapes[i % 2].button(name.capitalize() if name else "Blank", key=f"draw_shape_{name}", width="stretch",
                             on_click=_start_from, args=(name, generation + 1),
                             help=f"Replace the drawing with {name}" if name else "Clear the plane")
    with board:
        result = st_canvas(
            drawing_mode="freedraw" if tool == BRUSH else "point", stroke_width=brush if tool == BRUSH else 0,
            stroke_color=INK, fill_color=INK, point_display_radius=3, width=WIDTH, height=HEIGHT,
            background_image=_grid(), initial_drawing=_start_drawing(start), key=f"draw_canvas_{generation}")
    drawn = result.json_data if result is not None and result.json_data is not None else _start_drawing(start)
    points = drawing.points_from_canvas(drawn, WIDTH, HEIGHT)
    try:
        drawing.check(points)
    except ConfigError as err:
        tools.error(md_escape(str(err).removeprefix("points: ")), icon=":material/draw:")
        return None
    path = save_points_upload(FILE_NAME, drawing.to_csv(points))
    tools.success(f"{len(points)} points: the form below trains on them (dataset = points).")
    return path


def _start_from(name: str | None, generation: int) -> None:
    st.session_state[_START] = (name, generation)


def _start_drawing(name: str | None) -> dict:
    """A starting shape as canvas objects (the same for every browser: made once per process)."""
    return cache.cached(("draw-start", name), lambda: drawing.canvas_drawing(
        drawing.shape(name) if name else [], WIDTH, HEIGHT, colour=INK))


def _grid() -> str:
    """The plane behind the canvas: axes and a grid every half unit, as an SVG data URL (made once per process)."""
    return cache.cached(("draw-grid", WIDTH, HEIGHT), _grid_svg)


def _grid_svg() -> str:
    lines = []
    for value in [v / 2 for v in range(-4, 5)]:
        x, _ = drawing.to_canvas([[value, 0.0]], WIDTH, HEIGHT)[0]
        lines.append(_line(x, 0, x, HEIGHT, axis=value == 0))
        if value != 0:
            lines.append(f'<text x="{x + 2:.1f}" y="{HEIGHT / 2 - 3:.1f}" font-size="10" fill="#888">{value:g}</text>')
    for value in [v / 2 for v in range(-3, 4)]:
        _, y = drawing.to_canvas([[0.0, value]], WIDTH, HEIGHT)[0]
        lines.append(_line(0, y, WIDTH, y, axis=value == 0))
        if value != 0:
            lines.append(f'<text x="{WIDTH / 2 + 3:.1f}" y="{y - 3:.1f}" font-size="10" fill="#888">{value:g}</text>')
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}">'
           f'<rect width="100%" height="100%" fill="white"/>{"".join(lines)}</svg>')
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def _line(x1: float, y1: float, x2: float, y2: float, *, axis: bool) -> str:
    colour, width = ("#999", 1.2) if axis else ("#e6e6e6", 1)
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{colour}" stroke-width="{width}"/>'
