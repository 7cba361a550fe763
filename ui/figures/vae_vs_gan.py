"""Figures of the VAE-vs-GAN page: the two architectures as Graphviz diagrams, the VAE's loss curve, and its 2D latent
space coloured by digit (ui.style.DIGIT_COLORS, as on the Controllable-generation page). Pure functions: no streamlit."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go

from ui.style import (
    D_COLOR,
    DIGIT_COLORS,
    FAKE_COLOR,
    G_COLOR,
    LEGEND_TOP,
    MARGIN,
    NEUTRAL_FILL,
    REAL_COLOR,
    VAE_COLOR,
    VAE_LOSS_COLORS,
)

LOSS_NAMES = {"loss": "total (−ELBO)", "reconstruction": "reconstruction (BCE)", "kl": "KL to N(0, I)"}

_DOT_HEAD = """digraph {{
  rankdir=TB; bgcolor="transparent"; nodesep=0.3; ranksep=0.3;
  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=13, fillcolor="white", width=1.6];
  edge [fontname="Helvetica", fontsize=11, color="#555555"];
{body}
}}"""


def vae_dot() -> str:
    """The VAE top to bottom: an image squeezed through a 2D code and rebuilt, the rebuild compared with the image."""
    return _DOT_HEAD.format(body=f"""
  x [label="image x", fillcolor="{REAL_COLOR}33"];
  enc [label="encoder q(z|x)", fillcolor="{VAE_COLOR}33"];
  lat [label="latent space\\nz = μ + σ·ε", shape=ellipse, fillcolor="{NEUTRAL_FILL}"];
  dec [label="decoder p(x|z)", fillcolor="{VAE_COLOR}33"];
  rec [label="reconstruction x̂", fillcolor="{FAKE_COLOR}22"];
  x -> enc -> lat -> dec -> rec;
  rec -> x [label="  compare pixel\\n  by pixel (BCE)", style=dashed, constraint=false];""")


def gan_dot() -> str:
    """The GAN top to bottom: noise through G to a fake, D judges fakes and real images, its verdict teaches G."""
    return _DOT_HEAD.format(body=f"""
  noise [label="noise z ~ N(0, I)", shape=ellipse, fillcolor="{NEUTRAL_FILL}"];
  gen [label="generator G(z)", fillcolor="{G_COLOR}33"];
  fake [label="fake image", fillcolor="{FAKE_COLOR}22"];
  real [label="real image x", fillcolor="{REAL_COLOR}33"];
  disc [label="discriminator D", fillcolor="{D_COLOR}33"];
  verdict [label="real or fake?", shape=diamond, fillcolor="white"];
  noise -> gen -> fake -> disc -> verdict;
  real -> disc;
  {{rank=same; fake; real}}
  verdict -> gen [label="  D's gradient:\\n  look more real", style=dashed, constraint=false];""")


def loss_figure(history: Mapping[str, np.ndarray], *, height: int = 300) -> go.Figure:
    """The VAE's training: the negative ELBO and its two terms (nats per image) against the update step."""
    fig = go.Figure()
    for key in ("loss", "reconstruction", "kl"):
        fig.add_trace(go.Scatter(x=np.asarray(history["step"]), y=np.asarray(history[key], dtype=np.float64),
                                 mode="lines", name=LOSS_NAMES[key], line=dict(color=VAE_LOSS_COLORS[key], width=2)))
    fig.update_layout(height=height, margin=MARGIN, xaxis_title="update step", yaxis_title="nats per image", legend=LEGEND_TOP,
                      template="plotly_white")
    return fig


def latent_figure(mu: np.ndarray, labels: np.ndarray, *, height: int = 460) -> go.Figure:
    """Each image's code μ(x) as a dot, one colour per digit, over the prior's 1σ and 2σ circles."""
    mu = np.asarray(mu, dtype=np.float32)
    labels = np.asarray(labels)
    if mu.ndim != 2 or mu.shape[1] < 2 or len(mu) != len(labels):
        raise ValueError(f"expected (N, ≥2) codes and N labels, got {mu.shape} and {labels.shape}")
    fig = go.Figure()
    t = np.linspace(0, 2 * np.pi, 121)
    for r in (1, 2):
        fig.add_trace(go.Scatter(x=r * np.cos(t), y=r * np.sin(t), mode="lines", hoverinfo="skip", showlegend=r == 1,
                                 name="prior 1σ, 2σ", line=dict(color="#999999", width=1, dash="dot")))
    for k in np.unique(labels):
        sel = labels == k
        fig.add_trace(go.Scattergl(x=mu[sel, 0], y=mu[sel, 1], mode="markers", name=str(k),
                                   marker=dict(size=5, color=DIGIT_COLORS[int(k) % len(DIGIT_COLORS)], opacity=0.75),
                                   hovertemplate=f"digit {k}<br>z₁ %{{x:.2f}}, z₂ %{{y:.2f}}<extra></extra>"))
    fig.update_layout(height=height, margin=MARGIN, template="plotly_white", legend_title_text="digit",
                      xaxis=dict(title="z₁", zeroline=False), yaxis=dict(title="z₂", zeroline=False, scaleanchor="x"))
    return fig


def latent_grid(n: int = 10, span: float = 2.0) -> np.ndarray:
    """An n × n lattice of 2D codes over [−span, span]², rows from top (z₂ high) to bottom, for decoding as a picture."""
    axis = np.linspace(-span, span, n, dtype=np.float32)
    z2, z1 = np.meshgrid(axis[::-1], axis, indexing="ij")
    return np.stack([z1.ravel(), z2.ravel()], axis=1)


def latent_note(latent_dim: int, gan_z: int) -> str:
    """Why the page offers two latent sizes: like with like, or a latent space small enough to draw."""
    if latent_dim == gan_z:
        return (f"Like with like: this VAE and the default GAN both turn {gan_z} random numbers into a digit. Its "
                "latent space cannot be drawn; the 2-D one below stands in for it.")
    # measured on the bundled digits (1,000 updates each, seed 0, 512 samples): sharpness 0.67 with a 2-D code, 0.68
    # with a 32-D one, real digits 0.79: the blur is the pixel-wise loss's, hardly the small code's
    return (f"A 2-D code can be drawn, but the default GAN's z has {gan_z} numbers: not like with like. Pick {gan_z}-D "
            "to compare them fairly. Measured when this page was written (the bundled digits, 1,000 updates each, "
            "seed 0, 512 samples), the 32-D VAE's samples were hardly sharper than the 2-D one's: 0.68 against 0.67 in "
            "sharpness (mean |2x − 1| over pixels: 1 for pure black and white), real digits 0.79. The blur comes from "
            "the pixel-wise loss, not from the small code.")

