"""ui.figures' shared pieces (images, plane, curves.ema): each figure's traces, layers and scaling on small synthetic
inputs (no browser, no training)."""

from __future__ import annotations

import numpy as np
import pytest

from gan_core.train.records import SampleRecord
from ui import style
from ui.figures import curves, images, plane


def _metrics(n: int) -> dict[str, np.ndarray]:
    step = np.arange(n, dtype=float)
    d, g = 0.7 + 0.1 * np.sin(step), 1.5 + 0.2 * np.cos(step)
    return {"step": step, "d_loss": d, "g_loss": g, "d_loss_smooth": curves.ema(d), "g_loss_smooth": curves.ema(g),
            "d_real": np.full(n, 0.8), "d_fake": np.full(n, 0.3)}


def _record(n: int = 20, res: int = 6, arrows: bool = True, field: bool = True, manifold: bool = True) -> SampleRecord:
    rng = np.random.default_rng(0)
    samples = rng.normal(size=(n, 2))
    push = rng.normal(size=(n, 2))
    push[3] = [30.0, 40.0]  # the longest arrow, length 50
    push[5] = [np.nan, 1.0]  # a bad gradient must not break the figure
    return SampleRecord(step=100, samples=samples, labels=None,
                        field=rng.uniform(size=(res, res)) if field else None,
                        extent=(-2.0, 3.0, -1.0, 4.0) if field else None,
                        arrows=push if arrows else None,
                        manifold=rng.normal(size=(4, 4, 2)) if manifold else None)


def _names(fig) -> list[str]:
    return [t.name for t in fig.data]


def _trace(fig, name: str):
    (trace,) = [t for t in fig.data if t.name == name]
    return trace


# -- ema ---------------------------------------------------------------------------------------------------------------
def test_ema_of_constant_is_constant():
    np.testing.assert_allclose(curves.ema(np.full(50, 3.5), alpha=0.2), 3.5)


def test_ema_matches_hand_values_and_skips_nan():
    out = curves.ema(np.array([np.nan, 1.0, 3.0, np.nan, 5.0]), alpha=0.5)
    # before any finite value: NaN; then 1; 0.5·1 + 0.5·3 = 2; NaN keeps 2; 0.5·2 + 0.5·5 = 3.5
    np.testing.assert_allclose(out, [np.nan, 1.0, 2.0, 2.0, 3.5])
    assert curves.ema(np.array([])).shape == (0,)
    with pytest.raises(ValueError):
        curves.ema(np.ones(3), alpha=0.0)


# -- line figures ------------------------------------------------------------------------------------------------------
def test_sample_grid_grey_digits_upscaled_crisply():
    samples = np.zeros((10, 1, 8, 8), dtype=np.float32)
    samples[0, 0, 0, 0] = 1.0
    image = images.sample_grid(samples, min_size=256)
    # nrow = ceil(sqrt(10)) = 4 → 4 columns × 3 rows of 8 px, 1 px padding around each: 37 × 28, then ×7 (259 ≥ 256)
    assert image.dtype == np.uint8 and image.shape == (28 * 7, 37 * 7, 3)
    # the single white pixel of sample 0 sits after the 1 px padding and becomes a 7×7 block of 255: pure nearest
    np.testing.assert_array_equal(image[7:14, 7:14], 255)
    assert image[14, 14].tolist() == [0, 0, 0] and image[13, 14].tolist() == [0, 0, 0]
    padding = image[0, 0]
    assert 0 < padding[0] < 255 and padding[0] == padding[1] == padding[2]  # visible grid lines, grey


def test_sample_grid_rgb_and_nrow():
    samples = np.random.default_rng(0).uniform(size=(6, 3, 4, 4)).astype(np.float32)
    image = images.sample_grid(samples, nrow=3, min_size=1)
    assert image.shape == (2 * 5 + 1, 3 * 5 + 1, 3)
    expected = np.round(samples[0].transpose(1, 2, 0) * 255)
    np.testing.assert_array_equal(image[1:5, 1:5], expected)
    with pytest.raises(ValueError):
        images.sample_grid(np.zeros((0, 1, 8, 8)))


def test_png_bytes_signature():
    data = images.png_bytes(images.sample_grid(np.ones((4, 1, 8, 8)), min_size=32))
    assert data[:8] == b"\x89PNG\r\n\x1a\n"


# -- the 2D plane ------------------------------------------------------------------------------------------------------
PLANE_ORDER = ["D's output", "G's manifold", "G's push (outline)", "G's push", "real data", "generated", "modes"]


def test_plane_figure_all_layers_bottom_to_top():
    rec = _record()
    real = np.random.default_rng(1).normal(size=(50, 2))
    modes = np.array([[0.0, 0.0], [1.0, 1.0]])
    fig = plane.plane_figure(rec, real, modes=modes)
    # the pale map at the bottom; the points over the arrows, so that nothing hides data or samples but the circles
    assert _names(fig) == PLANE_ORDER
    heat = fig.data[0]
    assert (heat.zmin, heat.zmax) == (0.0, 1.0) and heat.colorbar.title.text == "D(x): real?"
    assert [tuple(stop) for stop in heat.colorscale] == [tuple(stop) for stop in style.PLANE_FIELD_SCALE]
    assert heat.opacity is None  # drawn opaque: the colour bar shows exactly the colours on the plane
    np.testing.assert_allclose(heat.x, np.linspace(-2, 3, 6))
    np.testing.assert_allclose(heat.y, np.linspace(-1, 4, 6))
    by_name = {t.name: t for t in fig.data}
    assert by_name["real data"].marker.color == style.PLANE_REAL
    assert by_name["generated"].marker.color == style.PLANE_FAKE
    assert by_name["generated"].marker.line.color == style.PLANE_OUTLINE  # a white rim: visible on any part of the map
    assert by_name["G's push"].line.color == style.PLANE_ARROW
    outline = by_name["G's push (outline)"]
    assert outline.line.color == style.PLANE_OUTLINE and outline.line.width > by_name["G's push"].line.width
    np.testing.assert_array_equal(outline.x, by_name["G's push"].x)
    assert tuple(fig.layout.xaxis.range) == (-2.0, 3.0) and tuple(fig.layout.yaxis.range) == (-1.0, 4.0)
    assert fig.layout.yaxis.scaleanchor == "x"
    assert fig.layout.font.size == style.PLANE_FONT_SIZE


def test_plane_figure_raw_scores():
    fig = plane.plane_figure(_record(), None, probability=False)
    heat = fig.data[0]
    assert heat.zmin is None and heat.colorbar.title.text == "critic score"


@pytest.mark.parametrize("flag, names", [("show_field", ["D's output"]), ("show_real", ["real data"]),
                                         ("show_fake", ["generated"]), ("show_manifold", ["G's manifold"]),
                                         ("show_arrows", ["G's push (outline)", "G's push"])])
def test_plane_figure_toggles_remove_the_layer(flag, names):
    real = np.zeros((5, 2))
    everything = _names(plane.plane_figure(_record(), real))
    assert set(names) <= set(everything)
    assert _names(plane.plane_figure(_record(), real, **{flag: False})) == [n for n in everything if n not in names]


def test_plane_figure_missing_data_means_no_layer():
    fig = plane.plane_figure(_record(field=False, arrows=False, manifold=False), None)
    assert _names(fig) == ["generated"]
    x0, x1 = fig.layout.xaxis.range
    assert x0 < fig.data[0].x.min() and x1 > fig.data[0].x.max()


def test_manifold_is_drawn_as_its_grid_rows_then_columns():
    grid = np.arange(3 * 4 * 2, dtype=float).reshape(3, 4, 2)  # 3 rows of 4 points
    fig = plane.plane_figure(SampleRecord(0, np.zeros((2, 2)), None, manifold=grid), None)
    (mesh,) = [t for t in fig.data if t.name == "G's manifold"]
    xy = np.column_stack([np.asarray(mesh.x, dtype=float), np.asarray(mesh.y, dtype=float)])
    assert len(xy) == 3 * 5 + 4 * 4  # each row's 4 points and a gap, then each column's 3 points and a gap
    rows, cols = xy[:15].reshape(3, 5, 2), xy[15:].reshape(4, 4, 2)
    assert np.isnan(rows[:, 4]).all() and np.isnan(cols[:, 3]).all()  # plotly breaks the line at each gap
    np.testing.assert_array_equal(rows[:, :4], grid)
    np.testing.assert_array_equal(cols[:, :3], grid.transpose(1, 0, 2))


def test_arrows_thinned_evenly_to_at_most_max_arrows():
    n = 512
    samples = np.column_stack([np.arange(n, dtype=float), np.zeros(n)])
    rec = SampleRecord(0, samples, None, arrows=np.tile([0.0, 1.0], (n, 1)))
    fig = plane.plane_figure(rec, None)
    xs = np.asarray(_trace(fig, "G's push").x, dtype=float).reshape(-1, 3)
    starts = xs[:, 0]
    assert len(starts) == plane.MAX_ARROWS
    assert starts[0] == 0 and starts[-1] == n - 1  # spread over all the fixed noise, ends included
    assert set(np.diff(starts)) <= {4.0, 5.0}  # evenly: about every fourth sample


def test_arrows_scaled_to_eight_percent_of_the_width():
    rec = _record()
    fig = plane.plane_figure(rec, None)
    arrows = _trace(fig, "G's push")
    xs, ys = np.asarray(arrows.x, dtype=float).reshape(-1, 3), np.asarray(arrows.y, dtype=float).reshape(-1, 3)
    assert np.isnan(xs[:, 2]).all()  # one trace, segments separated by gaps
    assert len(xs) == len(rec.samples) - 1  # the NaN gradient is dropped
    np.testing.assert_allclose(xs[:, 0], np.delete(rec.samples[:, 0], 5), rtol=1e-6)  # each arrow starts at its sample
    lengths = np.hypot(xs[:, 1] - xs[:, 0], ys[:, 1] - ys[:, 0])
    assert lengths.max() == pytest.approx(0.08 * 5.0, rel=1e-5)  # extent width 5
    # directions and relative sizes are kept: the longest is the (30, 40) push, pointing along it
    i = int(np.argmax(lengths))
    assert (xs[i, 1] - xs[i, 0]) / (ys[i, 1] - ys[i, 0]) == pytest.approx(0.75, rel=1e-4)


def test_zero_arrows_do_not_divide_by_zero():
    rec = SampleRecord(1, np.ones((4, 2)), None, arrows=np.zeros((4, 2)))
    xs = np.asarray(_trace(plane.plane_figure(rec, None), "G's push").x, dtype=float).reshape(-1, 3)
    np.testing.assert_allclose(xs[:, 1], xs[:, 0])
