"""BCE loss: the discriminator's cost, term by term, the generator's two ways of reading it, and a live run's numbers."""

import math
from functools import partial

import numpy as np
import pandas as pd
import streamlit as st

from gan_core.config import Loss
from gan_core.lessons import explain, game
from gan_core.runs.state import RunSnapshot
from ui import course, live, panels
from ui.figures import bce_loss
from ui.plotly_chart import plotly_chart

EXAMPLE = (0.8, 0.3)  # D's output on one real example and on one fake, for the worked V and J

st.title("Binary cross-entropy")
st.write("D is a classifier: it outputs h = D(x), its belief that x is real. BCE scores that belief against the label "
         "y (1 for real, 0 for fake).")
st.caption("The symbols, as in the course notes: **h** = h(x, θ), the model's prediction (here D's output, between 0 and "
           "1); **y**, the true label; **θ**, the model's parameters (here D's weights θ_d); **x⁽ⁱ⁾**, the features of "
           "example i (an image, or a 2D point); **m**, the number of examples in a batch.")

# -- 1. the two terms ---------------------------------------------------------------------------------------------------
st.subheader("One prediction")
plot, controls = st.columns([5, 4])  # the controls column is wide enough for L(h, y) on one line
with controls:
    st.latex(r"L(h, y) = -\big[\,y \log h + (1 - y)\log(1 - h)\,\big]")
    y = 1 if st.toggle("The example is real (y = 1)", value=True, key="bce_y") else 0
    h = st.slider("D's prediction h", 0.001, 0.999, 0.9, step=0.001, format="%.3f", key="bce_h")
    term_real, term_fake = explain.bce_terms(y, h)
    loss = float(explain.bce(y, h))
    st.latex(rf"y\log h = {float(term_real):.4g}")
    st.latex(rf"(1-y)\log(1-h) = {float(term_fake):.4g}")
    st.metric("loss", f"{loss:.4g}")
    st.caption("Only one term is ever non-zero: y picks it. Each log is ≤ 0 and heads to −∞ when the prediction is "
               "badly wrong: the notes' \"→ −∞ is bad\". The leading minus turns that into a positive cost to "
               "minimise: every BCE loss on this page and in training is ≥ 0, lower is better. A confident right "
               "answer costs almost nothing, a confident wrong one (h → 0 for a real example) costs −log h, without bound.")
with plot:
    plotly_chart(("bce_curves", y, h), partial(bce_loss.bce_curves, y, h), key="bce_curves")

# -- 2. a batch ---------------------------------------------------------------------------------------------------------
st.subheader("A batch: the cost J(θ)")
st.latex(r"J(\theta) = -\frac{1}{m}\sum_{i=1}^{m}\big[\,y^{(i)}\log h(x^{(i)},\theta) + "
         r"(1 - y^{(i)})\log\big(1 - h(x^{(i)},\theta)\big)\big]")
st.write("D's last layer gives a raw score l, any real number, called the **logit**; the sigmoid "
         "h = σ(l) = 1 / (1 + e^(−l)) turns it into the probability h. Frameworks compute BCE straight from the logit: "
         "the same loss, without ever taking log(0).")
use_logits = st.toggle("Enter D's raw outputs (logits) instead of probabilities", key="bce_logits",
                       help="The logit l is D's score before the sigmoid: h = σ(l).")
column = "logit l" if use_logits else "h"
default = pd.DataFrame({"y": [1, 1, 0, 0], column: [2.2, -1.4, -3.0, 0.4] if use_logits else [0.9, 0.2, 0.05, 0.6]})
rows = st.data_editor(default, num_rows="dynamic", key=f"bce_batch_{column}", hide_index=True,
                      column_config={"y": st.column_config.NumberColumn("y (1 real, 0 fake)", min_value=0, max_value=1,
                                                                        step=1)})
try:
    values = rows.dropna()
    cost = (explain.batch_cost(values["y"].to_numpy(float), logits=values[column].to_numpy(float)) if use_logits
            else explain.batch_cost(values["y"].to_numpy(float), values[column].to_numpy(float)))
except (ValueError, KeyError) as err:
    st.error(f"The batch cannot be scored: {err}")
else:
    table = pd.DataFrame({"y": cost.y, "h": np.round(cost.h, 4), "y·log h": np.round(cost.term_real, 4),
                          "(1−y)·log(1−h)": np.round(cost.term_fake, 4), "loss": np.round(cost.loss, 4)})
    st.dataframe(table, hide_index=True)
    st.metric("J(θ): the mean loss", f"{cost.cost:.4g}")

# -- 3. the two players -------------------------------------------------------------------------------------------------
st.subheader("Two players, one loss")
st.write("D trains on real examples labelled 1 and fakes labelled 0. G wants the opposite for its fakes: "
         "D(G(z)) → 1. Written as the original minimax game, G minimises log(1 − D(G(z))). In practice G minimises "
         "−log D(G(z)) instead: same goal, very different gradients. The minimax one is the game's own term, with no "
         "leading minus: it is ≤ 0 and G pushes it down. (The Training page draws D's update and G's.)")
left, right = st.columns(2)
with left:
    st.latex(r"\text{minimax: } \min_G \log(1 - D(G(z)))")
    st.latex(r"\text{non-saturating: } \min_G -\log D(G(z))")
    plotly_chart("bce_glosses", bce_loss.g_losses, key="bce_glosses")
with right:
    st.latex(r"\frac{\partial}{\partial l}\log(1-\sigma(l)) = -D(G(z))")
    st.latex(r"\frac{\partial}{\partial l}\big(-\log\sigma(l)\big) = D(G(z)) - 1")
    plotly_chart("bce_ggrad", bce_loss.g_gradients, key="bce_ggrad")
st.caption("Early in training D often spots fakes easily, so D(G(z)) is near 0. There the minimax gradient vanishes "
           "and G barely moves; the non-saturating gradient is at its largest. The last section shows a run's D(G(z)).")

# -- 3b. the expectations Home's formula uses ------------------------------------------------------------------------
st.markdown("**The game on Home, read with these terms.** "
            r"$\mathbb{E}_x[\cdot]$ is an *expectation*: the average over every real example x; "
            r"$\mathbb{E}_z[\cdot]$ the average over every noise vector z. Training never sees them all, so it uses "
            "a batch's mean as the estimate. D maximises V; minimising its BCE cost does exactly that, since with as "
            "many fakes as real examples in the batch its cost is J(θ_d) = −V / 2.")
st.latex(r"V(D, G) = \mathbb{E}_x[\log D(x)] + \mathbb{E}_z[\log(1 - D(G(z)))]")
st.latex(rf"\text{{e.g. }} D(x) = {EXAMPLE[0]},\ D(G(z)) = {EXAMPLE[1]}:\quad "
         rf"V = {game.minimax_value(*EXAMPLE):.3f},\quad J = {explain.batch_cost([1, 0], list(EXAMPLE)).cost:.3f}")

# -- 4. a live run ------------------------------------------------------------------------------------------------------
st.subheader("In a real run")
snap = live.selected_snapshot()
if snap is None:
    st.info("No run yet: train the default GAN on Home, or start one on Training.")
elif snap.config.loss is not Loss.BCE:
    st.info(f"{snap.id} uses the {snap.config.loss.value} loss, not BCE: pick a BCE run in the sidebar.")
else:
    def render(s: RunSnapshot) -> None:
        live.show_status(s)
        m = s.metrics
        if not len(m["step"]):
            st.caption("Waiting for the first step…")
            return
        last = {c: float(m[c][-1]) for c in ("d_real", "d_fake", "d_loss_real", "d_loss_fake", "d_loss")}
        st.write(f"Step {int(m['step'][-1]):,}: on this batch D said **{last['d_real']:.3f}** on average to real "
                 f"examples and **{last['d_fake']:.3f}** to fakes.")
        cols = st.columns(3)
        cols[0].metric("real term −log D(x)", f"{last['d_loss_real']:.4f}")
        cols[1].metric("fake term −log(1 − D(G(z)))", f"{last['d_loss_fake']:.4f}")
        cols[2].metric("D's loss: their mean", f"{last['d_loss']:.4f}",
                       help="A D that says 0.5 to everything scores ln 2 ≈ 0.693.")
        st.caption("Each term is the mean of every example's own loss, not the loss of D's mean answer: −log of "
                   f"{last['d_real']:.3f} is {-math.log(last['d_real']):.4f} only when D says the same to every example."
                   if 0 < last["d_real"] < 1 else "Each term is the mean of every example's own loss.")
        panels.d_output_chart(s, key="bce_live")
        if math.isfinite(last["d_fake"]) and last["d_fake"] < 0.1:
            st.warning("D(G(z)) is below 0.1: D is winning. With the minimax G loss, G's gradient would now be tiny.")

    live.live(render, snap.id, key="bce_live")

course.links("app_pages/bce_loss.py")
