"""Figures of the BCE-loss page: the loss's two terms over the prediction h, and G's two losses with their gradients.

Pure functions (arrays in, plotly figures out); every number they plot comes from gan_core.lessons.explain.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from gan_core.lessons import explain
from ui.style import D_COLOR, FAKE_COLOR, G_COLOR, LEGEND_TOP, MARGIN, REAL_COLOR

H = np.linspace(0.001, 0.999, 400)  # the prediction's range, short of 0 and 1 where the logs are infinite


def bce_curves(y: int, h: float, *, height: int = 340) -> go.Figure:
    """Both terms' losses over h, the chosen label's loss bold, and a marker at (h, loss)."""
    real = -explain.bce_terms(np.ones_like(H), H)[0]  # −log h: the loss on a real example (y = 1)
    fake = -explain.bce_terms(np.zeros_like(H), H)[1]  # −log(1 − h): the loss on a fake example (y = 0)
    loss_here = float(explain.bce(y, h))
    fig = go.Figure([
        go.Scatter(x=H, y=real, name="y = 1 (real): −log h", mode="lines",
                   line=dict(color=REAL_COLOR, width=3.5 if y == 1 else 1.5)),
        go.Scatter(x=H, y=fake, name="y = 0 (fake): −log(1 − h)", mode="lines",
                   line=dict(color=FAKE_COLOR, width=3.5 if y == 0 else 1.5)),
        go.Scatter(x=[h], y=[loss_here], name=f"h = {h:.3g}: loss {loss_here:.4g}", mode="markers",
                   marker=dict(size=12, color="black")),
    ])
    fig.update_layout(height=height, margin=MARGIN, legend=LEGEND_TOP, xaxis_title="prediction h = D(x)",
                      yaxis_title="loss", yaxis_range=[0, 7], uirevision="bce")
    return fig


def g_losses(*, height: int = 320) -> go.Figure:
    """G's two losses over D(G(z)): minimax log(1 − D(G(z))) and non-saturating −log D(G(z))."""
    fig = go.Figure([
        go.Scatter(x=H, y=explain.g_loss_minimax(H), name="minimax: log(1 − D(G(z)))", mode="lines",
                   line=dict(color=D_COLOR, width=2.5)),
        go.Scatter(x=H, y=explain.g_loss_non_saturating(H), name="non-saturating: −log D(G(z))", mode="lines",
                   line=dict(color=G_COLOR, width=2.5)),
    ])
    fig.update_layout(height=height, margin=MARGIN, legend=LEGEND_TOP, xaxis_title="D(G(z)): D's belief a fake is real",
                      yaxis_title="G's loss (G minimises it)", yaxis_range=[-7, 7], uirevision="gloss")
    return fig


def g_gradients(*, height: int = 320) -> go.Figure:
    """The size of each loss's gradient with respect to D's logit: where G still learns, and where it stalls."""
    minimax = np.abs(explain.g_grad_logit_minimax(H))
    non_sat = np.abs(explain.g_grad_logit_non_saturating(H))
    fig = go.Figure([
        go.Scatter(x=H, y=minimax, name="minimax: |∂/∂l| = D(G(z))", mode="lines", line=dict(color=D_COLOR, width=2.5)),
        go.Scatter(x=H, y=non_sat, name="non-saturating: |∂/∂l| = 1 − D(G(z))", mode="lines",
                   line=dict(color=G_COLOR, width=2.5)),
    ])
    # early in training D rejects fakes with confidence: the left edge, where the minimax gradient is ~0
    fig.add_vrect(x0=0, x1=0.1, fillcolor="grey", opacity=0.15, line_width=0,
                  annotation_text="early training: D wins", annotation_position="top left")
    fig.update_layout(height=height, margin=MARGIN, legend=LEGEND_TOP, xaxis_title="D(G(z))",
                      yaxis_title="gradient size w.r.t. D's logit", yaxis_range=[0, 1.05], uirevision="ggrad")
    return fig
