"""Batch norm (course 1, week 2): covariate shift and internal covariate shift, the maths on a toy batch you edit,
training against inference mode, a run's batch-norm layers from the inside, and one click to train the same GAN with
and without it (the GAN the Mode collapse page's demo collapses)."""

import math
from functools import partial

import numpy as np
import pandas as pd
import streamlit as st

from gan_core.lessons import explain
from gan_core.lessons.comparisons import get_comparison
from gan_core.runs.state import RunSnapshot
from ui import cache, collapse_evidence, comparisons, course, live, panels
from ui.figures import batch_norm, images
from ui.plotly_chart import plotly_chart

EPS = 1e-5  # torch's default ε
MOMENTUM = 0.1  # torch's default: the weight of the new batch in the running averages
TOY_BATCH = [1.0, 2.0, 4.0, 9.0]
COMPARISON = "batchnorm"
HIST_STEP = "bn_hist_step"
_HIST_LAST = "bn_hist_last_step"
PER_ROW = 4  # small multiples per row


def fmt(value: float) -> str:
    """4 significant digits, rounded to 4 decimals first so that ε's traces (1.25e-06) read as the 0 they stand for."""
    return f"{round(float(value), 4) + 0.0:.4g}"  # + 0.0: no "-0"


st.title("Batch norm")
st.write("Each layer learns from what the layer before hands over, and that layer is learning too, so its outputs keep "
         "moving in size and centre: **internal covariate shift**. Batch norm steadies them. It sits after a layer's "
         "linear part, before its activation (linear → BN → activation): per feature it subtracts the batch's mean, "
         "divides by its standard deviation, then scales and shifts by two learned numbers, γ and β.")
with st.expander("Covariate shift, internal covariate shift, and the course's caveat"):
    st.markdown(
        "- **Covariate shift** is a change in the *input data's* distribution, e.g. a model trained on one set of "
        "images and used on images distributed differently. Normalising the inputs (mean 0, spread 1 per feature) "
        "also speeds training.\n"
        "- **Internal covariate shift** is the same kind of change *between layers*, while training: the data stay "
        "the same, the earlier layers' outputs move. It is what the drift charts below measure.\n"
        "- **The caveat**: later research suggests batch norm may help mostly by smoothing the cost surface, which "
        "makes training faster and steadier, more than by removing internal covariate shift.")


# -- 1. the maths on a toy batch ----------------------------------------------------------------------------------------
def toy_batch() -> None:
    """The toy batch: values and γ, β in; μ, σ², x̂ and y out, in training and in inference mode."""
    inputs, formulas = st.columns([2, 3], gap="large")
    with inputs:
        st.caption("One feature's value for each example in the batch: edit them, add or delete rows.")
        edited = st.data_editor(pd.DataFrame({"x": TOY_BATCH}), num_rows="dynamic", hide_index=True, key="bn_toy_batch",
                                column_config={"x": st.column_config.NumberColumn("x", format="%.4g", required=True)})
        g_col, b_col = st.columns(2)
        gamma = g_col.number_input("γ (scale, learned)", value=1.0, step=0.1, format="%.3f", key="bn_gamma")
        beta = b_col.number_input("β (shift, learned)", value=0.0, step=0.1, format="%.3f", key="bn_beta")

    values = pd.to_numeric(edited["x"], errors="coerce").dropna().to_numpy(np.float64)
    try:
        result = explain.batchnorm_train(values, gamma=gamma, beta=beta, eps=EPS)
    except ValueError as err:
        formulas.error(f"Batch norm needs a batch: {err}")
        return
    sd = math.sqrt(result.var + EPS)
    with formulas:
        st.latex(rf"\mu_B = \frac{{1}}{{m}}\sum_{{i=1}}^{{m}} x_i = {fmt(result.mean)}")
        st.caption(f"the batch's mean, over its m = {len(result.x)} values")
        st.latex(rf"\sigma_B^2 = \frac{{1}}{{m}}\sum_{{i=1}}^{{m}} (x_i - \mu_B)^2 = {fmt(result.var)}")
        st.caption("its variance: how spread out the values are")
        st.latex(rf"\hat x_i = \frac{{x_i - \mu_B}}{{\sqrt{{\sigma_B^2 + \epsilon}}}} "
                 rf"= \frac{{x_i - {fmt(result.mean)}}}{{{fmt(sd)}}}")
        st.caption(f"normalised: mean 0, variance 1 (ε = {EPS:g} only guards against dividing by 0)")
        st.latex(rf"y_i = \gamma\,\hat x_i + \beta = {fmt(gamma)}\,\hat x_i {'+' if beta >= 0 else '-'} {fmt(abs(beta))}")
        st.caption("scaled and shifted by the learned γ and β: with γ = √(σ²_B + ε) and β = μ_B the layer could even "
                   "undo the normalisation")

    st.markdown("**Training mode against inference mode**")
    st.write("While training, batch norm uses the statistics of the batch in front of it, and keeps running averages of "
             "them on the side. At inference (`model.eval()`) it uses those running averages instead, so one example's output "
             "no longer depends on which other examples share its batch. Every sample grid in this app is drawn that way: "
             "G in eval mode, with its running statistics.")
    run_col, latex_col = st.columns([2, 3], gap="large")
    with run_col:
        m_col, v_col = st.columns(2)
        running_mean = m_col.number_input("running mean μ_run", value=2.0, step=0.5, format="%.3f", key="bn_running_mean")
        running_var = v_col.number_input("running variance σ²_run", value=4.0, min_value=0.0, step=0.5, format="%.3f",
                                         key="bn_running_var")
    y_infer = explain.batchnorm_infer(result.x, running_mean, running_var, gamma=gamma, beta=beta, eps=EPS)
    next_mean = explain.update_running(running_mean, result.mean, MOMENTUM)
    next_var = explain.update_running(running_var, explain.unbiased_var(result.x), MOMENTUM)
    with latex_col:
        st.latex(r"y_i^{\text{inference}} = \gamma\,\frac{x_i - \mu_{\text{run}}}{\sqrt{\sigma^2_{\text{run}} + \epsilon}}"
                 r" + \beta")
        keep, run = f"{1 - MOMENTUM:g}", r"\text{run}"
        st.latex(rf"\mu_{{{run}}} \leftarrow {keep}\,\mu_{{{run}}} + {MOMENTUM:g}\,\mu_B = {fmt(next_mean)}")
        st.latex(rf"\sigma^2_{{{run}}} \leftarrow {keep}\,\sigma^2_{{{run}}} + {MOMENTUM:g}\,s_B^2 = {fmt(next_var)}")
        st.caption(f"the running averages after this batch (torch's momentum {MOMENTUM:g}; s²_B divides by m − 1, not m)")
    with run_col:
        st.markdown(f"The first value, **x = {fmt(result.x[0])}**, comes out as")
        train_col, infer_col = st.columns(2)
        train_col.metric("in training", fmt(result.y[0]), help="normalised by the batch's μ and σ²")
        infer_col.metric("at inference", fmt(y_infer[0]),
                         delta=f"{float(y_infer[0] - result.y[0]):+.3g}", delta_color="off",
                         help="normalised by the running μ and σ²: the same input, another output")

    table_col, plot_col = st.columns(2, gap="large", vertical_alignment="center")
    with table_col:
        st.dataframe(batch_norm.toy_table(result, y_infer).round(4), hide_index=True, key="bn_toy_table")
        st.caption("In training each output depends on the whole batch: change one value and every y changes. At "
                   "inference it depends on its own x only.")
    with plot_col:
        # one build per set of inputs for every browser: the page's default toy is the same figure for the whole room
        plotly_chart(("bn_toy", tuple(map(float, result.x)), running_mean, running_var, gamma, beta),
                     partial(batch_norm.toy_figure, result, running_mean, running_var, gamma, beta, eps=EPS),
                     key="bn_toy_plot")


st.subheader("One feature, one batch, by hand")
toy_batch()

# -- 2. inside a run ----------------------------------------------------------------------------------------------------
st.subheader("Inside a run")


def grid(n: int) -> list:
    """n cells, PER_ROW to a row: small multiples that fit a wide page and a narrow one alike."""
    per_row = max(1, min(n, PER_ROW))
    cells = [cell for _ in range(0, n, per_row) for cell in st.columns(per_row)]
    return cells[:n]


def hist_step(steps: list[int]) -> int:
    """The histogram's probe step: follows the newest while the slider sits at the end; a step thinned away from the
    history moves to the nearest one kept (the slider's value must be one of its options)."""
    chosen, last_seen = st.session_state.get(HIST_STEP), st.session_state.get(_HIST_LAST)
    if chosen is None or chosen == last_seen or chosen not in steps:
        st.session_state[HIST_STEP] = steps[-1] if chosen in (None, last_seen) else min(steps, key=lambda s: abs(s - chosen))
    st.session_state[_HIST_LAST] = steps[-1]
    return st.select_slider("Probe step", options=steps, key=HIST_STEP, format_func=lambda s: f"step {s:,}",
                            help="The histograms below are of this step's batches; at the right end they follow the run.")


def render_run(s: RunSnapshot) -> None:
    live.show_status(s)
    probes = [p for p in s.probes if p.batchnorm]
    if not probes:
        if s.status.active or s.step < s.config.probe_every:
            st.info(panels.nothing_yet(s, "batch-norm records", first_at=s.config.probe_every))
        else:
            st.info("No batch-norm records in this run's folder: runs trained before probe records were saved there "
                    "have none. Start a new run (or resume a stopped one) to record them.")
        return
    st.markdown("**Batch statistics against running statistics**, averaged over each layer's channels. Watch the batch's "
                "(thin, light blue) jump from batch to batch; the running ones used at inference (bold, dark blue) follow "
                "them smoothly and late.")
    layers = batch_norm.bn_layers(probes)
    for layer, cell in zip(layers, grid(len(layers)), strict=True):
        with cell:
            for statistic in batch_norm.STATISTICS:
                cache.vega_chart((s.id, s.version, "bn_stats", layer, statistic),
                                 partial(batch_norm.bn_stats_chart, probes, layer, statistic),
                                 key=f"bn_{statistic}_{layer}")
    intro = st.container()  # above the step slider, written once the step is known
    steps = [p.step for p in probes]
    step = hist_step(steps)
    record = next(p for p in reversed(probes) if p.step == step)
    learned = batch_norm.learned_text(record)
    intro.markdown("**Values before and after batch norm**, pooled over the step's batches: grey before, "
                ":blue[blue] after (γ and β included). Normalising brings each channel to mean 0 and spread 1; then γ "
                "and β give it mean β and spread γ. They start at 1 and 0 and are learned: the output stays near 0 "
                "and 1 only while they stay near their start. "
                + (f"This run's at step {step:,}, over each layer's channels: {learned}." if learned else
                   "This run's records predate γ and β being kept: a new run shows them here."))
    for layer, cell in zip(layers, grid(len(layers)), strict=True):
        with cell:
            cache.vega_chart((s.id, "bn_hist", step, id(record), layer), partial(batch_norm.hist_chart, record, layer),
                             key=f"bn_hist_{layer}")


def has_batch_norm(s: RunSnapshot) -> bool:
    return s.config.g_batchnorm or s.config.d_batchnorm


snap, instead = comparisons.lesson_run(COMPARISON, has_batch_norm)
if snap is None:
    st.info("No run yet: press **Train with and without batch norm** below, or start a run on the Training page.")
elif not has_batch_norm(snap):
    st.info(f"**{snap.id}** has no batch norm (g_batchnorm and d_batchnorm are off): pick another run in the sidebar, "
            "or press **Train with and without batch norm** below.")
else:
    where = " and ".join(n for n, on in (("G", snap.config.g_batchnorm), ("D", snap.config.d_batchnorm)) if on)
    if instead is not None:
        comparisons.stand_in_note(snap, instead, f"batch norm in {where}'s hidden layers", "none")
    else:
        st.write(f"Run **{snap.id}** has batch norm in {where}'s hidden layers.")
    live.live(render_run, snap.id, key="bn_run")

# -- 3. internal covariate shift: the comparison ------------------------------------------------------------------------
st.subheader("Internal covariate shift: with and without batch norm")
comparison = get_comparison(COMPARISON)
st.write(f"{comparison.question} Same seed, same data, same everything else. Watch three things: the losses, how far "
         "the values entering each of G's layers drift while G learns, and the digits each one draws.")


def render_comparison(snaps: dict[str, RunSnapshot]) -> None:
    # inside the live panel: switching the layers redraws the panel only
    net = st.segmented_control("Layers of", ["G", "D"], default="G", key="bn_drift_net",
                               help="G has batch norm in one run and none in the other; D has none in either.") or "G"
    for col, (label, s) in zip(st.columns(len(snaps)), snaps.items(), strict=True):
        with col:
            st.markdown(f"**{label}**")
            live.show_status(s)
    version = tuple((s.id, s.version) for s in snaps.values())
    st.markdown("**Losses** (smoothed): G solid, D dashed")
    cache.vega_chart((version, "bn_losses"),
                     lambda: batch_norm.variant_loss_chart({k: s.metrics for k, s in snaps.items()}), key="bn_cmp_losses")
    st.markdown(f"**Drift**: the mean (line) and mean ± std (band) of the values entering each of {net}'s "
                "activations, over training; colours as in the losses")
    probes = {k: s.probes for k, s in snaps.items()}
    layers = batch_norm.drift_layers(probes, net)
    if not layers:
        st.caption(f"The first layer records come at step {next(iter(snaps.values())).config.probe_every:,}.")
    for layer, cell in zip(layers, grid(len(layers)), strict=True):
        with cell:
            cache.vega_chart((version, "bn_drift", net, layer), partial(batch_norm.drift_chart, probes, net, layer),
                             key=f"bn_drift_{net}_{layer}")
    st.markdown("**Samples**, from the same fixed noise")
    for col, (label, s) in zip(st.columns(len(snaps)), snaps.items(), strict=True):
        record = s.latest_samples
        if record is None:
            col.caption(f"{label}: no samples yet")
            continue
        image = cache.cached((s.id, "bn_grid", record.step, id(record)),
                             partial(images.sample_grid, record.samples, min_size=320))
        col.image(cache.image_url(image), caption=f"{label}, step {record.step:,}")  # natural size, at most the column's width


def covered(snaps: dict[str, RunSnapshot]) -> dict[str, float]:
    return {label: comparisons.classes_covered(s) for label, s in snaps.items()}


st.caption(f"Two runs of the digits GAN, one after the other: {comparison.steps_note}. Everyone on this server sees "
           "the same runs.")
shown = comparisons.section(COMPARISON, render_comparison, key="bn_compare", measure=covered, fmt=lambda v: f"{v:.0f} of 10",
                            label="Train with and without batch norm", icon=":material/compare_arrows:", select=True)
# after the question and its runs, never above them: the measured sentence would give the room's answer away
with st.container(border=True):
    st.markdown("**Batch norm and mode collapse.** The Mode collapse page makes its BCE demo collapse by removing batch "
                "norm from G, so that D can win early; this comparison trains that GAN with and without it. Batch norm "
                "steadies training; the course's remedy that makes collapse less likely is W-loss (on the Mode "
                "collapse page).")
    st.caption(collapse_evidence.measured() or "Press **Train with and without batch norm** above to measure it on this "
                                              "server.")
    st.page_link(course.page(collapse_evidence.MC_PAGE), label="Mode collapse: BCE against W-loss on the same GAN",
                 icon=":material/scatter_plot:")
if shown is not None:
    st.markdown("""
**What to look for**
- *With batch norm*, each of G's layers receives values centred near β with spread near γ at every step (γ and β
  start at 1 and 0 and are learned; the run's own are quoted above): the band stays put. *Without*, watch whether the band moves,
  shrinking or growing as the layers before it learn: that drift is the internal covariate shift.
- The losses: without batch norm D can win early (its loss falls, G's climbs), and a G that keeps losing may settle on
  the few digits it can pass off as real: mode collapse. How many digits each run drew is measured above.
""")

course.links("app_pages/batch_norm.py")
