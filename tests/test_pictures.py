"""gan_core.pictures: the grid, the dots and the PNG bytes that the pages and the TensorBoard log both draw with."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from gan_core import pictures


def test_tile_lays_images_out_in_rows_with_padding():
    images = np.zeros((5, 1, 2, 3), np.float32)
    images[4] = 1.0
    grid = pictures.tile(images, columns=2, pad=1, pad_value=0.5)
    # 2 columns × 3 rows of 2×3 pixels, 1 pixel of padding around each: (3·3 + 1) × (2·4 + 1), grey
    assert grid.shape == (10, 9) and grid.dtype == np.uint8
    assert grid[0, 0] == 128 and grid[1, 1] == 0  # padding, then image 0
    np.testing.assert_array_equal(grid[7:9, 1:4], 255)  # image 4: third row, first column
    assert grid[7, 5] == 128  # the last row's empty cell keeps the padding colour
    assert pictures.tile(np.ones((1, 3, 2, 2)), columns=8).shape == (4, 4, 3)  # fewer images than columns: one narrow row
    with pytest.raises(ValueError, match="non-empty"):
        pictures.tile(np.zeros((0, 1, 2, 2)), columns=2)


def test_dots_are_three_by_three_with_y_up_and_clipped():
    rows, cols = pictures.dot_pixels(np.array([[0.0, 0.0], [1.0, 1.0], [np.nan, 0.0]]), (-1.0, 1.0, -1.0, 1.0), 21)
    picture = np.zeros((21, 21), np.uint8)
    picture[rows, cols] = 1
    assert picture[9:12, 9:12].all() and picture.sum() == 9 + 4  # the centre dot whole; the corner one clipped to 2×2
    assert picture[0:2, 19:21].all()  # (1, 1) is the top right corner: rows run down, y runs up


def test_fit_extent_pads_the_longer_side():
    assert pictures.fit_extent(np.array([[0.0, 0.0], [2.0, 1.0], [np.inf, 5.0]])) == pytest.approx((-0.2, 2.2, -0.2, 1.2))
    assert pictures.fit_extent(np.zeros((0, 2))) == (-1.0, 1.0, -1.0, 1.0)


def test_png_bytes_round_trip_with_and_without_a_palette():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(pictures.png_bytes(grey)))), grey)
    palette = np.array([[255, 0, 0], [0, 0, 255]], np.uint8)
    decoded = Image.open(io.BytesIO(pictures.png_bytes(np.array([[0, 1]], np.uint8), palette))).convert("RGB")
    assert np.asarray(decoded).tolist() == [[[255, 0, 0], [0, 0, 255]]]
