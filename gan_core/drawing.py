"""2D points drawn with the mouse: from a drawing canvas's objects to the points a run trains on, and back.

GAN Lab's best-remembered feature: draw a distribution, watch a GAN learn it. The Training page's canvas
(streamlit-drawable-canvas, a Fabric.js canvas) hands back its objects as JSON: a click in point mode is a Circle, a drag
in free-draw mode a Path (a stroke). Here they become points on the plane (a click one point, a stroke a band of points
as wide as the brush), are checked (`check`), and are written as the same two-column CSV an upload makes, so the CLI,
resume and Ray runs read them like any points file. Starting shapes (`SHAPES`) go the other way, onto the canvas.

No UI here (the engine's rule): the page passes the canvas's size in pixels and its JSON.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from gan_core.config import ConfigError

# The plane the canvas shows, in data units: the toy presets' rings and moons fit inside with a margin (ring radius 1),
# and 4:3 matches the canvas, so a circle drawn is a circle learned.
X_RANGE = (-2.0, 2.0)
Y_RANGE = (-1.5, 1.5)
MIN_POINTS = 20  # below this a batch of 128 is the same few points over and over: nothing to learn a shape from
MIN_SPREAD = 0.05  # data units: points all within this of their middle (both axes) are "all in one spot"
STROKE_SPACING_PX = 4.0  # one point per this many pixels along a stroke with a brush up to 10 px (wider: more)
SHAPE_POINTS = 240  # a starting shape's points: enough to see its form, few enough to edit by hand
_ORIGIN = {"left": 0.0, "top": 0.0, "center": 0.5, "right": 1.0, "bottom": 1.0}  # Fabric.js originX/originY


def to_plane(px: np.ndarray, py: np.ndarray, width: int, height: int) -> np.ndarray:
    """Canvas pixels (y down) to plane coordinates (y up)."""
    x = X_RANGE[0] + np.asarray(px, dtype=np.float64) / width * (X_RANGE[1] - X_RANGE[0])
    y = Y_RANGE[1] - np.asarray(py, dtype=np.float64) / height * (Y_RANGE[1] - Y_RANGE[0])
    return np.stack([x, y], axis=-1)


def to_canvas(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """Plane coordinates to canvas pixels (the inverse of to_plane)."""
    points = np.asarray(points, dtype=np.float64)
    px = (points[:, 0] - X_RANGE[0]) / (X_RANGE[1] - X_RANGE[0]) * width
    py = (Y_RANGE[1] - points[:, 1]) / (Y_RANGE[1] - Y_RANGE[0]) * height
    return np.stack([px, py], axis=-1)


def points_from_canvas(drawing: Mapping[str, Any] | None, width: int, height: int, seed: int = 0) -> np.ndarray:
    """Every point the canvas's objects stand for, on the plane, in drawing order; (0, 2) for an empty canvas.

    A Circle is one point (its centre). A Path (a free-hand stroke) is a band of points along it, one every
    STROKE_SPACING_PX pixels per 10 px of brush, scattered across the brush's width: a wide brush paints a thick
    smear of data, a thin one a line. The scatter is seeded, so the same drawing always gives the same points."""
    rng = np.random.default_rng(seed)
    pixels: list[np.ndarray] = []
    for obj in (drawing or {}).get("objects") or []:
        kind = str(obj.get("type", "")).lower()
        if kind == "circle":
            pixels.append(_circle_centre(obj)[None, :])
        elif kind == "path":
            pixels.append(_stroke(obj, rng))
    if not pixels:
        return np.zeros((0, 2))
    xy = np.concatenate(pixels)
    inside = (xy[:, 0] >= 0) & (xy[:, 0] <= width) & (xy[:, 1] >= 0) & (xy[:, 1] <= height)
    return to_plane(xy[inside, 0], xy[inside, 1], width, height)


def _circle_centre(obj: Mapping[str, Any]) -> np.ndarray:
    # left/top are the object's origin point on its box, the box including the stroke
    size = (2 * float(obj.get("radius", 0)) + float(obj.get("strokeWidth", 0)))
    w, h = size * float(obj.get("scaleX", 1)), size * float(obj.get("scaleY", 1))
    cx = float(obj["left"]) + (0.5 - _ORIGIN.get(obj.get("originX", "left"), 0.0)) * w
    cy = float(obj["top"]) + (0.5 - _ORIGIN.get(obj.get("originY", "top"), 0.0)) * h
    return np.array([cx, cy])


def _stroke(obj: Mapping[str, Any], rng: np.random.Generator) -> np.ndarray:
    """Points along a free-hand path: its commands' end and control points, joined by straight pieces."""
    nodes = [command[-2:] for command in obj.get("path") or [] if len(command) >= 3]
    if not nodes:
        return np.zeros((0, 2))
    line = np.asarray(nodes, dtype=np.float64)
    # the path's numbers are where it was drawn; left/top say where its box is now (moved with the edit tool)
    box_middle = (line.min(axis=0) + line.max(axis=0)) / 2
    w, h = line.max(axis=0) - line.min(axis=0) + float(obj.get("strokeWidth", 0))
    origin = np.array([float(obj.get("left", box_middle[0])) + (0.5 - _ORIGIN.get(obj.get("originX", "left"), 0)) * w,
                       float(obj.get("top", box_middle[1])) + (0.5 - _ORIGIN.get(obj.get("originY", "top"), 0)) * h])
    line = line - box_middle + origin
    brush = max(float(obj.get("strokeWidth", 1)), 1.0)
    spacing = STROKE_SPACING_PX * 10.0 / max(brush, 10.0)  # a wider brush paints more points per pixel of stroke
    pieces = np.linalg.norm(np.diff(line, axis=0), axis=1)
    along = np.concatenate([[0.0], np.cumsum(pieces)])
    n = max(1, int(along[-1] / spacing) + 1)
    at = np.linspace(0.0, along[-1], n)
    centre = np.stack([np.interp(at, along, line[:, 0]), np.interp(at, along, line[:, 1])], axis=1)
    # uniformly over a disc of the brush's radius: the band the stroke painted
    angle, radius = rng.uniform(0, 2 * math.pi, n), brush / 2 * np.sqrt(rng.uniform(0, 1, n))
    return centre + np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)


def check(points: np.ndarray) -> None:
    """ConfigError("points", ...) in one line naming the minimum, for too few points or points all in one spot."""
    if len(points) < MIN_POINTS:
        raise ConfigError("points", f"draw at least {MIN_POINTS} points (there are {len(points)}): click to add "
                                    "points, or drag to paint a stroke of them")
    spread = np.abs(points - points.mean(axis=0)).max(axis=0)
    if (spread < MIN_SPREAD).all():
        raise ConfigError("points", f"the points are all in one spot: spread them over at least {2 * MIN_SPREAD:g} "
                                    "units of the plane (a GAN learns a shape, and one spot has none)")


def to_csv(points: np.ndarray) -> bytes:
    """The points as the two-column CSV an upload is (x,y header), 4 decimals: the plane's pixels are 0.01 apart."""
    out = io.StringIO()
    out.write("x,y\n")
    for x, y in np.asarray(points, dtype=np.float64):
        out.write(f"{x:.4f},{y:.4f}\n")
    return out.getvalue().encode()


# -- starting shapes -------------------------------------------------------------------------------------------------
def _two_moons(n: int, rng: np.random.Generator) -> np.ndarray:
    t = rng.uniform(0, math.pi, n)
    upper = rng.random(n) < 0.5
    x = np.where(upper, np.cos(t), 1 - np.cos(t)) - 0.5
    y = np.where(upper, np.sin(t), 0.5 - np.sin(t)) - 0.25
    return np.stack([x * 0.9, y * 0.9], axis=1) + rng.normal(0, 0.04, (n, 2))


def _spiral(n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.sqrt(rng.uniform(0.05, 1, n)) * 3 * math.pi  # even along the arm, not bunched at the centre
    r = t / (3 * math.pi) * 1.3
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1) + rng.normal(0, 0.03, (n, 2))


def _ring(n: int, rng: np.random.Generator) -> np.ndarray:
    t = rng.uniform(0, 2 * math.pi, n)
    return np.stack([np.cos(t), np.sin(t)], axis=1) + rng.normal(0, 0.04, (n, 2))


SHAPES: dict[str, Callable[[int, np.random.Generator], np.ndarray]] = {
    "two moons": _two_moons, "spiral": _spiral, "ring": _ring}


def shape(name: str, n: int = SHAPE_POINTS, seed: int = 0) -> np.ndarray:
    """A starting shape's points on the plane; ConfigError naming the shapes for an unknown one."""
    if name not in SHAPES:
        raise ConfigError("shape", f"unknown shape {name!r}; choose one of: {', '.join(SHAPES)}")
    return SHAPES[name](n, np.random.default_rng(seed))


def canvas_drawing(points: Sequence[Sequence[float]] | np.ndarray, width: int, height: int,
                   radius: int = 3, colour: str = "#1f77b4") -> dict[str, Any]:
    """Points on the plane as a canvas drawing of point objects (the JSON st_canvas's point mode makes), to start
    the canvas from: points_from_canvas gives them back."""
    xy = to_canvas(np.asarray(points, dtype=np.float64).reshape(-1, 2), width, height)
    return {"version": "7.4.0", "objects": [
        {"type": "Circle", "originX": "center", "originY": "center", "left": round(float(x), 2),
         "top": round(float(y), 2), "radius": radius, "strokeWidth": 0, "fill": colour, "stroke": colour,
         "scaleX": 1, "scaleY": 1} for x, y in xy]}
