"""Pictures as pixels: sample grids of images, 2D samples drawn as dots, PNG bytes. Pure functions, no streamlit.

Every page that shows what G drew uses these: the live sample grid, the downloads, the lesson pages' grids and strips.
Pixels rather than plotly, because an 8×8 digit must stay crisp (the browser would blur it) and a PNG download needs
no browser engine; drawn by gan_core.pictures, as the TensorBoard pictures of a run are.
"""

from __future__ import annotations

import math

import numpy as np

from gan_core import pictures
from ui.style import FAKE_COLOR, REAL_LIGHT


def sample_grid(samples: np.ndarray, nrow: int | None = None, min_size: int = 256) -> np.ndarray:
    """Images (N, C, H, W) in [0, 1] → one (H', W', 3) uint8 RGB grid, upscaled by whole pixels to ≥ min_size wide.

    Nearest-neighbour upscaling keeps 8×8 digits crisp; leaving it to the browser would blur them. (N, H, W) is read
    as grey.
    """
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 3:
        x = x[:, None]
    nrow = nrow or math.ceil(math.sqrt(len(x)))
    # Mid-grey padding shows as a line between black backgrounds and between white strokes alike.
    image = pictures.tile(x, nrow, pad=1, pad_value=0.5)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    factor = max(1, math.ceil(min_size / image.shape[1]))
    if factor > 1:
        image = image.repeat(factor, axis=0).repeat(factor, axis=1)
    return np.ascontiguousarray(image)


def png_bytes(image: np.ndarray) -> bytes:
    """Encode a uint8 (H, W) or (H, W, 3) image as PNG, compressed fast: these are re-encoded every refresh."""
    return pictures.png_bytes(image, compress_level=1)


def scatter_image(fake: np.ndarray, real: np.ndarray | None, extent: tuple[float, float, float, float] | None,
                  size: int = 512) -> np.ndarray:
    """2D samples drawn as dots on a white square (real data light green behind): a PNG-able (size, size, 3) uint8 image.

    Drawn with numpy rather than plotly, because exporting a plotly figure needs a browser engine this app does not ship.
    """
    fake = np.asarray(fake, dtype=np.float64).reshape(-1, 2)
    layers = [fake] if real is None else [np.asarray(real, dtype=np.float64).reshape(-1, 2), fake]
    if extent is None:
        extent = pictures.fit_extent(np.concatenate(layers))
    image = np.full((size, size, 3), 255, dtype=np.uint8)
    colors = [_rgb(c) for c in ([] if real is None else [REAL_LIGHT]) + [FAKE_COLOR]]
    for points, color in zip(layers, colors, strict=True):
        image[pictures.dot_pixels(points, extent, size)] = color
    return image


def _rgb(color: str) -> tuple[int, int, int]:
    """"#rrggbb" → (r, g, b)."""
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return r, g, b


def image_rows(rows: np.ndarray, min_size: int = 480) -> bytes:
    """(R, N, C, H, W) images as one PNG: R rows of N columns."""
    rows = np.asarray(rows)
    assert rows.ndim == 5, rows.shape
    return png_bytes(sample_grid(rows.reshape(-1, *rows.shape[2:]), nrow=rows.shape[1], min_size=min_size))
