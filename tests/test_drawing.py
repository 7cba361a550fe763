"""Draw your own data (gan_core.drawing): a canvas's objects become points on the plane, are checked, and are saved as
the same points CSV an upload makes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from gan_core import drawing
from gan_core.config import ConfigError
from gan_core.data import load_points_csv
from gan_core.runs.uploads import UPLOADS_DIR, save_points_upload

# What streamlit-drawable-canvas 0.13 sent back (trimmed to the fields read) on a 400x300 canvas: a click at (100, 50)
# and one at (200, 150) in point mode, then a 10-pixel brush dragged from (50, 250) to (240, 155).
RECORDED = Path(__file__).parent / "data" / "canvas_two_clicks_one_stroke.json"
W, H = 400, 300


def _recorded() -> dict:
    return json.loads(RECORDED.read_text())


def test_clicks_become_the_points_clicked_and_a_stroke_a_band_of_points_along_it():
    points = drawing.points_from_canvas(_recorded(), W, H)
    pixels = drawing.to_canvas(points, W, H)
    np.testing.assert_allclose(pixels[:2], [[100, 49.2188], [200, 149.2188]], atol=1e-6)  # the clicks
    np.testing.assert_allclose(points[0], [-1.0, 1.0078], atol=1e-3)  # (100, 49) of 400x300 on x -2..2, y -1.5..1.5
    stroke = pixels[2:]
    length = np.hypot(240 - 50, 250 - 155)  # ~212 px: one point per 4 px with a 10 px brush
    assert abs(len(stroke) - length / drawing.STROKE_SPACING_PX) <= 3
    # every point within the brush's half width (5 px) of the straight line the hand dragged
    a, b = np.array([50, 249.2]), np.array([240, 154.2])
    direction = (b - a) / np.linalg.norm(b - a)
    off_line = np.abs(np.cross(direction, stroke - a))
    assert off_line.max() <= 5.0 + 1.0 and off_line.mean() > 1.0  # a band, not a line
    np.testing.assert_array_equal(points, drawing.points_from_canvas(_recorded(), W, H))  # the same every time


def test_a_stroke_moved_with_the_edit_tool_is_read_where_it_is_now():
    moved = _recorded()
    moved["objects"][2]["left"] += 40  # dragged 40 px right: its path's numbers stay where it was drawn
    before = drawing.to_canvas(drawing.points_from_canvas(_recorded(), W, H)[2:], W, H)
    after = drawing.to_canvas(drawing.points_from_canvas(moved, W, H)[2:], W, H)
    inside = before[:, 0] + 40 <= W
    np.testing.assert_allclose(after[: inside.sum()], before[inside] + [40, 0], atol=1e-6)


def test_an_empty_or_missing_drawing_is_no_points_and_points_off_the_canvas_are_dropped():
    assert drawing.points_from_canvas(None, W, H).shape == (0, 2)
    assert drawing.points_from_canvas({"objects": []}, W, H).shape == (0, 2)
    outside = {"objects": [{"type": "Circle", "originX": "center", "originY": "center", "left": -20, "top": 10,
                            "radius": 3, "strokeWidth": 0}]}
    assert drawing.points_from_canvas(outside, W, H).shape == (0, 2)


def test_too_few_points_or_all_in_one_spot_is_refused_in_one_line_naming_the_minimum():
    with pytest.raises(ConfigError) as err:
        drawing.check(np.zeros((drawing.MIN_POINTS - 1, 2)) + np.arange(drawing.MIN_POINTS - 1)[:, None])
    assert err.value.field == "points" and f"at least {drawing.MIN_POINTS} points" in str(err.value)
    assert "\n" not in str(err.value)
    spot = np.random.default_rng(0).normal(0.3, 0.001, (200, 2))
    with pytest.raises(ConfigError, match="all in one spot"):
        drawing.check(spot)
    line = np.stack([np.linspace(-1, 1, 50), np.zeros(50)], axis=1)  # a line has a shape: along x
    drawing.check(line)


def test_the_points_are_the_same_csv_an_upload_makes(tmp_path):
    points = drawing.points_from_canvas(_recorded(), W, H)
    path = save_points_upload("drawn.csv", drawing.to_csv(points), runs_dir=tmp_path)
    assert path.parent == tmp_path / UPLOADS_DIR and path.name.startswith("drawn-")
    source = load_points_csv(path)
    np.testing.assert_allclose(source.x.numpy(), points, atol=1e-4)
    assert save_points_upload("drawn.csv", drawing.to_csv(points), runs_dir=tmp_path) == path  # same drawing, same file


@pytest.mark.parametrize("name", list(drawing.SHAPES))
def test_each_starting_shape_is_on_the_plane_trainable_and_round_trips_through_the_canvas(name):
    points = drawing.shape(name)
    assert points.shape == (drawing.SHAPE_POINTS, 2)
    assert (np.abs(points[:, 0]) < drawing.X_RANGE[1]).all() and (np.abs(points[:, 1]) < drawing.Y_RANGE[1]).all()
    drawing.check(points)
    back = drawing.points_from_canvas(drawing.canvas_drawing(points, W, H), W, H)
    np.testing.assert_allclose(back, points, atol=1e-3)


def test_an_unknown_shape_names_the_shapes():
    with pytest.raises(ConfigError, match="two moons, spiral, ring"):
        drawing.shape("square")


@pytest.mark.usefixtures("fresh_manager")
@pytest.mark.parametrize("again", [1, 2])  # twice: a second app in one process finds the canvas component too
def test_the_new_run_form_trains_on_the_drawing_and_refuses_a_blank_one(again):
    """In the app (AppTest cannot move a mouse: the canvas returns nothing, and its starting shape is the drawing)."""
    from ui import live  # (not ui.draw: the canvas component registers itself with the app running when imported)

    app = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "dashboard.py"), default_timeout=60)
    app.switch_page("app_pages/training.py")
    app.run()
    app.button(key="new_run").click().run()
    app.selectbox(key="preset").set_value("my 2D points (draw them)").run()
    assert not app.exception, [e.value for e in app.exception]
    assert any(f"{drawing.SHAPE_POINTS} points" in s.value for s in app.success)
    saved = list((live.get_manager().runs_dir / UPLOADS_DIR).glob("drawn-*.csv"))
    assert len(saved) == 1
    np.testing.assert_allclose(load_points_csv(saved[0]).x.numpy(), drawing.shape("two moons"), atol=2e-2)
    assert any(b.label == "Start" for b in app.button)  # the form is there to train on it

    app.button(key="draw_shape_None").click().run()  # Blank
    assert not app.exception
    assert any(f"at least {drawing.MIN_POINTS} points" in e.value for e in app.error)
    assert not any(b.label == "Start" for b in app.button)  # nothing to start
