"""The 2D plane's colours stay readable in every state of training, for colour-blind eyes too.

Two checks, on ui/style.py's PLANE_* values: each mark (real data, G's samples, G's arrows) keeps a contrast of at least
3:1 (WCAG 2.1's figure for graphical objects, 1.4.11) over every colour D's map can take, so no state of D hides it;
and the marks, and the map's two sides, stay apart under simulated deuteranopia, protanopia and tritanopia (Machado,
Oliveira and Fernandes 2009, severity 1, applied in linear RGB).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ui import style

# Machado et al. (2009), severity 1.0: linear RGB → linear RGB as seen with the cone type missing.
CVD = {
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                              [-0.011820, 0.042940, 0.968881]]),
    "protanopia": np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                            [-0.003882, -0.048116, 1.051998]]),
    "tritanopia": np.array([[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                            [0.004733, 0.691367, 0.303900]]),
}
MIN_CONTRAST = 3.0  # WCAG 2.1, 1.4.11 non-text contrast
MIN_DELTA_E = 20.0  # CIE76 distance: two marks this far apart are told apart at a glance (2.3 is "just noticeable")
MARKS = {"real data": style.PLANE_REAL, "generated": style.PLANE_FAKE, "G's push": style.PLANE_ARROW}


def _rgb(color: str) -> np.ndarray:
    h = color.lstrip("#")
    return np.array([int(h[i:i + 2], 16) / 255 for i in (0, 2, 4)])


def _linear(rgb: np.ndarray) -> np.ndarray:
    return np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


def _lab(linear: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of a linear-RGB colour."""
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ linear
    t = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _seen(color: str, vision: str) -> np.ndarray:
    linear = _linear(_rgb(color))
    return linear if vision == "normal" else np.clip(CVD[vision] @ linear, 0.0, 1.0)


def delta_e(a: str, b: str, vision: str = "normal") -> float:
    return float(np.linalg.norm(_lab(_seen(a, vision)) - _lab(_seen(b, vision))))


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio, (L1 + 0.05) / (L2 + 0.05) of relative luminances, lighter over darker."""
    la, lb = sorted(float(_linear(_rgb(c)) @ [0.2126, 0.7152, 0.0722]) for c in (a, b))
    return (lb + 0.05) / (la + 0.05)


def field_colors(n: int = 41) -> list[str]:
    """n colours along PLANE_FIELD_SCALE, interpolated in RGB between its stops as plotly does."""
    positions = [p for p, _ in style.PLANE_FIELD_SCALE]
    stops = np.array([_rgb(c) for _, c in style.PLANE_FIELD_SCALE])
    out = []
    for v in np.linspace(0.0, 1.0, n):
        rgb = [np.interp(v, positions, stops[:, k]) for k in range(3)]
        out.append("#" + "".join(f"{round(c * 255):02x}" for c in rgb))
    return out


def test_the_checks_can_fail():
    # red against green, D3's: plain to most eyes, close to a deuteranope's or protanope's
    assert delta_e("#d62728", "#2ca02c") > 60
    assert delta_e("#d62728", "#2ca02c", "deuteranopia") < MIN_DELTA_E
    # G's dark orange (the arrows' first candidate, dark enough for contrast) against the data's green, to a protanope
    assert delta_e(style.G_SHADES[4], style.PLANE_REAL) > 60
    assert delta_e(style.G_SHADES[4], style.PLANE_REAL, "protanopia") < MIN_DELTA_E
    # the plane as it was: purple samples on the full PRGn map's "fake" end, G's orange arrows on its white middle
    assert contrast(style.FAKE_COLOR, "#40004b") < MIN_CONTRAST
    assert contrast(style.G_COLOR, "#f7f7f7") < MIN_CONTRAST
    assert contrast("#ffffff", "#000000") == pytest.approx(21.0)


@pytest.mark.parametrize("mark", list(MARKS))
def test_every_mark_stands_out_on_every_colour_of_ds_map(mark):
    worst = min(field_colors(), key=lambda bg: contrast(MARKS[mark], bg))
    assert contrast(MARKS[mark], worst) >= MIN_CONTRAST, f"{mark} on {worst}"


@pytest.mark.parametrize("vision", ["normal", *CVD])
def test_marks_and_the_maps_two_sides_stay_apart(vision):
    for (a, ca), (b, cb) in itertools.combinations(MARKS.items(), 2):
        assert delta_e(ca, cb, vision) >= MIN_DELTA_E, f"{a} against {b}, {vision}"
    fake_end, real_end = style.PLANE_FIELD_SCALE[0][1], style.PLANE_FIELD_SCALE[-1][1]
    assert delta_e(fake_end, real_end, vision) >= MIN_DELTA_E
    middle = style.PLANE_FIELD_SCALE[1][1]  # D = 0.5, "can't tell", must read apart from both sides
    assert min(delta_e(middle, fake_end, vision), delta_e(middle, real_end, vision)) >= 10.0
