"""Charts as PNG bytes, drawn with Pillow: a lesson's curves as a line chart and the room's answers as a bar chart, for
the files a teacher takes home (gan_core.lessons.export).

The pages draw their charts in the browser (Vega-Lite, plotly); a file needs pixels made on the server. Plotly's PNG
export needs kaleido and a Chrome, and matplotlib would be a large dependency for a few charts: Pillow is already the
engine's picture library (gan_core.pictures). A chart is sized for a slide (16:9) with text readable on a projector.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SIZE = (1200, 675)  # 16:9, a slide's shape
INK, GRID, FAINT = "#222222", "#e3e3e3", "#777777"
BAR, RIGHT = "#7986cb", "#2e7d32"  # the page's tally colours (ui.predictions): a choice, and the one the runs proved
MARKERS_UP_TO = 40  # points per line drawn as dots too: a curve of a few snapshots shows where each one is

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def font(size: int) -> Font:
    """Pillow's own scalable font (no system font needed); Pillow 10.0, the floor, has only a small bitmap one. Made
    afresh (0.3 ms): a FreeType face is not to be shared between threads, and two downloads may draw at once."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: no size argument
        return ImageFont.load_default()


@dataclass(frozen=True)
class Line:
    """One curve: its legend label, its points (NaN breaks the line) and its colour ("#rrggbb")."""

    label: str
    x: Sequence[float]
    y: Sequence[float]
    color: str


def _text_size(draw: ImageDraw.ImageDraw, text: str, f: Font) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=f)
    return int(right - left), int(bottom - top)


def nice_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """Round numbers (1, 2 or 5 times a power of ten apart) from lo to hi, about `count` of them."""
    span = hi - lo
    if not (math.isfinite(span) and span > 0):
        return [lo]
    raw = span / max(1, count - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [round(first + i * step, 12) for i in range(int((hi - first) / step + 1e-9) + 1)]


def _linear_label(step: float) -> Callable[[float], str]:
    digits = max(0, -math.floor(math.log10(step))) if step > 0 else 0
    return lambda v: f"{v:,.{digits}f}"


def ratio_label(v: float) -> str:
    """A log axis's tick as a number to read aloud: 0.001 → '1/1,000', 10 → '10'."""
    return f"1/{1 / v:,.0f}" if v < 1 else f"{v:,.0f}"


def _log_ticks(lo: float, hi: float) -> list[float]:
    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    every = max(1, math.ceil((last - first + 1) / 8))  # at most ~8 labels, however many decades
    return [10.0 ** p for p in range(first, last + 1, every)]


def _range(values: np.ndarray, fixed: tuple[float, float] | None, log: bool,
           pad_by: float = 0.05) -> tuple[float, float] | None:
    if fixed is not None:
        return fixed
    finite = values[np.isfinite(values) & ((values > 0) if log else True)]
    if not len(finite):
        return None
    lo, hi = float(finite.min()), float(finite.max())
    if log:
        return (10.0 ** math.floor(math.log10(lo)), 10.0 ** math.ceil(math.log10(hi)) if hi > lo else lo * 10)
    if lo == hi:
        pad = abs(lo) * 0.1 or 1.0
        return lo - pad, hi + pad
    pad = (hi - lo) * pad_by
    return lo - pad, hi + pad


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _title(draw: ImageDraw.ImageDraw, title: str, subtitle: str, width: int) -> int:
    """The title (wrapped) and a smaller subtitle at the top left; returns the y below them."""
    y = 20
    for text, size, color in ((title, 30, INK), (subtitle, 20, FAINT)):
        f = font(size)
        wrap = max(20, int(len(text) * (width - 60) / max(1, _text_size(draw, text, f)[0]))) if text else 1
        for line in textwrap.wrap(text, wrap):
            draw.text((30, y), line, fill=color, font=f)
            y += _text_size(draw, "Ag", f)[1] + 10
    return y


def line_chart(lines: Sequence[Line], *, title: str, x_title: str, y_title: str, subtitle: str = "",
               log_y: bool = False, y_range: tuple[float, float] | None = None,
               y_label: Callable[[float], str] | None = None, size: tuple[int, int] = SIZE) -> bytes:
    """A PNG of `lines` on shared axes, with a title, axis titles, tick labels and a legend. `log_y`: a logarithmic y
    axis (points ≤ 0 left out); `y_range`: fixed y limits (e.g. 0 to 10 digits), else the data's."""
    width, height = size
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    top = _title(draw, title, subtitle, width)
    # the legend: a swatch and a label per line, in one row under the title
    legend_font, x = font(22), 30
    for line in lines:
        w, h = _text_size(draw, line.label, legend_font)
        draw.rectangle((x, top + 6, x + 28, top + 12), fill=line.color)
        draw.text((x + 36, top - 2), line.label, fill=INK, font=legend_font)
        x += 36 + w + 40
    top += 40

    xs = np.concatenate([np.asarray(line.x, dtype=np.float64) for line in lines]) if lines else np.array([])
    ys = np.concatenate([np.asarray(line.y, dtype=np.float64) for line in lines]) if lines else np.array([])
    x_span, y_span = _range(xs, None, False, pad_by=0.01), _range(ys, y_range, log_y)  # steps: a hair of margin
    tick_font = font(20)
    if y_span is not None:
        y_ticks = _log_ticks(*y_span) if log_y else nice_ticks(*y_span)
        label = y_label or (ratio_label if log_y else _linear_label(y_ticks[1] - y_ticks[0] if len(y_ticks) > 1 else 1))
        y_texts = [label(v) for v in y_ticks]
    else:
        y_ticks, y_texts = [], []
    left = 30 + 40 + max([_text_size(draw, t, tick_font)[0] for t in y_texts] or [0]) + 12
    right, bottom = width - 40, height - 90
    draw.rectangle((left, top, right, bottom), outline=INK, width=2)
    _axis_title(image, y_title, (30, (top + bottom) // 2))
    w, _ = _text_size(draw, x_title, font(22))
    draw.text(((left + right - w) // 2, height - 40), x_title, fill=INK, font=font(22))
    if x_span is None or y_span is None:
        message = "No records yet"
        w, h = _text_size(draw, message, font(26))
        draw.text(((left + right - w) // 2, (top + bottom - h) // 2), message, fill=FAINT, font=font(26))
        return _png(image)

    def to_y(v: float) -> float:
        lo, hi = (math.log10(y_span[0]), math.log10(y_span[1])) if log_y else y_span
        value = math.log10(v) if log_y else v
        return bottom - (value - lo) / (hi - lo) * (bottom - top)

    def to_x(v: float) -> float:
        return left + (v - x_span[0]) / (x_span[1] - x_span[0]) * (right - left)

    for v, text in zip(y_ticks, y_texts, strict=True):
        y = to_y(v)
        if top - 1 <= y <= bottom + 1:
            draw.line((left + 2, y, right - 2, y), fill=GRID, width=1)
            tw, th = _text_size(draw, text, tick_font)
            draw.text((left - 10 - tw, y - th / 2 - 4), text, fill=INK, font=tick_font)
    x_ticks = nice_ticks(*x_span, count=8)
    x_text = _linear_label(x_ticks[1] - x_ticks[0] if len(x_ticks) > 1 else 1)
    for v in x_ticks:
        x = to_x(v)
        draw.line((x, bottom, x, bottom + 8), fill=INK, width=2)
        tw, _ = _text_size(draw, x_text(v), tick_font)
        draw.text((x - tw / 2, bottom + 12), x_text(v), fill=INK, font=tick_font)

    for line in lines:
        points = [(to_x(x), to_y(y)) if math.isfinite(x) and math.isfinite(y) and (y > 0 or not log_y) else None
                  for x, y in zip(np.asarray(line.x, float), np.asarray(line.y, float), strict=True)]
        for part in _runs(points):
            if len(part) > 1:
                draw.line(part, fill=line.color, width=4, joint="curve")
        if len(points) <= MARKERS_UP_TO:
            for p in points:
                if p is not None:
                    draw.ellipse((p[0] - 5, p[1] - 5, p[0] + 5, p[1] + 5), fill=line.color)
    return _png(image)


def _runs(points: list[tuple[float, float] | None]) -> list[list[tuple[float, float]]]:
    """The stretches of a line between its missing points."""
    parts: list[list[tuple[float, float]]] = [[]]
    for p in points:
        if p is None:
            parts.append([])
        else:
            parts[-1].append(p)
    return [part for part in parts if part]


def _axis_title(image: Image.Image, text: str, at: tuple[int, int]) -> None:
    """`text` turned a quarter left, centred vertically on `at` (the y axis's title)."""
    f = font(22)
    probe = ImageDraw.Draw(image)
    w, h = _text_size(probe, text, f)
    label = Image.new("RGB", (w + 4, h + 10), "white")
    ImageDraw.Draw(label).text((2, 0), text, fill=INK, font=f)
    turned = label.rotate(90, expand=True)
    image.paste(turned, (at[0], max(0, at[1] - turned.height // 2)))


def bar_chart(bars: Mapping[str, int], *, title: str, subtitle: str = "", highlight: str | None = None,
              size: tuple[int, int] = SIZE) -> bytes:
    """A PNG of one horizontal bar per item, in order, its count at its end; `highlight` (the answer the runs gave) in
    green, the others in the page's blue."""
    width, height = size
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    top = _title(draw, title, subtitle, width) + 10
    label_font = font(24)
    left = 30 + max([_text_size(draw, name, label_font)[0] for name in bars] or [0]) + 20
    right = width - 90
    most = max([*bars.values(), 1])
    row = (height - 30 - top) / max(1, len(bars))
    for i, (name, count) in enumerate(bars.items()):
        y0 = top + i * row + row * 0.15
        y1 = top + (i + 1) * row - row * 0.15
        tw, th = _text_size(draw, name, label_font)
        draw.text((left - 20 - tw, (y0 + y1) / 2 - th / 2 - 4), name, fill=INK, font=label_font)
        end = left + (right - left) * count / most
        if count > 0:
            draw.rectangle((left, y0, end, y1), fill=RIGHT if name == highlight else BAR)
        draw.text((end + 10, (y0 + y1) / 2 - th / 2 - 4), f"{count:,}", fill=INK, font=label_font)
    draw.line((left, top, left, height - 30), fill=INK, width=2)
    return _png(image)
