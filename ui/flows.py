"""The two updates of one training step as Graphviz diagrams (C1W1's "putting it all together"): D's, with G frozen,
and G's, with D frozen. Each network's parts in its colour (ui.style); the frozen network greyed and dashed.

Pure functions returning DOT text for st.graphviz_chart. Drawn left to right, one diagram per row, so their labels stay
readable on a 1280×720 projector.
"""

from __future__ import annotations

from ui.style import D_COLOR, D_FILL, FAKE_FILL, G_COLOR, G_FILL, NEUTRAL_FILL, REAL_FILL

FROZEN_FILL = "#f5f5f5"
_HEAD = """  rankdir=LR; bgcolor="transparent"; nodesep=0.2; ranksep=0.25;
  node [fontname="Helvetica", fontsize=10, style="rounded,filled", shape=box];
  edge [penwidth=1.2];"""
# Streamlit draws every label at its own small font size (about 10 px) whatever fontsize says, then scales the whole
# picture to the page's width: so fontsize matches its font (boxes fit their text), and no edge carries a label, which
# would widen the row and shrink everything in it.


def d_update_flow() -> str:
    """D's update: real examples and G's fakes through D; BCE against 1 for real, 0 for fake; only θ_d changes."""
    return f"""
digraph d_update {{
{_HEAD}
  z [label="noise z", shape=ellipse, fillcolor="{NEUTRAL_FILL}"];
  G [label="G (frozen)", fillcolor="{FROZEN_FILL}", style="rounded,filled,dashed", fontcolor="#555555"];
  fake [label="fakes\\nX̂ = G(z)", shape=note, fillcolor="{FAKE_FILL}"];
  real [label="real\\nexamples x", shape=note, fillcolor="{REAL_FILL}"];
  D [label="D", fillcolor="{D_FILL}"];
  out [label="Ŷ_d = D(·)", shape=ellipse, fillcolor="{NEUTRAL_FILL}"];
  bce [label="BCE\\nreal against 1\\nfakes against 0", fillcolor="{NEUTRAL_FILL}"];
  step [label="update θ_d", shape=box, style="filled,bold", fillcolor="{D_FILL}", color="{D_COLOR}"];
  z -> G -> fake -> D; real -> D; D -> out -> bce -> step;
  step -> D [style=dashed, color="{D_COLOR}", constraint=false];
}}
"""


def g_update_flow() -> str:
    """G's update: z → G → X̂ → D → Ŷ_d, BCE against the label 1 ("real"), and only θ_g changes (D is frozen)."""
    return f"""
digraph g_update {{
{_HEAD}
  z [label="noise z", shape=ellipse, fillcolor="{NEUTRAL_FILL}"];
  G [label="G", fillcolor="{G_FILL}"];
  fake [label="fakes\\nX̂ = G(z)", shape=note, fillcolor="{FAKE_FILL}"];
  D [label="D (frozen)", fillcolor="{FROZEN_FILL}", style="rounded,filled,dashed", fontcolor="#555555"];
  out [label="Ŷ_d = D(X̂)", shape=ellipse, fillcolor="{NEUTRAL_FILL}"];
  bce [label="BCE\\nagainst label 1\\n(\\"real\\")", fillcolor="{NEUTRAL_FILL}"];
  step [label="update\\nθ_g only", shape=box, style="filled,bold", fillcolor="{G_FILL}", color="{G_COLOR}"];
  z -> G -> fake -> D -> out -> bce -> step;
  step -> G [style=dashed, color="{G_COLOR}", constraint=false];
}}
"""
