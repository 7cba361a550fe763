"""Activations: ReLU, leaky ReLU, sigmoid and tanh with their slopes, then dying ReLUs and vanishing gradients measured."""

import math
from collections.abc import Callable, Iterator
from functools import partial

import numpy as np
import streamlit as st

from gan_core.config import Activation
from gan_core.lessons import explain, units
from gan_core.lessons.comparisons import get_comparison
from gan_core.runs.state import RunSnapshot
from ui import cache, comparisons, course, live, panels
from ui.figures import activations
from ui.plotly_chart import plotly_chart
from ui.text import minus

DYING, VANISHING = "dying-relu", "vanishing-gradients"
NAMES = {Activation.RELU: "ReLU", Activation.LEAKY_RELU: "leaky ReLU", Activation.SIGMOID: "sigmoid", Activation.TANH: "tanh"}
COURSE_SLOPE = 0.2  # the course's discriminator: nn.LeakyReLU(0.2)
FORMULAS = {
    Activation.RELU: (r"\mathrm{ReLU}(z) = \max(0, z)", r"\mathrm{ReLU}'(z) = 1 \text{ for } z > 0,\ 0 \text{ for } z < 0"),
    Activation.LEAKY_RELU: (r"\mathrm{LeakyReLU}(z) = \max(az, z)",
                            r"\mathrm{LeakyReLU}'(z) = 1 \text{ for } z > 0,\ a \text{ for } z < 0"),
    Activation.SIGMOID: (r"\sigma(z) = \frac{1}{1 + e^{-z}}", r"\sigma'(z) = \sigma(z)\,\big(1 - \sigma(z)\big) \le \tfrac14"),
    Activation.TANH: (r"\tanh(z) = \frac{e^{z} - e^{-z}}{e^{z} + e^{-z}}", r"\tanh'(z) = 1 - \tanh^2(z)"),
}

st.title("Activations")
st.write("Every hidden unit takes a weighted sum z of its inputs and passes it through an activation g(z). g must be "
         "**non-linear**, or stacked layers collapse into one, and **differentiable**, because backprop multiplies "
         "the gradient by g′(z), once per layer. Where g′ is 0 the unit gets nothing back; where it is small, layer "
         "after layer, the gradient fades before it reaches the first layers.")

# -- 1. the functions ---------------------------------------------------------------------------------------------------
st.subheader("Four activations and their slopes")
slope = 0.1
for row in (activations.CURVE_KINDS[:2], activations.CURVE_KINDS[2:]):
    for kind, col in zip(row, st.columns(2), strict=True):
        with col:
            # g and g' on one line each, no heading (each formula names its function): the plots stay near the top
            for formula in FORMULAS[kind]:
                st.latex(formula)
            plot = st.container()  # the plot above its slider, level with its neighbour's; drawn once a is known
            if kind is Activation.LEAKY_RELU:
                slope = st.slider("Negative slope a", 0.0, 1.0, 0.1, step=0.01, key="act_slope",
                                  help="a = 0 is a plain ReLU; a = 1 is no activation at all (a straight line).")
                at = minus(f"{float(explain.activation(kind, -2.0, slope)):.3g}")
                grad = f"{float(explain.derivative(kind, -2.0, slope)):.3g}"
                st.caption(f"leaky ReLU(−2) = {at}, and its gradient there is {grad}, not 0. The course's notes "
                           f"use a = 0.1; its labs' discriminator, and this page's runs, a = {COURSE_SLOPE}: any small "
                           "a > 0 keeps the unit learning.")
            # built once per (kind, slope) for every browser: four figures were ~0.1 s of each page draw
            plotly_chart(("act_curve", kind, slope), partial(activations.activation_figure, kind, slope),
                         key=f"act_curve_{kind.value}", dg=plot)

st.caption("Solid: g(z). Dashed: g′(z), what backprop multiplies by. Grey: g′ is exactly 0 (ReLU's negative side: "
           "no gradient *for that input*; the unit is dead only if every input lands there). Red: g′ is below 0.01 "
           "(saturated). Both come from the same formulas the page shows.")
with st.expander("Why non-linear, and why differentiable?"):
    W1, B1, W2, B2 = [[1, 2], [0, 1]], [1, 0], [[1, -1]], [2]  # small integers a class can multiply by hand
    W, B = units.compose_linear(W1, B1, W2, B2)
    st.markdown("**Without g, depth buys nothing.** Two linear layers in a row are one linear layer:")
    st.latex(r"W_2(W_1x + b_1) + b_2 = (W_2W_1)\,x + (W_2b_1 + b_2)")
    st.latex(r"W_1 = \begin{bmatrix}1 & 2\\ 0 & 1\end{bmatrix},\ b_1 = \begin{bmatrix}1\\ 0\end{bmatrix},\ "
             r"W_2 = \begin{bmatrix}1 & -1\end{bmatrix},\ b_2 = 2 \;\Rightarrow\; "
             rf"W_2W_1 = \begin{{bmatrix}}{W[0, 0]:g} & {W[0, 1]:g}\end{{bmatrix}},\ W_2b_1 + b_2 = {B[0]:g}")
    st.markdown("However many linear layers are stacked, the network can only draw straight boundaries; a non-linear "
                "g between them is what lets it bend. **Backprop needs g′**: the gradient reaching a layer is "
                "multiplied by g′(z) of every layer above it, so g must have a slope almost everywhere (ReLU's kink at "
                "0 is one point, given a slope by convention).")


def comparison(name: str, render: Callable[[dict[str, RunSnapshot]], None], key: str,
               measure: Callable[[dict[str, RunSnapshot]], dict[str, float]], fmt: Callable[[float], str]) -> None:
    """The comparison's question, the room's predictions, its buttons, and the server's runs of it drawn live by
    `render`; once they end, what `measure` finds in them beside what the room predicted."""
    c = get_comparison(name)
    st.markdown(f"**One-click comparison.** {c.question}")
    st.caption(f"Two runs, identical but for {', '.join(sorted(c.differing_fields()))}; they train one after the other. "
               f"{c.steps_note} Everyone on this server sees the same runs.")
    comparisons.section(name, render, key=key, measure=measure, fmt=fmt)


def no_probes(snap: RunSnapshot | None) -> bool:
    """Say why there is nothing to plot for the selected run; True when there is nothing."""
    if snap is None:
        st.info("No run selected yet: run the comparison below, or start one on Training.")
        return True
    if not snap.probes and (snap.status.active or snap.step < snap.config.probe_every):
        st.info(panels.nothing_yet(snap, "probe records", first_at=snap.config.probe_every))
        return True
    if not snap.probes:
        st.info(f"**{snap.id}** has no probe records in its folder: runs trained before they were saved there have "
                "none. Resume the run, or run the comparison below.")
        return True
    return False


def uses(*kinds: Activation) -> Callable[[RunSnapshot], bool]:
    """A section's kind of run: one of `kinds` in G's or D's hidden layers, and probe records (or a run still
    training, whose first probe is on its way)."""
    def fits(s: RunSnapshot) -> bool:
        return bool({s.config.g_activation, s.config.d_activation} & set(kinds)) and (bool(s.probes) or s.status.active)

    return fits


# -- 2. dying ReLU ------------------------------------------------------------------------------------------------------
st.subheader("Dying ReLU, measured")
st.write("A ReLU unit outputs 0 and passes back a gradient of 0 for any input with z < 0; that alone is normal, "
         "half its inputs may land there. It is **dead** when z is negative for *every* input: then no example ever "
         "sends it a gradient, so its weights never change again. One big update can push many units there at once, "
         "which is why a high learning rate kills ReLUs. Leaky ReLU keeps a small slope a for negative z, so even such "
         "a unit gets a gradient and can come back.")
st.caption("The probes count a unit as dead when its z was negative for every example of the probe batch. A leaky "
           "ReLU unit can be counted that way too, yet it still passes back a times the incoming gradient and keeps "
           "learning: the comparison below measures it, once its runs have ended.")


def selected_run(render: Callable[[RunSnapshot], None], key: str, name: str, kinds: tuple[Activation, ...]) -> None:
    """`render` the selected run's probes, live while it trains; say why when there is nothing to plot.

    Where the sidebar's run has none of `kinds` (or no probes) and was not picked on purpose, the room's comparison
    `name` stands in with its run that has: a fresh browser sees the section work (comparisons.lesson_run)."""
    def panel(s: RunSnapshot) -> None:
        live.show_status(s)
        if not no_probes(s):
            render(s)

    snap, instead = comparisons.lesson_run(name, uses(*kinds))
    if snap is not None and instead is not None:
        what = " or ".join(NAMES[k] for k in kinds) + " units"
        lacks = f"no {what}" if instead.probes or instead.status.active else "no probe records"
        comparisons.stand_in_note(snap, instead, what, lacks)
    if snap is not None and (snap.probes or snap.status.active):  # an active run polls: its first probe shows up
        live.live(panel, snap.id, key=key)
    else:
        no_probes(snap)


def run_dead(s: RunSnapshot) -> None:
    relu_like = any(layer.kind in activations.DEAD_KINDS for layer in s.probes[-1].layers)
    measure = "dead" if relu_like else "saturated"
    st.markdown(f"**{s.id}**: the fraction of each layer's units that are "
                + ("dead, per probe step" if relu_like else "saturated (its layers are sigmoid or tanh: they saturate, "
                   "they do not die)"))
    cache.vega_chart((s.id, s.version, "act_dead", measure),
                     partial(activations.dead_fraction_chart, s.probes, measure=measure), key="act_run_dead")


selected_run(run_dead, key="act_run_dead_panel", name=DYING, kinds=(Activation.RELU,))


def variant_columns(snaps: dict[str, RunSnapshot]) -> Iterator[tuple[int, RunSnapshot]]:
    """One column per variant, headed by its label and status; yields (index, snapshot) inside the column of each
    variant that has probes to draw."""
    for i, ((label, s), col) in enumerate(zip(snaps.items(), st.columns(len(snaps)), strict=True)):
        with col:
            st.markdown(f"**{label}**")
            live.show_status(s)
            if not s.probes:
                st.caption("No probes yet: it starts when the run before it ends." if s.status.active else "No probes.")
                continue
            yield i, s


def dying_panel(snaps: dict[str, RunSnapshot]) -> None:
    for i, s in variant_columns(snaps):
        latest = s.probes[-1]
        st.metric("D's units dead (mean of its layers)", f"{activations.dead_mean(latest, 'D'):.0%}",
                  help=f"At step {latest.step:,}, the latest probe.")
        cache.vega_chart((s.id, s.version, "act_cmp_dead"), partial(activations.dead_fraction_chart, s.probes, ("D",)),
                         key=f"act_cmp_dead_{i}")
        d_layers = [layer for layer in latest.layers if layer.net == "D"]
        st.caption(f"D's pre-activations z at step {latest.step:,}: "
                   + ", ".join(f"{layer.layer} {activations.negative_share(layer):.0%} below 0" for layer in d_layers))
        cache.vega_chart((s.id, s.version, "act_cmp_hist"), partial(activations.histogram_chart, d_layers),
                         key=f"act_cmp_hist_{i}")
        unit_gradient_panel(s, i)


def unit_gradient_panel(s: RunSnapshot, i: int) -> None:
    """Once the run has ended: the gradient its D's units get, counted dead or not, measured from its checkpoint."""
    if s.status.active or not (s.path / "checkpoint.pt").is_file():
        return
    try:
        layers = cache.cached((s.id, s.version, "act_unit_grads"), partial(units.run_unit_gradients, s.path))
    except Exception as err:  # noqa: BLE001 - a folder from another version, a dataset missing here: say so, go on
        st.caption(f"Cannot measure {s.id}'s unit gradients: {type(err).__name__}: {err}")
        return
    if not layers:
        return
    # layer by layer: gradients differ between layers far more than between dead and living units of one layer
    shares = [u.mean_grad(dead=True) / u.mean_grad(dead=False) for u in layers
              if u.dead.any() and (~u.dead).any() and u.mean_grad(dead=False) > 0]
    st.markdown("**The gradient D's units get**, at its checkpoint (256 real digits and 256 fakes)")
    if shares:
        share = float(np.mean(shares))
        where = "its layer" if len(shares) == 1 else f"the same layer (mean over {len(shares)} layers)"
        st.caption(f"A unit counted dead gets {share:.0%} of a living unit's gradient in {where}"
                   + (": exactly nothing, from any of these examples." if share == 0 else ": less, but not nothing."))
    cache.vega_chart((s.id, s.version, "act_unit_grads_chart"), partial(activations.unit_gradient_chart, layers),
                     key=f"act_cmp_unit_grads_{i}")


def dead_share(snaps: dict[str, RunSnapshot]) -> dict[str, float]:
    return {label: activations.dead_mean(s.probes[-1], "D") if s.probes else math.nan for label, s in snaps.items()}


comparison(DYING, dying_panel, key="act_dying", measure=dead_share, fmt=lambda v: f"{v:.0%}")

# -- 3. vanishing gradients ---------------------------------------------------------------------------------------------
st.subheader("Vanishing gradients, measured")
st.write("Backprop multiplies by g′(z) once per layer. The sigmoid's slope is at most ¼, and near 0 once it saturates: "
         "through five sigmoid layers the gradient can shrink a thousandfold before it reaches the first layer, which "
         "then hardly learns. tanh saturates the same way: its slope is at most 1, but below 0.01 once |z| > 3. "
         "Leaky ReLU's slope is 1 for positive z, so the gradient arrives about as strong as it left. In a GAN, G's "
         "gradient has come all the way through D first.")


def run_grads(s: RunSnapshot) -> None:
    st.markdown(f"**{s.id}**: each layer's gradient norm per probe step (log scale; light: first layers, dark: last)")
    for net, col in zip(("D", "G"), st.columns(2), strict=True):
        with col:
            cache.vega_chart((s.id, s.version, "act_grads", net), partial(activations.grad_norm_chart, s.probes, net),
                             key=f"act_run_grads_{net}")


selected_run(run_grads, key="act_run_grads_panel", name=VANISHING,
             kinds=(Activation.SIGMOID, Activation.TANH))


def vanishing_panel(snaps: dict[str, RunSnapshot]) -> None:
    net = st.segmented_control("Network", ["G", "D"], default="G", key="act_vg_net",
                               help="G's first layer is the furthest from the loss: its gradient has passed through D too.")
    net = net or "G"
    for i, s in variant_columns(snaps):
        ratio = activations.grad_ratio(s.probes[-1], net)
        st.metric(f"{net}'s first layer gets, of its last layer's gradient", activations.ratio_text(ratio),
                  help=f"‖∇ block 1‖ / ‖∇ output‖ at step {s.probes[-1].step:,}, the latest probe.")
        cache.vega_chart((s.id, s.version, "act_cmp_grads", net),
                         partial(activations.grad_norm_chart, s.probes, net, fixed_domain=True), key=f"act_cmp_grads_{i}")
    latest = {label: s.probes[-1] for label, s in snaps.items() if s.probes}
    if latest:
        st.markdown(f"**{net}'s gradient norm per layer at the latest probe**: a flat line reaches every layer, a "
                    "falling one vanishes")
        versions = tuple((s.id, s.version) for s in snaps.values())
        cache.vega_chart((versions, "act_cmp_profile", net), partial(activations.grad_profile_chart, latest, net),
                         key="act_cmp_profile")


def first_layer_share(snaps: dict[str, RunSnapshot]) -> dict[str, float]:
    return {label: activations.grad_ratio(s.probes[-1], "G") if s.probes else math.nan for label, s in snaps.items()}


comparison(VANISHING, vanishing_panel, key="act_vanishing", measure=first_layer_share, fmt=activations.ratio_text)

course.links("app_pages/activations.py")
