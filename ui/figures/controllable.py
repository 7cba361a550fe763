"""Figures of the Controllable-generation page: pure functions from gan_core.lessons.control results to images and
plotly figures. Digits keep their colours from ui.style.DIGIT_COLORS, as in the VAE page's latent space."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from gan_core.lessons.ascent_steps import LAB_IMAGES, LAB_WEIGHT, lab_weight, step_size_from_lab
from gan_core.lessons.control import AscentResult
from ui.figures.images import image_rows
from ui.style import DIGIT_COLORS, HIGHLIGHT_COLOR, LEGEND_TOP_RIGHT, PATH_COLORS, TITLED_MARGIN


def ascent_grid(result: AscentResult, min_size: int = 480) -> bytes:
    """The course lab's picture: columns = samples, rows = ascent steps (step 0, the starting z, on top)."""
    return image_rows(result.images, min_size)


def others_sentence(change: np.ndarray, target: int, threshold: float = 0.01) -> str:
    """What happened to the other digits' mean probabilities, in words: the largest fall, and any that rose."""
    others = sorted((c for c in range(len(change)) if c != target), key=lambda c: change[c])
    fell = f"Other digits: {others[0]} fell the most ({change[others[0]]:+.2f})"
    rose = [c for c in reversed(others) if change[c] > threshold]
    if not rose:
        return fell + f", and none rose by more than {threshold}: the target took its probability from them."
    listed = ", ".join(f"{c} ({change[c]:+.2f})" for c in rose[:3])
    return (fell + f"; {listed} rose on the way to {target}: the images passed through shapes the classifier also "
            "reads as those digits. That is not by itself entanglement (one z direction changing several features): "
            "“Other logits moved” measures that.")


def step_sentence(step_size: float, n: int) -> str:
    """The step size in the course lab's convention: the lab averages the score over its images before the gradient."""
    return (f"Step size: η = {step_size:g} on each sample's own score is the lab's weight {lab_weight(step_size, n):g} "
            f"on the mean over these {n} samples; the lab's own step ({LAB_WEIGHT:g} on the mean over {LAB_IMAGES} "
            f"images) is η = {step_size_from_lab():g}.")


def class_prob_figure(result: AscentResult, height: int = 340) -> go.Figure:
    """Mean probability of each class over the ascent steps, each digit in its colour and the target bold with markers:
    the target rises, and the others share what is left (softmax probabilities sum to 1)."""
    steps = np.arange(len(result.probs))
    mean = result.probs.mean(1)  # (steps + 1, n_classes)
    fig = go.Figure()
    for c in range(mean.shape[1]):
        target = c == result.target
        fig.add_trace(go.Scatter(
            x=steps, y=mean[:, c], mode="lines+markers" if target else "lines", name=f"{c} (target)" if target else str(c),
            line=dict(color=DIGIT_COLORS[c % len(DIGIT_COLORS)], width=4 if target else 1.5),
            hovertemplate=f"digit {c}<br>step %{{x}}: %{{y:.2f}}<extra></extra>"))
    fig.update_layout(height=height, margin=TITLED_MARGIN, title="Mean probability of each digit, step by step",
                      xaxis=dict(title="ascent step", dtick=max(1, len(steps) // 10)),
                      yaxis=dict(title="classifier's probability", range=[0, 1]), legend=dict(title="digit"))
    return fig


def target_heatmap(result: AscentResult, height: int = 340) -> go.Figure:
    """The target's probability for each sample (columns) at each step (rows, step 0 on top), laid out like the grid."""
    p = result.probs[:, :, result.target]
    fig = go.Figure(go.Heatmap(
        z=p, x=[str(i + 1) for i in range(p.shape[1])], y=list(range(p.shape[0])), zmin=0, zmax=1,
        colorscale="Oranges", colorbar=dict(title="p"), hovertemplate="sample %{x}, step %{y}: %{z:.2f}<extra></extra>"))
    fig.update_layout(height=height, margin=TITLED_MARGIN, title=f"p(digit {result.target}) per sample",
                      xaxis=dict(title="sample", type="category"), yaxis=dict(title="ascent step", autorange="reversed"))
    return fig


def norm_figure(ts: np.ndarray, norms: dict[str, np.ndarray], t: float, typical: float, height: int = 280) -> go.Figure:
    """‖z‖ along each interpolation path, against the norm a typical Gaussian z has (≈ √d)."""
    fig = go.Figure()
    for i, (name, values) in enumerate(norms.items()):
        fig.add_trace(go.Scatter(x=ts, y=values, mode="lines", name=name,
                                 line=dict(width=3, color=PATH_COLORS[i % len(PATH_COLORS)])))
    fig.add_hline(y=typical, line=dict(dash="dot", color="grey"), annotation_text=f"typical length √d = {typical:.2f}",
                  annotation_position="top left")
    fig.add_vline(x=t, line=dict(color=HIGHLIGHT_COLOR, width=2))
    fig.update_layout(height=height, margin=TITLED_MARGIN, title="Length of z along the path",
                      xaxis=dict(title="t", range=[0, 1]), yaxis=dict(title="length of z", rangemode="tozero"),
                      legend=LEGEND_TOP_RIGHT)
    return fig


def label_prob_figure(ts: np.ndarray, probs: np.ndarray, class_a: int, class_b: int, t: float,
                      height: int = 280) -> go.Figure:
    """The classifier's probability of the two classes as the soft label slides from e_a (t = 0) to e_b (t = 1)."""
    fig = go.Figure()
    for c in (class_a, class_b):
        fig.add_trace(go.Scatter(x=ts, y=probs[:, c], mode="lines+markers", name=f"p(digit {c})",
                                 line=dict(width=3, color=DIGIT_COLORS[c % len(DIGIT_COLORS)])))
    fig.add_vline(x=t, line=dict(color="grey", width=2, dash="dot"))
    fig.update_layout(height=height, margin=TITLED_MARGIN, title="What the classifier sees along the label path",
                      xaxis=dict(title="t (label weight on the second digit)", range=[0, 1]),
                      yaxis=dict(title="probability", range=[0, 1]), legend=LEGEND_TOP_RIGHT)
    return fig
