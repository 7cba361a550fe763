"""Mode collapse (course 1, week 3): a GAN that draws one digit of ten, measured snapshot by snapshot; why BCE lets it
happen; W-loss with a critic and the gradient penalty; and WGAN-GP beside BCE on the same GAN."""

import math
from functools import partial
from pathlib import Path

import numpy as np
import streamlit as st

from gan_core.config import ConfigError, Loss
from gan_core.data import DataSource, load_dataset
from gan_core.evaluation import coverage, rejection
from gan_core.evaluation.evaluate import evaluate_run
from gan_core.lessons import explain, wloss
from gan_core.lessons.comparisons import COMPARISONS as REGISTRY
from gan_core.lessons.comparisons import get_comparison
from gan_core.runs.folder import CHECKPOINT_FILE
from gan_core.runs.state import RunSnapshot
from gan_core.train.records import CheckpointError, SampleRecord
from ui import cache, collapse_evidence, comparisons, course, live, panels
from ui.figures import activations, images, mode_collapse
from ui.plotly_chart import plotly_chart
from ui.text import md_escape, minus

COMPARISONS = {data: name for data, name in (("digits", "collapse-digits"), ("ring", "collapse-ring")) if name in REGISTRY}


def source_of(snap: RunSnapshot) -> DataSource | None:
    """The run's data (digits and mixtures load in milliseconds; MNIST once per server), None when it is not there."""
    try:
        return cache.cached(("mc_source", snap.config.dataset.value, snap.config.points_csv),
                             partial(load_dataset, snap.config))
    except Exception:  # noqa: BLE001 - a dataset missing on this machine: the page says so instead of failing
        return None


def stats_of(snap: RunSnapshot, record: SampleRecord, source: DataSource) -> dict:
    """Coverage of one snapshot, computed once per server: a snapshot's samples never change once taken."""
    return cache.cached(("mc_stats", snap.id, snap.created, record.step, len(record.samples)),
                         partial(coverage.record_stats, record, source))


def table_of(snap: RunSnapshot, source: DataSource) -> tuple[list[dict], dict]:
    rows = [stats_of(snap, r, source) for r in snap.samples]
    return rows, coverage.coverage_table(rows)


st.title("Mode collapse")
st.write("A **mode** is a peak of the data: a digit, a blob on a ring. G **collapses** when it keeps drawing one mode "
         "that fools D, and hops to another when D learns to reject it. This page's BCE demo was made to collapse: its "
         "G has no batch norm, so that D can win early (BCE against WGAN-GP, below, shows what it did).")


# -- 1. the selected run ------------------------------------------------------------------------------------------------
def image_panel(s: RunSnapshot, source: DataSource) -> None:
    rows, table = table_of(s, source)
    latest = rows[-1]
    n = latest["n"]
    hist_col, grid_col = st.columns([3, 2])
    with hist_col:
        # the picture first (above the fold at 1280×720), its numbers under it
        st.markdown(f"**What the classifier sees** at step {latest['step']:,}")
        cache.vega_chart(("mc_hist", s.id, s.created, latest["step"], n),
                         partial(mode_collapse.class_histogram_chart, latest, height=250), key="mc_run_hist")
    with grid_col:
        record = s.samples[-1]
        shown = record.samples[:100]
        image = cache.cached(("mc_grid", s.id, s.created, record.step), lambda: images.sample_grid(shown, nrow=10))
        st.image(cache.image_url(image), caption=f"The first {len(shown)} of them", width=300)
    st.caption("Bars: G's share of each digit; black ticks: the data's share.")
    cols = st.columns(4)
    cols[0].metric("Classes covered", f"{latest['classes_covered']} of {len(latest['covered_mask'])}")
    cols[1].metric("KL to the data", f"{latest['kl_to_data']:.2f} nats", help="0: spread like the data; 2.3: one class.")
    cols[2].metric("Classifier's confidence", f"{latest['mean_confidence']:.0%}", help="Mean top probability: low for "
                   "blurry or ambiguous samples, which is why a class needs confident samples to count as covered.")
    cols[3].metric("Samples judged", f"{n:,}", help="The run's fixed-noise samples at this snapshot (n_samples).")
    if n < 1000:
        st.caption(f"This run keeps {n:,} samples per snapshot (its n_samples): the shares are out of {n:,}. The "
                   "comparison below draws 1,000.")
    st.markdown("**Over training**: each column is a snapshot, each row a digit; collapse is one dark row, and a row "
                "that moves is G hopping from digit to digit")
    cache.vega_chart(("mc_heat", s.id, s.version), partial(mode_collapse.class_heatmap_chart, rows), key="mc_run_heat")
    left, right = st.columns(2)
    with left:
        cache.vega_chart(("mc_cov", s.id, s.version), partial(
            mode_collapse.series_chart, {s.id: table}, "covered", title="classes covered", domain=(0, 10), total=10),
            key="mc_run_cov")
    with right:
        cache.vega_chart(("mc_kl", s.id, s.version), partial(
            mode_collapse.series_chart, {s.id: table}, "kl", title="KL to the data (nats)", domain=(0, 2.5)),
            key="mc_run_kl")


def point_panel(s: RunSnapshot, source: DataSource) -> None:
    rows, table = table_of(s, source)
    latest = rows[-1]
    total = latest["modes_total"]
    cols = st.columns(4)
    cols[0].metric("Modes covered", f"{latest['modes_covered']} of {total}")
    cols[1].metric("High-quality samples", f"{latest['high_quality_fraction']:.0%}", help="Within 3σ of a mode.")
    cols[2].metric("Reverse KL", f"{latest['reverse_kl']:.2f}", help=f"0: spread evenly; log {total} = "
                   f"{math.log(total):.2f}: all on one mode.")
    cols[3].metric("Samples judged", f"{latest['n']:,}", help="The run's fixed-noise samples at this snapshot.")
    plot, over_time = st.columns([1, 1])
    with plot:
        st.markdown(f"**Step {latest['step']:,}**: modes ringed green are covered, red are missed")
        record = s.samples[-1]
        plotly_chart(("mc_modes", s.id, s.created, record.step),
                     lambda: mode_collapse.mode_figure(record.samples, s.real, s.modes, latest), key="mc_run_modes")
    with over_time:
        cache.vega_chart(("mc_cov", s.id, s.version), partial(
            mode_collapse.series_chart, {s.id: table}, "covered", title="modes covered", domain=(0, total), total=total,
            height=200), key="mc_run_cov")
        cache.vega_chart(("mc_hq", s.id, s.version), partial(
            mode_collapse.series_chart, {s.id: table}, "high_quality", title="high-quality share", domain=(0, 1),
            height=200), key="mc_run_hq")
    what_d_knows(s)


DRS_N = 2500  # samples scored raw and again after D's filter: PacGAN's count, as `eval` uses


def filtered_figures(run_dir: Path, n: int) -> dict | str:
    """evaluate_run with rejection on the run's checkpoint, or why it cannot be measured (one line)."""
    try:
        return evaluate_run(rejection.load_trainer(run_dir), n=n, seed=0, rejection=True)
    except (ConfigError, CheckpointError) as err:
        return str(err)


def what_d_knows(s: RunSnapshot) -> None:
    """Two sentences on what D knows that G has not learned, and, for a BCE run, that measured on its checkpoint."""
    st.markdown("**What D knows that G has not learned.** D may still tell G's bridges between modes from real data, "
                "rating those samples lower than the ones sitting on a mode. Keeping each of G's samples with a "
                "probability read from D's verdict (discriminator rejection sampling) can then remove many of them: "
                "this run's numbers follow.")
    if s.config.loss is not Loss.BCE:
        st.caption(f"Measured on BCE runs only: this run's {s.config.loss.value} score is not the log density ratio "
                   "the filter needs.")
        return
    try:
        stat = (s.path / CHECKPOINT_FILE).stat()
    except OSError:
        st.caption("Measured once the run writes its first checkpoint.")
        return
    got = cache.cached(("mc_drs", s.id, stat.st_mtime_ns, stat.st_size), partial(filtered_figures, s.path, DRS_N))
    if isinstance(got, str):
        st.caption(f"Not measured on this run: {got}")
        return
    kept = got["rejection"]
    st.caption(f"This run's checkpoint at step {got['step']:,}, {DRS_N:,} samples each: "
               f"**{got['high_quality_fraction']:.0%}** high quality from G alone, "
               f"**{kept['high_quality_fraction']:.0%}** after D's filter, with {got['modes_covered']} of "
               f"{got['modes_total']} modes before and {kept['modes_covered']} after; D judged "
               f"{kept['drawn']:,} samples and accepted {kept['acceptance_rate']:.0%}, the first {DRS_N:,} of them "
               "measured. More samples than the snapshot above, so a "
               "thinly covered mode shows up here more often. The Training page draws both beside each other.")


def render_run(s: RunSnapshot) -> None:
    live.show_status(s)
    if not s.samples:
        st.info(panels.nothing_yet(s, "samples"))
        return
    source = source_of(s)
    if source is None:
        st.info(f"The {s.config.dataset.value} data of this run is not on this server, so its samples cannot be "
                "judged: pick another run in the sidebar.")
        return
    if not coverage.can_measure(source):
        st.info(f"**{md_escape(s.id)}** trains on {s.config.dataset.value}, which has no classes or modes to count: "
                "pick a digits, MNIST, ring or grid run, or run the comparison below.")
        return
    (image_panel if source.is_image else point_panel)(s, source)


def not_measurable(s: RunSnapshot) -> str | None:
    """Why the section cannot judge the run (what it has not: "no samples yet", ...); None when it can."""
    source = source_of(s)
    if source is None:
        return "no data on this server"
    if not coverage.can_measure(source):
        return f"{s.config.dataset.value} data: no classes or modes to count"
    return None if s.samples or s.status.active else "no samples"


# a fresh browser whose sidebar run cannot be judged (its newest run trained on a CSV, say) sees the room's comparison
snap, instead = comparisons.lesson_run(COMPARISONS[st.session_state.get("mc_data") or "digits"],
                                       lambda s: not_measurable(s) is None)
st.subheader("How many modes does G draw?")
if snap is None:
    st.info("No run yet: press **Run the comparison** below, or start a run on the Training page.")
elif instead is not None:
    comparisons.stand_in_note(snap, instead, f"{snap.config.dataset.value} data and {snap.config.loss.value} loss",
                              not_measurable(instead) or "")
else:
    st.write(f"Run **{snap.id}** ({snap.config.dataset.value}, {snap.config.loss.value} loss); pick another in the sidebar.")
if snap is not None:
    live.live(render_run, snap.id, key="mc_run")
with st.expander("How the page measures it"):
    st.markdown(
        "- **Images.** A small classifier trained on the real data (once, then cached) names the digit in each of "
        "the run's samples. The samples come from the same fixed noise at every snapshot, so the same z's are "
        "followed through training.\n"
        "- A class is **covered** when at least 1 % of the samples are put in it with probability above 0.9.\n"
        "- **KL to the data**, in nats (0 when G's classes are spread like the data's; log 10 ≈ 2.3 when all samples "
        "are one digit):")
    st.latex(r"\mathrm{KL}(q\,\|\,p) = \sum_c q_c \log\frac{q_c}{p_c},\quad q_c = \frac{\#\{\text{samples classified }c\}}{N}")
    st.markdown(
        "- **2D data** (VEEGAN, PacGAN): a sample is **high quality** within 3σ of its nearest mode; a mode is "
        "**covered** when at least one high-quality sample has it as nearest mode.")
    st.latex(r"\text{reverse KL} = \sum_k \hat p_k \log(K\hat p_k)")
    st.caption("p̂_k: the share of high-quality samples nearest to mode k, K modes. The formulas are those of "
               "gan_core.evaluation.metrics (class_stats, mode_stats), which the page calls.")


# -- 2. why: BCE when D wins -------------------------------------------------------------------------------------------
st.subheader("Why: what BCE gives G once D wins")
st.write("D's job (one number per example) is easier than G's (a whole image), so D tends to pull ahead. Once it "
         "rejects G's samples with confidence, D(G(z)) sits near 0, where BCE's cost is flat: G's original (minimax) "
         "loss log(1 − D(G(z))) has a gradient of −D(G(z)) at D's logit l, about 0. That is the course's "
         "**vanishing gradient** of BCE: with that loss G has almost nothing to learn from. (A different cause from the "
         "saturating activations of the Activations page, with the same effect: a gradient near 0.)")
c1, c2 = st.columns(2)
c1.latex(r"\text{minimax: } \frac{\partial}{\partial l}\log\big(1 - \sigma(l)\big) = -D(G(z))")
c2.latex(r"\text{non-saturating: } \frac{\partial}{\partial l}\big[-\log \sigma(l)\big] = D(G(z)) - 1")
st.write("The BCE runs here train G as the course's labs do, with the **non-saturating** loss (BCE against the label "
         "\"real\"): its gradient stays near −1 when D wins, so this G does *not* stop for lack of gradient. When it "
         "collapses, it does so *with* a strong gradient: every sample is pushed towards whatever D rates most real "
         "right now, one mode; when D learns to reject it, G hops to the next. Both are failures of the BCE game; the "
         "course's next step, W-loss, addresses both.")


def render_gradients(s: RunSnapshot) -> None:
    if not len(s.metrics["step"]):
        st.info(panels.nothing_yet(s, "training steps"))
        return
    if s.config.loss is not Loss.BCE:
        st.caption(f"**{s.id}** uses {s.config.loss.value}: its critic has no sigmoid to saturate. Its scores and "
                   "G's gradient norms:")
    left, right = st.columns(2)
    with left:
        panels.d_output_chart(s, key="mc_grad")
    with right:
        if s.config.loss is Loss.BCE:
            st.markdown("**G's gradient at D's logit** under each objective, from this run's D(G(z))")
            cache.vega_chart(("mc_logit", s.id, s.version),
                             partial(mode_collapse.logit_gradient_chart, s.metrics["step"], s.metrics["d_fake"]), key="mc_logit")
            d_fake = float(np.nanmean(np.asarray(s.metrics["d_fake"], dtype=np.float64)[-20:]))
            if math.isfinite(d_fake):
                d_fake = min(max(d_fake, 0.0), 1.0)
                st.caption(f"Over its last 20 steps D(G(z)) ≈ {d_fake:.2f}: minimax gradient "
                           f"{minus(f'{float(explain.g_grad_logit_minimax(d_fake)):+.2f}')}, non-saturating "
                           f"{minus(f'{float(explain.g_grad_logit_non_saturating(d_fake)):+.2f}')} "
                           f"(this run trains with the {s.config.g_objective.value.replace('_', '-')} loss).")
    if s.probes:
        st.markdown("**G's gradient norm per layer** as measured (log scale; light: first layers, dark: output)")
        cache.vega_chart(("mc_gnorm", s.id, s.version), partial(activations.grad_norm_chart, s.probes, "G", height=240),
                         key="mc_gnorm")
    else:
        st.caption("No probe records in this run's folder (runs trained before they were saved there have none): "
                   "G's per-layer gradient norms show for runs trained since.")


if snap is not None:
    live.live(render_gradients, snap.id, key="mc_grad_panel")

# -- 3. W-loss ----------------------------------------------------------------------------------------------------------
st.subheader("W-loss: a critic, the earth mover's distance, and 1-Lipschitz")
st.write("The course's answer changes the loss. D becomes a **critic** c: no sigmoid, its score is any real number, "
         "so there is no flat end to saturate. Training approximates the **earth mover's distance** (EMD) between "
         "the real and the generated data: how much mass must move, and how far, to turn one pile into the other.")
EMD_REAL, EMD_NEAR, EMD_FAR = [0.0, 1.0], [10.0, 11.0], [20.0, 21.0]


def tex_set(values: list[float]) -> str:
    return r"\{" + ", ".join(f"{v:g}" for v in values) + r"\}"


st.latex(r"\text{EMD} = \frac{1}{m}\sum_{i=1}^{m}\big|x_{(i)} - g_{(i)}\big|"
         rf"\qquad x = {tex_set(EMD_REAL)}:\quad g = {tex_set(EMD_NEAR)} \to {wloss.earth_movers_1d(EMD_REAL, EMD_NEAR):g},"
         rf"\quad g = {tex_set(EMD_FAR)} \to {wloss.earth_movers_1d(EMD_REAL, EMD_FAR):g}")
st.caption("In one dimension, m real points x and m fake points g, each in sorted order (x₍ᵢ₎, g₍ᵢ₎). The further "
           "the fakes, the larger the distance: G is told how far to go even when the piles do not overlap, "
           "where a winning BCE discriminator says only \"fake\".")
CRITIC_REAL, CRITIC_FAKE = [2.0, 4.0], [1.0, -1.0]
st.latex(r"\min_g \max_c\; \mathbb{E}\big[c(x)\big] - \mathbb{E}\big[c(g(z))\big]"
         rf"\qquad c(x) = {tex_set(CRITIC_REAL)},\ c(g(z)) = {tex_set(CRITIC_FAKE)} \;\Rightarrow\; "
         rf"{wloss.w_loss(CRITIC_REAL, CRITIC_FAKE):g}")
st.write("The critic pushes this gap up (reals high, fakes low); G pulls it down. For the gap to approximate the EMD the "
         "critic must be **1-Lipschitz**: the norm of its gradient at most 1 everywhere, so its score never changes "
         "faster than its input; that keeps W-loss continuous and stops it growing without bound. WGAN-GP encourages "
         "that with a **gradient penalty** on points x̂ between reals and fakes:")
GRADS = [[3.0, 4.0], [0.6, 0.8]]
norms = wloss.gradient_norms(GRADS)
st.latex(r"\lambda\,\mathbb{E}\Big[\big(\lVert\nabla c(\hat x)\rVert_2 - 1\big)^2\Big],\quad "
         r"\hat x = \epsilon x + (1 - \epsilon)\,g(z)"
         rf"\qquad \lVert\nabla c\rVert = {norms[0]:g},\ {norms[1]:g}:\quad "
         rf"10\cdot\frac{{({norms[0]:g}-1)^2 + ({norms[1]:g}-1)^2}}{{2}} = {wloss.gradient_penalty(GRADS, 10.0):g}")
st.caption("ε is drawn uniformly in [0, 1] per example. The critic minimises E[c(g(z))] − E[c(x)] plus this term; "
           "λ = 10 in the course's lab and in these runs.")
with st.expander("What the gradient penalty does, and does not, guarantee"):
    st.markdown(
        "- **Does**: it penalises the critic wherever its slope, measured at the sampled x̂, is not 1, so the critic "
        "stays smooth between real and fake data and G keeps a useful gradient even while the critic is winning.\n"
        "- **Does not**: make the critic 1-Lipschitz everywhere. It is a soft penalty (weighted by λ) checked only at "
        "the points x̂ drawn in each batch.\n"
        "- **Does not**: promise that G draws every mode. W-loss removes the flat gradient that lets D win outright, "
        "which the course says makes collapse less likely; whether a run covers every digit is measured, below.")

# -- 4. what that changes for collapse ----------------------------------------------------------------------------------
st.subheader("What that changes for collapse: BCE against WGAN-GP")
with st.container(border=True):
    st.markdown("**How this demo was made to collapse.** Both runs are the digits GAN with batch norm removed from G "
                "(the presets digits-collapse and digits-collapse-wgan): without it D won early when the demo was tuned "
                "(2 CPU cores, seeds 0-4: the BCE run drew 1 or 2 of the 10 digits after 800 steps, about 10 s), "
                "which is what let it collapse. The Batch norm page trains the same BCE GAN with and without batch "
                "norm in G.")
    line = collapse_evidence.measured()
    st.caption(f"The Batch norm page's comparison, measured on this server: {line}" if line else
               "Press **Train with and without batch norm** on the Batch norm page to measure what batch norm changes "
               "on this server.")
    st.page_link(course.page(collapse_evidence.BN_PAGE), label="Batch norm: the same GAN with and without it",
                 icon=":material/equalizer:")
data_choice = "digits"
if len(COMPARISONS) > 1:
    data_choice = st.segmented_control("Data", list(COMPARISONS), default="digits", key="mc_data",
                                       help="Digits: does G draw all ten? Ring: does it find all eight blobs?") or "digits"
name = COMPARISONS[data_choice]
comparison = get_comparison(name)
st.write(f"{comparison.question} Same data, same seed. {comparison.steps_note}")
st.caption("Identical but for " + ", ".join(sorted(comparison.differing_fields())) + ": the Wasserstein loss needs "
           "several critic updates per G update and its own Adam settings. Both runs draw 1,000 samples per snapshot.")


def render_comparison(snaps: dict[str, RunSnapshot]) -> None:
    tables, latest = {}, {}
    for col, (label, s) in zip(st.columns(len(snaps)), snaps.items(), strict=True):
        with col:
            st.markdown(f"**{label}**")
            live.show_status(s)
            source = source_of(s)
            if source is None or not s.samples:
                st.caption("Waiting for its first snapshot: it starts when the run before it ends." if s.status.active
                           else "No samples.")
                continue
            rows, tables[label] = table_of(s, source)
            latest[label] = rows[-1]
            what = "Classes" if source.is_image else "Modes"
            covered, total = int(tables[label]["covered"][-1]), int(tables[label]["total"][-1])
            st.metric(f"{what} covered at step {rows[-1]['step']:,}", f"{covered} of {total}")
            if source.is_image:
                cache.vega_chart(("mc_hist", s.id, s.created, rows[-1]["step"], rows[-1]["n"], "small"),
                                 partial(mode_collapse.class_histogram_chart, rows[-1], height=260),
                                 key=f"mc_cmp_hist_{label}")
            else:
                record = s.samples[-1]
                plotly_chart(("mc_modes", s.id, s.created, record.step, "small"),
                             partial(mode_collapse.mode_figure, record.samples, s.real, s.modes, rows[-1], height=320),
                             key=f"mc_cmp_modes_{label}")
    if tables:
        total = float(next(iter(tables.values()))["total"][-1])
        version = tuple((s.id, s.version) for s in snaps.values())
        st.markdown("**Coverage over time**, both runs")
        cache.vega_chart(("mc_cmp_cov", version), partial(
            mode_collapse.series_chart, tables, "covered", title="covered", domain=(0, total), total=total), key="mc_cmp_cov")


def covered(snaps: dict[str, RunSnapshot]) -> dict[str, float]:
    """Classes (or modes) covered at each run's last snapshot: the number the columns above show."""
    out = {}
    for label, s in snaps.items():
        source = source_of(s)
        ok = source is not None and s.samples and coverage.can_measure(source)
        out[label] = float(table_of(s, source)[1]["covered"][-1]) if ok else math.nan
    return out


st.caption("Everyone on this server sees the same runs: the latest comparison anyone started.")
comparisons.section(name, render_comparison, key=f"mc_cmp_{data_choice}", measure=covered,
                    fmt=lambda v: f"{v:.0f} of {10 if data_choice == 'digits' else 8}", select=True)
st.markdown("""
**What to look for**
- *BCE*: look for one or two shapes from the first snapshots on (the classifier may not even name them with
  confidence, so fewer digits count as covered than bars you see), and for the count staying low over time. Pick the
  BCE run in the sidebar to see, at the top of this page, its heatmap (G hopping from one digit to another as D learns
  to reject each) and, on the Training page, its D(G(z)) well below ½, which says D is winning. Whether this run shows
  each of these, and by how much, is on its charts: a seed can collapse more or less.
- *WGAN-GP*: slower per step (five critic updates, each with a second backward pass for the penalty). The critic's
  scores keep a slope towards the data G has not reached; how many digits it draws on this seed is the number measured
  above, not a promise for every run.
""")

course.links("app_pages/mode_collapse.py")
