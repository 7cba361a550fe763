"""Drawing a run's snapshot with Streamlit: headline numbers, loss charts, samples (image grid or GAN Lab's plane),
history scrubbing, and why a run has nothing to show yet. The Training page draws all of it; Home, BCE loss and Mode
collapse draw parts.

Every figure goes through ui.cache, built once per run version and shared by every browser that shows it.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import streamlit as st

from gan_core.config import ConfigError, Loss
from gan_core.evaluation import rejection
from gan_core.evaluation.coverage import point_stats
from gan_core.runs.folder import CHECKPOINT_FILE
from gan_core.runs.state import RunSnapshot
from gan_core.runs.status import Status
from gan_core.train.records import CheckpointError, SampleRecord
from ui.cache import cached, vega_chart
from ui.figures import curves, images, plane
from ui.plotly_chart import plotly_chart
from ui.text import md_escape

LAYERS = ("real data", "generated", "D's output", "G's push", "G's manifold")
PLANE_HEIGHT = 600  # px: at 1280 × 720, a projector's size, the plane fills most of the screen once scrolled to

PLANE_LEGEND_BCE = """
- **Background**: D's answer at each point: green *real*, purple *fake*, white *can't tell* (D = 0.5).
- **Green dots**: real data; black circles: its modes.
- **Purple dots**, rimmed in white: G's samples.
- **Black arrows**: G's push, −∂J_G/∂x: uphill on D's map, towards what D calls real.
- **Orange mesh**: G's manifold, a grid of noise z drawn through G.

Training ends well when purple sits on every green mode and the background turns white: D can no longer tell.
"""
PLANE_LEGEND_CRITIC = """
- **Background**: the critic's score (higher = more real). Not a probability: only its slope matters.
- **Green dots**: real data; black circles: its modes.
- **Purple dots**, rimmed in white: G's samples.
- **Black arrows**: G's push, along the critic's slope.
- **Orange mesh**: G's manifold, a grid of noise z drawn through G.
"""


def _fmt(value: float, digits: int = 3) -> str:
    return "—" if not math.isfinite(value) else f"{value:.{digits}g}"


def headline(snap: RunSnapshot) -> None:
    """Progress bar and the numbers a teacher reads aloud: step, speed, the two losses, D's two outputs."""
    m = snap.metrics
    last = {c: float(m[c][-1]) if len(m[c]) else math.nan for c in ("d_loss", "g_loss", "d_real", "d_fake")}
    speed = f" · {snap.steps_per_s:,.0f} steps/s" if math.isfinite(snap.steps_per_s) else ""
    st.progress(snap.progress, text=f"step {snap.step:,} of {snap.total:,}{speed}")
    probability = snap.config.loss is Loss.BCE
    cols = st.columns(4)
    cols[0].metric("D loss", _fmt(last["d_loss"]), help="How badly D separates real from fake (lower: D is winning).")
    cols[1].metric("G loss", _fmt(last["g_loss"]), help="How badly G fools D (lower: G is winning). A mean of each "
                   "fake's own loss, on fresh noise after D's update: not the loss of D(G(z))'s mean beside it, as a few "
                   "fakes D rejects outright weigh heavily.")
    cols[2].metric("D(x)" if probability else "critic(x)", _fmt(last["d_real"]),
                   help="D's mean output on real examples" + (": 1 means sure they are real." if probability else "."))
    cols[3].metric("D(G(z))" if probability else "critic(G(z))", _fmt(last["d_fake"]),
                   help="D's mean output on generated examples" + (": 0 means sure they are fake." if probability else "."))


def loss_chart(snap: RunSnapshot, *, key: str, height: int = 280) -> None:
    """D's and G's losses, raw and smoothed, under a one-line heading."""
    st.markdown("**Losses** (thin: each step, bold: smoothed)")
    vega_chart((snap.id, snap.version, "loss", height),
               lambda: curves.loss_chart(snap.metrics, height=height, max_points=curves.MAX_POINTS), key=f"{key}_loss")


def d_output_chart(snap: RunSnapshot, *, key: str, height: int = 280) -> None:
    """D(x) on real data against D(G(z)) on generated data (critic scores for a WGAN), under a one-line heading."""
    st.markdown("**What D says**: real examples against generated ones")
    vega_chart((snap.id, snap.version, "dout", height),
               lambda: curves.d_output_chart(snap.metrics, snap.config.loss, height=height, max_points=curves.MAX_POINTS),
               key=f"{key}_dout")


def curves_row(snap: RunSnapshot, *, key: str) -> None:
    """D and G loss (raw and smoothed) beside D(x) against D(G(z))."""
    left, right = st.columns(2)
    with left:
        loss_chart(snap, key=key)
    with right:
        d_output_chart(snap, key=key)


def pick_record(snap: RunSnapshot, *, key: str, history: bool = True) -> SampleRecord | None:
    """The newest sample snapshot, or, with "Follow live" off, the one chosen on the history slider."""
    records = snap.samples
    if not records:
        return None
    if not history or len(records) < 2:
        return records[-1]
    follow = st.toggle("Follow live", value=True, key=f"{key}_follow",
                       help="Off: scrub back through the recorded snapshots.")
    if follow:
        return records[-1]
    steps = [r.step for r in records]
    # several records can share a step (slow-motion D updates): the slider picks by position
    index = st.select_slider("Snapshot", options=list(range(len(records))), value=len(records) - 1,
                             format_func=lambda i: f"step {steps[i]:,}", key=f"{key}_history")
    return records[min(index, len(records) - 1)]


def nothing_yet(snap: RunSnapshot, what: str, first_at: int | None = None) -> str:
    """Why a run has no `what` (samples, training steps…) to show: it has not got there yet, or it never will.
    `first_at`: the step that records the first one, when it is not the first step."""
    if snap.status is Status.QUEUED:
        return f"No {what} yet: the run is queued and starts when a worker is free."
    if snap.status.active:
        when = f"s at step {first_at:,}" if first_at else " as soon as the run starts"
        return f"No {what} yet: the first come{when}."
    if snap.status in (Status.FAILED, Status.DIVERGED):
        return f"**{md_escape(snap.id)}** has no {what}: it {snap.status.value} before recording any (see why above)."
    return f"**{md_escape(snap.id)}** recorded no {what}."


def samples_view(snap: RunSnapshot, *, key: str, history: bool = True, height: int = PLANE_HEIGHT,
                 filtered: bool | None = None) -> None:
    """Images: a grid from fixed noise. 2D: real points, fakes, D's decision map, G's push and G's manifold, each
    layer toggleable, and a switch for raw against D-filtered samples (`filtered`; by default where `history` is on:
    the Training page's full view, not Home's compact one)."""
    record = pick_record(snap, key=key, history=history)
    if record is None:
        st.info(nothing_yet(snap, "samples"))
        return
    if record.samples.ndim == 4:
        conditional = record.labels is not None
        nrow = snap.config.n_samples if snap.config.n_samples <= 10 else 10 if conditional else None
        src, width = cached((snap.id, "grid", record.step, id(record)), lambda: _grid_src(record.samples, nrow))
        caption = f"step {record.step:,}: {len(record.samples)} samples from the same fixed noise"
        if conditional:
            caption += " (each row asks for 0, 1, …, 9)"
        st.image(src, caption=caption, width=min(480, max(320, width)))
        return
    # The plane takes three quarters of the width, and the layer switches and the key sit beside it, not above: at a
    # projector's 1280 × 720 the picture is what fills the screen.
    plot, side = st.columns([3, 1])
    with side:
        # Checkboxes, one a line: pills in a column this narrow ran off its edge instead of wrapping.
        st.markdown("**Layers**", help="GAN Lab's layers: turn one off to see what is under it.")
        shown = {name for i, name in enumerate(LAYERS) if st.checkbox(name, value=True, key=f"{key}_layer{i}")}
        with_filter = (history if filtered is None else filtered) and st.toggle(
            "D-filtered beside raw", key=f"{key}_rejection", help="Discriminator rejection sampling (Azadi et al., "
            "2019): D has learned where G's samples are too many or too few; keep each of G's samples with a "
            "probability read from D's logit, and draw what D keeps beside what G makes. The Mode collapse page "
            "measures it.")
        st.markdown(PLANE_LEGEND_BCE if snap.config.loss is Loss.BCE else PLANE_LEGEND_CRITIC)
    name = (snap.id, "plane", record.step, id(record), tuple(sorted(shown)), height)
    with plot:
        plotly_chart(name, lambda: plane.plane_figure(
            record, snap.real, show_real="real data" in shown, show_fake="generated" in shown,
            show_field="D's output" in shown, show_arrows="G's push" in shown, show_manifold="G's manifold" in shown,
            modes=snap.modes, probability=snap.config.loss is Loss.BCE, height=height), key=f"{key}_plane")
        st.caption(f"step {record.step:,}: {len(record.samples)} samples from the same fixed noise")
    if with_filter:
        rejection_view(snap, key=key)


# -- raw against D-filtered samples (discriminator rejection sampling) -------------------------------------------------
REJECTION_HEIGHT = 380  # px: two planes side by side under the big one, both visible at 1280 × 720 once scrolled to
REJECTION_SEED = 0  # the same draws at every rerun: the pair changes only when a new checkpoint is written


@dataclass(frozen=True)
class FilteredPair:
    """n of G's samples and n that D's rejection sampling kept, from one checkpoint, with D's map and their figures."""

    raw: SampleRecord
    kept: SampleRecord
    raw_stats: dict[str, Any] | None  # modes and high-quality share (ring, grid); None for user points
    kept_stats: dict[str, Any] | None
    acceptance_rate: float
    drawn: int


def filtered_pair(run_dir: Path, n: int) -> FilteredPair | str:
    """The pair from the run's checkpoint, or why there is none (one line)."""
    try:
        trainer = rejection.load_trainer(run_dir)
        kept = rejection.rejection_sample(trainer, n, seed=REJECTION_SEED)
    except (ConfigError, CheckpointError) as err:
        return str(err)
    field, extent = trainer.decision_field()
    raw = trainer.sample(n, seed=REJECTION_SEED)
    has_modes = trainer.data.modes is not None
    return FilteredPair(
        SampleRecord(trainer.step_count, raw, None, field, extent),
        SampleRecord(trainer.step_count, kept.samples, None, field, extent),
        point_stats(raw, trainer.data) if has_modes else None, point_stats(kept.samples, trainer.data) if has_modes else None,
        kept.acceptance_rate, kept.drawn)


def _figures_line(stats: dict[str, Any] | None) -> str:
    if stats is None:
        return ""
    return f": {stats['high_quality_fraction']:.0%} high quality, {stats['modes_covered']} of {stats['modes_total']} modes"


def rejection_view(snap: RunSnapshot, *, key: str) -> None:
    """Raw and D-filtered samples side by side, from the run's latest checkpoint (D's verdict needs D itself, which
    the snapshots do not hold), or why not."""
    if snap.config.loss is not Loss.BCE:
        st.caption(f"D's filter needs a BCE discriminator, whose logit estimates log p_data/p_g (exactly, for the "
                   f"optimal D); this run's {snap.config.loss.value} score does not, so it has no filtered view.")
        return
    try:
        stat = (snap.path / CHECKPOINT_FILE).stat()
    except OSError:
        st.caption(f"No checkpoint yet: D's filter reads G and D as saved every {snap.config.checkpoint_every:,} steps.")
        return
    n = snap.config.n_samples
    version = (snap.id, stat.st_mtime_ns, stat.st_size, n)  # one checkpoint file
    pair = cached(("drs", *version), partial(filtered_pair, snap.path, n))
    if isinstance(pair, str):
        st.caption(f"No filtered view: {pair}")
        return
    left, right = st.columns(2)
    for col, (record, name, stats, title) in zip((left, right), (
            (pair.raw, "generated", pair.raw_stats, "**G's samples**"),
            (pair.kept, "kept by D", pair.kept_stats, "**Kept by D**")), strict=True):
        with col:
            st.markdown(title + _figures_line(stats))
            plotly_chart(("drs_fig", name, *version), lambda r=record, f=name: plane.plane_figure(
                r, snap.real, show_arrows=False, show_manifold=False, modes=snap.modes, probability=True,
                height=REJECTION_HEIGHT, fake_name=f, revision=f"drs_{f}"), key=f"{key}_drs_{name.replace(' ', '_')}")
    st.caption(f"From the checkpoint at step {pair.raw.step:,}: {len(pair.raw.samples):,} samples each. D kept "
               f"{pair.acceptance_rate:.0%} of the {pair.drawn:,} it judged, each with probability σ(F(x)) from its "
               "logit: discriminator rejection sampling (gan_core.evaluation.rejection).")


def _grid_src(samples: Any, nrow: int | None) -> tuple[str, int]:
    """The sample grid as a PNG data URL, and its width.

    Encoded once per snapshot and sent inside the page's message: given an array, st.image encoded it again for every
    browser on every refresh and stored a copy per browser that each then fetched over HTTP, a new one every second.
    """
    grid = images.sample_grid(samples, nrow=nrow, min_size=320)
    return "data:image/png;base64," + base64.b64encode(images.png_bytes(grid)).decode("ascii"), grid.shape[1]


def samples_png(snap: RunSnapshot) -> bytes:
    """The newest samples as a PNG: the image grid, or the 2D points drawn over the data's extent."""
    record = snap.latest_samples
    if record is None:
        return b""
    if record.samples.ndim == 4:
        return images.png_bytes(images.sample_grid(record.samples, min_size=512))
    return images.png_bytes(images.scatter_image(record.samples, snap.real, record.extent))
