"""Pictures of samples as plain uint8 pixels, drawn with numpy: image grids, 2D samples as dots, PNG bytes.

The dashboard's pages (ui/figures/images.py) and each run's TensorBoard events (gan_core/runs/tensorboard_log.py) draw
with these. Pixels rather than a plotting library, so an 8×8 digit stays crisp; numpy rather than torchvision's
make_grid, whose import takes seconds in a worker or a page that has not loaded it yet.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

Extent = tuple[float, float, float, float]  # x0, x1, y0, y1


def tile(images: np.ndarray, columns: int, pad: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """Images (n, C, H, W) in [0, 1] as one uint8 grid, `columns` a row (fewer when there are fewer images), with
    `pad` pixels of `pad_value` around each. (H', W') for one channel, (H', W', C) otherwise; NaN is drawn black."""
    x = np.clip(np.nan_to_num(np.asarray(images, dtype=np.float32)), 0, 1)
    if x.ndim != 4 or len(x) == 0:
        raise ValueError(f"expected a non-empty (N, C, H, W) array, got shape {x.shape}")
    n, channels, h, w = x.shape
    columns = max(1, min(columns, n))
    rows = -(-n // columns)
    grid = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad, channels), pad_value, np.float32)
    for i, image in enumerate(x):
        top, left = pad + (i // columns) * (h + pad), pad + (i % columns) * (w + pad)
        grid[top:top + h, left:left + w] = image.transpose(1, 2, 0)
    grid = np.round(grid * 255).astype(np.uint8)
    return grid[:, :, 0] if channels == 1 else grid


def fit_extent(points: np.ndarray, margin: float = 0.1) -> Extent:
    """The extent around the finite 2D points, widened by `margin` of its longer side; (−1, 1, −1, 1) when none."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    p = p[np.isfinite(p).all(axis=1)]
    if not len(p):
        return (-1.0, 1.0, -1.0, 1.0)
    (x0, y0), (x1, y1) = p.min(axis=0), p.max(axis=0)
    pad = margin * max(x1 - x0, y1 - y0, 1e-6)
    return (float(x0 - pad), float(x1 + pad), float(y0 - pad), float(y1 + pad))


def dot_pixels(points: np.ndarray, extent: Extent, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of a 3×3 dot for each finite 2D point on a size × size picture of `extent`, y growing upwards;
    pixels that fall outside the picture are left out. `picture[rows, columns] = colour` draws them."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    p = p[np.isfinite(p).all(axis=1)]
    x0, x1, y0, y1 = extent
    col = np.round((p[:, 0] - x0) / max(x1 - x0, 1e-12) * (size - 1)).astype(np.int64)
    row = np.round((y1 - p[:, 1]) / max(y1 - y0, 1e-12) * (size - 1)).astype(np.int64)
    offsets = np.array([-1, 0, 1])
    rows = (row[:, None, None] + offsets[None, :, None]).repeat(3, axis=2).ravel()
    cols = (col[:, None, None] + offsets[None, None, :]).repeat(3, axis=1).ravel()
    inside = (rows >= 0) & (rows < size) & (cols >= 0) & (cols < size)
    return rows[inside], cols[inside]


def png_bytes(pixels: np.ndarray, palette: np.ndarray | None = None, compress_level: int = 6) -> bytes:
    """(H, W) grey or (H, W, 3) RGB uint8 pixels, or (H, W) indices into `palette` ((k, 3) uint8), as PNG bytes.
    A low `compress_level` suits pictures re-encoded every second; the size barely changes at higher levels."""
    picture = Image.fromarray(np.asarray(pixels, dtype=np.uint8))
    if palette is not None:
        picture.putpalette(np.asarray(palette, dtype=np.uint8).tobytes())  # an "L" picture with a palette is a "P" one
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()
