"""Controllable generation: steer a trained generator with a classifier's gradient, walk its noise space, and ask a
conditional generator for the digit you want."""

from functools import partial

import numpy as np
import streamlit as st
import torch
from streamlit.delta_generator import DeltaGenerator

from gan_core.config import DIGITS_TIME, get_preset
from gan_core.lessons.ascent_steps import LAB_IMAGES, LAB_WEIGHT, step_size_from_lab
from gan_core.lessons.control import interpolate_z, slerp
from gan_core.lessons.saved_generator import RunGenerator, ZPath, load_generator, suits, summarize
from gan_core.runs.state import RunSnapshot
from gan_core.runs.status import Status
from ui import cache, course, live
from ui.figures import controllable
from ui.figures.images import image_rows
from ui.forms import whole_number
from ui.plotly_chart import plotly_chart

PRESET, COND_PRESET = "digits", "digits-conditional"
DONE = (Status.FINISHED, Status.STOPPED)  # a run whose checkpoint no longer changes
STEP_SIZES = (0.01, 0.0125, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)  # 0.0125: the course lab's step, in η
FRAMES = np.linspace(0.0, 1.0, 11)  # interpolation strips: t = 0, 0.1, …, 1


def usable(snap: RunSnapshot, conditional: bool) -> bool:
    return suits(snap.config, conditional) and snap.status in DONE and (snap.path / "checkpoint.pt").is_file()


def progress(snap: RunSnapshot) -> None:
    st.progress(snap.progress, text=f"Training **{snap.id}**: step {snap.step:,} of {snap.total:,}")
    live.show_status(snap)


def train_offer(conditional: bool, key: str) -> None:
    """No usable generator: follow one that is training, else offer to train the preset (the page continues when done)."""
    name = COND_PRESET if conditional else PRESET
    training = [s for s in live.get_manager().snapshots() if suits(s.config, conditional) and s.status.active]
    if training:
        st.info(f"A {'conditional ' if conditional else ''}digits generator is training; this part of the page "
                "opens when it finishes.")
        live.live(progress, training[0].id, key=f"{key}_live")
        return
    preset = get_preset(name)
    st.info(f"No trained {'conditional ' if conditional else ''}digits generator on this server yet. Train one "
            f"({preset.config.steps:,} steps of the `{name}` preset, no download; {DIGITS_TIME}):")
    st.button(f"Train a {'conditional ' if conditional else ''}digits generator", key=f"{key}_train", type="primary",
              icon=":material/play_arrow:", on_click=live.start, args=(preset.config, name))


def pick(conditional: bool, key: str) -> RunGenerator | None:
    """The generator picker: finished or stopped runs that fit, the browser's selected run first if it fits, else the
    newest. None (after saying why) when there is none."""
    snaps = [s for s in live.get_manager().snapshots() if usable(s, conditional)]
    if not snaps:
        train_offer(conditional, key)
        return None
    ids = [s.id for s in snaps]
    if st.session_state.get(key) not in ids:
        selected = live.selected_id()
        st.session_state[key] = selected if selected in ids else ids[0]
    labels = {s.id: s.label for s in snaps}
    run_id = st.selectbox("Generator" if not conditional else "Conditional generator", ids, key=key,
                          format_func=lambda i: labels[i],
                          help="Finished or stopped runs on this server whose checkpoint this page can load.")
    snap = next(s for s in snaps if s.id == run_id)
    try:
        return load_generator(snap.path)
    except Exception as err:  # noqa: BLE001 - e.g. an MNIST run whose data is not on this machine
        st.error(f"Cannot load **{run_id}**'s generator: {type(err).__name__}: {err}")
        return None


def resample(*keys: str) -> None:
    """New noise: move each seed on by the number of seeds, so a pair never lands on each other's old value."""
    for key in keys:
        st.session_state[key] = float(int(st.session_state.get(key, 0)) + len(keys))  # the field holds floats


def seed_input(label: str, key: str, default: int, col: DeltaGenerator) -> int:
    st.session_state.setdefault(key, float(default))  # a whole-number field is a float field (ui.forms.whole_number)
    return whole_number(col, label, min_value=0, max_value=1_000_000, step=1, key=key)


st.title("Controllable generation")
st.write("A trained generator turns noise z into a digit, but you do not choose which. Two ways to take control: "
         "**steer z** with a classifier's gradient (the generator stays as it is), or **train a conditional "
         "generator** that takes the class as an input. In between, z-space itself: nearby z's give similar digits.")

# -- 1. classifier ascent on z ------------------------------------------------------------------------------------------
st.subheader("Steer the noise with a classifier")
st.write("A classifier trained on real digits scores each generated image. Its score for the target digit is a "
         "differentiable function of z, so we can climb it: nudge z along the gradient, generate again, repeat. "
         "The generator's weights never change; only the noise moves. In the course the features are attributes "
         "within a class (a smile, hair colour), scored by a pre-trained classifier; this classifier knows only the "
         "ten digits, so the \"feature\" here is \"looks like a 3\". That is still steering an unconditional G, not "
         "conditional generation (below), where G is trained with the label.")
st.latex(r"\text{score}(z) = \ell_{\text{target}}\big(G(z)\big) \;-\; \lambda\,"
         r"\big\lVert \ell_{\text{others}}\big(G(z)\big) - \ell_{\text{others}}\big(G(z_0)\big) \big\rVert_2"
         r"\qquad z \leftarrow z + \eta\,\nabla_z\,\text{score}(z)")
st.caption("ℓ: the classifier's logits (scores before softmax); z₀: the starting noise. In the course, z is "
           "*entangled* when one direction in z changes several features at once (add a beard and the face also "
           "changes). Here the features are the classifier's ten scores: the penalty λ makes a step that moves the "
           "other nine logits cost score, so z moves along directions that change the target and as little else as "
           "it can.")

gen = pick(conditional=False, key="ctl_run")
if gen is not None:
    c1, c2, c3, c4 = st.columns(4)
    target = c1.slider("Target digit", 0, 9, 3, key="ctl_target")
    steps = c2.slider("Ascent steps", 1, 30, 10, key="ctl_steps", help="How many times z is nudged.")
    step_size = c3.select_slider("Step size η", STEP_SIZES, value=0.1, key="ctl_step_size",
                                 help=f"How far each nudge goes, on each sample's own score. The lab uses weight "
                                 f"{LAB_WEIGHT:g} on the mean over its {LAB_IMAGES} images: η = "
                                 f"{step_size_from_lab():g} here.")
    penalty = c4.slider("Entanglement penalty λ", 0.0, 2.0, 0.1, step=0.05, key="ctl_penalty",
                        help="0: only the target counts. Larger: other digits' scores must stay put (the lab uses 0.1).")
    c1, c2, c3, _ = st.columns(4)
    n = c1.slider("Samples", 2, 16, 8, key="ctl_n")
    seed = seed_input("Noise seed", "ctl_seed", 0, c2)
    c3.button("Resample", icon=":material/casino:", key="ctl_resample", on_click=resample, args=("ctl_seed",),
              help="New noise vectors to start from.")

    def build() -> tuple:
        result = gen.ascent(target, steps, step_size, penalty, n, seed)
        return result, summarize(result), controllable.ascent_grid(result)

    ascent = ("ctl_ascent", gen.key, target, steps, step_size, penalty, n, seed)
    result, summary, grid = cache.cached(ascent, build)

    m1, m2, m3, m4 = st.columns(4)
    m1.metric(f"Mean p(digit {target})", f"{summary.end[target]:.2f}", f"{summary.change[target]:+.2f} from step 0")
    m2.metric("Samples whose p rose", f"{round(summary.raised * n)} of {n}")
    m3.metric(f"Samples read as a {target}", f"{round(summary.reached * n)} of {n}",
              f"{round((summary.reached - summary.started_as_target) * n):+d} from step 0")
    m4.metric("Other logits moved", f"{result.other_logit_shift[-1]:.1f}",
              help="Mean over samples of ‖ℓ_others − ℓ_others at step 0‖₂: how much the step changed besides the "
                   "target, the entanglement the penalty λ holds back.")
    st.caption(controllable.others_sentence(summary.change, target) + " "
               + controllable.step_sentence(step_size, n))
    st.warning("The same classifier steers z and scores the result, so these numbers flatter the method: z can be "
               "pushed until the classifier says the target without a person seeing it. Judge the grid by eye too.",
               icon=":material/visibility:")

    left, right = st.columns([2, 3], gap="large")
    with left:
        st.image(cache.image_url(grid), caption=f"Columns: {n} samples. Rows: ascent steps 0 (top, the starting z) to {steps}.",
                 width="stretch")
    with right:
        plotly_chart((*ascent, "probs"), partial(controllable.class_prob_figure, result), key="ctl_probs")
        plotly_chart((*ascent, "heat"), partial(controllable.target_heatmap, result), key="ctl_heat")

    # -- 2. z-space ---------------------------------------------------------------------------------------------------
    st.subheader("Walk through z-space")
    st.write("Pick two noise vectors and walk from one to the other: G is a smooth function, so look for the digits "
             "changing gradually. A straight line cuts through the middle of the Gaussian cloud: halfway, z is about "
             "√(d/2) long against the √d of almost every z G saw in training. A spherical path (slerp) keeps the "
             "length typical.")
    st.latex(r"\text{linear: } (1-t)\,z_a + t\,z_b \qquad "
             r"\text{slerp: } \frac{\sin\big((1-t)\Omega\big)}{\sin\Omega}\,z_a + \frac{\sin(t\Omega)}{\sin\Omega}\,z_b,"
             r"\quad \cos\Omega = \hat z_a\cdot\hat z_b")
    c1, c2, c3, c4 = st.columns([1, 1, 1, 3])
    seed_a = seed_input("Seed of z_a", "ctl_seed_a", 1, c1)
    seed_b = seed_input("Seed of z_b", "ctl_seed_b", 2, c2)
    c3.button("Resample", icon=":material/casino:", key="ctl_resample_ab", on_click=resample,
              args=("ctl_seed_a", "ctl_seed_b"), help="Two new noise vectors.")
    t = c4.slider("t", 0.0, 1.0, 0.5, step=0.05, key="ctl_t", help="0: z_a, 1: z_b.")

    def build_paths() -> tuple:
        paths = {how: gen.z_path(seed_a, seed_b, FRAMES, how) for how in ZPath}
        strip = image_rows(np.stack([paths[how][1] for how in ZPath]), min_size=640)
        return strip, {how.value: paths[how][0].norm(dim=1).numpy() for how in ZPath}

    strip, norms = cache.cached(("ctl_paths", gen.key, seed_a, seed_b), build_paths)
    z_a, z_b = gen.noise(1, seed_a)[0], gen.noise(1, seed_b)[0]
    at_t = {how: fn(z_a, z_b, t) for how, fn in (("linear", interpolate_z), ("slerp", slerp))}
    at_t_images = cache.cached(("ctl_at_t", gen.key, seed_a, seed_b, t),
                                lambda: image_rows(gen.images(torch.stack(list(at_t.values())))[None], min_size=240))
    left, right = st.columns([3, 2], gap="large")
    with left:
        st.image(cache.image_url(strip), caption="t = 0, 0.1, …, 1 from left to right. Top row: linear; bottom row: slerp.",
                 width="stretch")
        st.image(cache.image_url(at_t_images), caption=f"t = {t:.2f}. Linear: ‖z‖ = {float(at_t['linear'].norm()):.2f}; "
                 f"slerp: ‖z‖ = {float(at_t['slerp'].norm()):.2f}.", width=320)
    with right:
        plotly_chart(("ctl_norms", gen.key, seed_a, seed_b, t), partial(
            controllable.norm_figure, FRAMES, norms, t, typical=float(np.sqrt(gen.config.z_dim))), key="ctl_norms")

# -- 3. conditional generation ------------------------------------------------------------------------------------------
st.subheader("Ask for a digit: conditional generation")
st.write("A conditional GAN is trained with the class as a second input: G gets z joined to a one-hot label y, and D "
         "judges the image *and* its label, so G learns to draw the digit it is asked for. No classifier at "
         "generation time, but you need labelled data and the choice is fixed at training.")
cond = pick(conditional=True, key="ctl_cond_run")
if cond is not None:
    c1, c2, c3 = st.columns([3, 1, 1])
    with c1:
        digit = st.segmented_control("Digit", list(range(10)), default=3, key="ctl_digit")
    digit = 3 if digit is None else int(digit)
    cond_seed = seed_input("Noise seed", "ctl_cond_seed", 0, c2)
    c3.button("Resample", icon=":material/casino:", key="ctl_cond_resample", on_click=resample, args=("ctl_cond_seed",))

    def build_class() -> tuple:
        z = cond.noise(16, cond_seed)
        images = cond.images(z, torch.full((16,), digit))
        return image_rows(images.reshape(2, 8, *images.shape[1:]), min_size=480), cond.probs(images)

    grid, probs = cache.cached(("ctl_class", cond.key, digit, cond_seed), build_class)
    agree = int((probs.argmax(1) == digit).sum())
    st.image(cache.image_url(grid), caption=f"16 noise vectors, each with the label {digit}. The classifier reads {agree} "
             f"of 16 as a {digit} (mean p = {probs[:, digit].mean():.2f}).", width=480)

    st.markdown("**Between two digits.** The label is a vector, so it can be soft: G never saw one during training. "
                "Look at the row below: does it morph from one digit into the other, or jump? The chart beside it "
                "says which digit the classifier reads in each picture.")
    st.latex(r"y(t) = (1-t)\,e_a + t\,e_b")
    c1, c2, c3 = st.columns([1, 1, 3])
    class_a = c1.selectbox("From digit a", list(range(10)), index=1, key="ctl_class_a")
    class_b = c2.selectbox("To digit b", list(range(10)), index=7, key="ctl_class_b")
    t_label = c3.slider("t", 0.0, 1.0, 0.5, step=0.05, key="ctl_t_label")

    def build_labels() -> tuple:
        _, images = cond.label_path(class_a, class_b, FRAMES, cond_seed)
        return image_rows(images[None], min_size=640), cond.probs(images)

    strip, path_probs = cache.cached(("ctl_labels", cond.key, class_a, class_b, cond_seed), build_labels)
    labels_t, image_t = cache.cached(("ctl_label_t", cond.key, class_a, class_b, cond_seed, t_label),
                                      partial(cond.label_path, class_a, class_b, np.array([t_label]), cond_seed))
    left, right = st.columns([3, 2], gap="large")
    with left:
        st.image(cache.image_url(strip), width="stretch",
                 caption=f"One noise vector; the label goes from digit {class_a} (t = 0) to digit {class_b} (t = 1).")
        weights = ", ".join(f"{w:.2f}·e{c}" for c, w in enumerate(labels_t[0].tolist()) if w > 0) or "0"
        st.image(cache.image_url(image_rows(image_t[None], min_size=160)), caption=f"t = {t_label:.2f}: y = {weights}", width=200)
    with right:
        plotly_chart(("ctl_label_probs", cond.key, class_a, class_b, cond_seed, t_label),
                     partial(controllable.label_prob_figure, FRAMES, path_probs, class_a, class_b, t_label),
                     key="ctl_label_probs")

course.links("app_pages/controllable.py")
