"""The Home page's picture: a GAN in one Graphviz diagram, D's and G's updates in their own colours (ui.style)."""

from __future__ import annotations

from ui.style import D_COLOR, D_FILL, FAKE_FILL, G_COLOR, G_FILL, NEUTRAL_FILL, REAL_FILL


def gan_diagram() -> str:
    """Noise through G to a fake, D judging fakes and real examples, and the two updates its verdict drives."""
    return f"""
digraph gan {{
  rankdir=LR; bgcolor="transparent"; nodesep=0.3; ranksep=0.4;
  node [fontname="Helvetica", fontsize=10, style="rounded,filled", shape=box];
  edge [fontname="Helvetica", fontsize=10];
  z [label="noise z", shape=ellipse, fillcolor="{NEUTRAL_FILL}"];
  G [label="Generator G", fillcolor="{G_FILL}"];
  fake [label="fake G(z)", shape=note, fillcolor="{FAKE_FILL}"];
  real [label="real x", shape=note, fillcolor="{REAL_FILL}"];
  D [label="Discriminator D", fillcolor="{D_FILL}"];
  out [label="D(·): real?\\n0 … 1", shape=ellipse, fillcolor="{NEUTRAL_FILL}"];
  z -> G -> fake -> D; real -> D; D -> out;
  // Streamlit draws labels at ~10 px whatever fontsize says and scales the picture to the page's width: short labels
  // on edges that do not set the ranks, since a long one widened the row and so shrank everything in it
  out -> D [label="D's update", style=dashed, color="{D_COLOR}", fontcolor="{D_COLOR}", constraint=false];
  out -> G [label="G's update", style=dashed, color="{G_COLOR}", fontcolor="{G_COLOR}", constraint=false];
}}
"""
