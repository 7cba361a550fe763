"""VAE vs GAN: two ways to learn to make digits. A small VAE trained here in seconds (cached on disk) beside a GAN run."""

from collections.abc import Sequence

import numpy as np
import streamlit as st

from gan_core.config import DIGITS_TIME, Dataset, get_preset
from gan_core.data import load_digits
from gan_core.lessons import vae
from gan_core.runs.state import RunSnapshot, Status
from ui import cache, course, follow, live, panels
from ui.figures import vae_vs_gan
from ui.figures.images import sample_grid
from ui.plotly_chart import plotly_chart

N_SHOWN = 64  # samples per grid: 8 × 8, as many as a GAN run keeps per snapshot by default
GAN_Z = get_preset("digits").config.z_dim  # the default digits GAN's noise size: the like-with-like VAE uses it too
GRID_PX = 300
SAMPLE_SEED = 0

st.title("VAE vs GAN")
st.write("Both models learn to turn random numbers into new digits, and both end with a network that maps a code z to "
         "an image. They differ in how that network is taught: a VAE is shown each real image and asked to rebuild it; "
         "a GAN's generator never sees a real image, only the discriminator's verdict on its fakes.")

# -- 1. the two architectures --------------------------------------------------------------------------------------------
left, right = st.columns(2, gap="large")
with left:
    st.markdown("**Variational autoencoder (VAE)**")
    st.graphviz_chart(vae_vs_gan.vae_dot(), width="content")
    st.markdown("The encoder squeezes each image into a small code, a point in the latent space, and the decoder rebuilds "
                "the image from it; the loss compares the rebuild with the original pixel by pixel. A second term keeps "
                "the codes spread like N(0, I): nearby z decode to similar images, and most z drawn from N(0, I) land "
                "among real codes and decode to something digit-like (not every z: far out, or between two "
                "digits' clusters, it draws a blend).")
with right:
    st.markdown("**Generative adversarial network (GAN)**")
    st.graphviz_chart(vae_vs_gan.gan_dot(), width="content")
    st.markdown("The generator turns noise into images and the discriminator learns to tell them from real ones. The "
                "generator's only teacher is the discriminator's gradient: it is never told which real image to copy, "
                "only how to look more real.")

# -- 2. training the VAE ---------------------------------------------------------------------------------------------------
st.subheader("Train a VAE on the same 8×8 digits")
LATENT_NAMES = {2: "2-D: its latent space can be drawn", GAN_Z: f"{GAN_Z}-D: as many numbers as the GAN's z"}
latent_dim = st.segmented_control("VAE latent size", list(LATENT_NAMES), default=2, key="vae_latent_dim",
                                  format_func=LATENT_NAMES.get) or 2
st.caption(vae_vs_gan.latent_note(latent_dim, GAN_Z))
source = load_digits()
found = vae.cached_vae(source, latent_dim=latent_dim)
if found is None:
    st.info(f"No {latent_dim}-D VAE trained yet on this server: {vae.default_steps():,} Adam updates on batches of "
            f"{vae.BATCH_SIZE} digits, then it is kept on disk for everyone. 1,000 updates took about 7 s on 2 CPU "
            "cores (seed 0, when this page was written).")
    if st.button("Train the VAE", type="primary", icon=":material/play_arrow:", key="vae_train"):
        bar = st.progress(0.0, text="starting…")

        def progress(step: int, total: int, loss: float) -> None:
            bar.progress(step / total, text=f"step {step:,} of {total:,} · loss {loss:.1f} nats per image")

        vae.get_vae(source, latent_dim=latent_dim, progress=progress)
        st.rerun()  # redrawn from the cache: the offer above goes away

if found is None:
    follow.end_page()
model, info = found
history = info["history"]
formulas, curve = st.columns([3, 2])  # formulas need ~430 px before KaTeX clips them
with formulas:
    st.markdown("The loss per image is the negative ELBO: rebuild the pixels, and keep each q(z|x) close to the prior.")
    st.latex(r"\mathcal{L}(x) = \mathrm{BCE} + D_{\mathrm{KL}}\big(q(z\,|\,x)\,\|\,\mathcal{N}(0, I)\big)")
    st.latex(r"\mathrm{BCE} = -\sum_{i=1}^{64}\big[x_i \log \hat x_i + (1 - x_i)\log(1 - \hat x_i)\big]")
    st.latex(r"D_{\mathrm{KL}} = -\tfrac12 \sum_{j=1}^{" + str(model.latent_dim)
             + r"}\big(1 + \log\sigma_j^2 - \mu_j^2 - \sigma_j^2\big)")
    st.latex(r"z = \mu + \sigma \odot \varepsilon,\quad \varepsilon \sim \mathcal{N}(0, I)")
    st.caption("The last line is the reparameterisation trick: the randomness sits in ε, noise drawn from "
               "N(0, I), so the gradient flows through μ and σ back into the encoder.")
with curve:
    st.markdown(f"**The VAE's training**: {int(history['step'][-1]):,} updates in {info['train_seconds']:.1f} s on the CPU, "
                "then cached on disk")
    plotly_chart(("vae", info["path"], "loss"), lambda: vae_vs_gan.loss_figure(history), key="vae_loss")
    m = st.columns(2)
    m[0].metric("BCE (nats)", f"{history['reconstruction'][-1]:.1f}",
                help="BCE summed over the 64 pixels, averaged over the last updates' images.")
    m[1].metric("KL (nats)", f"{history['kl'][-1]:.2f}", help="How far the codes q(z|x) are from N(0, I), per image.")
    st.caption("BCE here is per pixel, summed over one image's 64 pixels. The BCE loss page, next, averages it over a "
               "batch of D's verdicts: the same formula, added up differently.")
if info.get("note"):
    st.caption(info["note"])

# -- 3. samples side by side -------------------------------------------------------------------------------------------------
st.subheader("New digits from each")
st.write("Left: z ~ N(0, I) through the VAE's decoder. Right: the latest fixed-noise samples of a GAN trained on the "
         "same data. Sharpness is the mean of |2x − 1| over the pixels: 1 when every pixel is pure black or white, "
         "0 when all are mid-grey.")
vae_samples = cache.cached(("vae", info["path"], "samples"), lambda: vae.sample(model, N_SHOWN, seed=SAMPLE_SEED))
real_sharpness = cache.cached(("vae", "real-sharpness"), lambda: vae.sharpness(source.x.numpy()))
vae_sharpness = vae.sharpness(vae_samples)


def grid(images: np.ndarray, caption: str | None = None) -> None:
    st.image(cache.image_url(sample_grid(images[:N_SHOWN], nrow=8)), caption=caption, width=GRID_PX)


def gan_column(snap: RunSnapshot) -> None:
    """The GAN's latest samples and their sharpness; while it trains, its progress too."""
    st.markdown(f"**GAN** · run `{snap.id}` · {snap.config.z_dim}-D noise z")
    if snap.status.active:
        st.progress(snap.progress, text=f"step {snap.step:,} of {snap.total:,}")
    live.show_status(snap)
    record = snap.latest_samples
    if record is None:
        st.caption(panels.nothing_yet(snap, "samples"))
        return
    gan_sharpness = vae.sharpness(record.samples)
    st.metric("Sharpness", f"{gan_sharpness:.2f}", delta=f"{gan_sharpness - vae_sharpness:+.2f} vs the VAE",
              help=f"The real digits score {real_sharpness:.2f}.")
    grid(record.samples, f"step {record.step:,}")


def is_digits_gan(snap: RunSnapshot) -> bool:
    return snap.config.dataset is Dataset.DIGITS


def pick_gan_run(selected: RunSnapshot | None, snaps: Sequence[RunSnapshot]) -> RunSnapshot | None:
    """The GAN to compare with: the selected run if it is a digits run with samples, else the newest finished digits run
    with samples (snaps are newest first), else None."""
    if selected is not None and is_digits_gan(selected) and selected.samples:
        return selected
    return next((s for s in snaps if is_digits_gan(s) and s.samples and s.status is Status.FINISHED), None)


def training_gan_run(snaps: Sequence[RunSnapshot]) -> RunSnapshot | None:
    """The newest digits run still queued or training, if any: show it rather than offer to start another."""
    return next((s for s in snaps if is_digits_gan(s) and s.status.active), None)


def start_gan() -> None:
    live.start(get_preset("digits").config, "digits")


vae_col, gan_col = st.columns(2)
with vae_col:
    st.markdown(f"**VAE** · {model.latent_dim}-D latent space")
    st.metric("Sharpness", f"{vae_sharpness:.2f}", help=f"The real digits score {real_sharpness:.2f}.")
    grid(vae_samples, f"{N_SHOWN} samples, seed {SAMPLE_SEED}")
with gan_col:
    manager = live.get_manager()
    snaps = manager.snapshots()
    gan = pick_gan_run(live.selected_snapshot(), snaps) or training_gan_run(snaps)
    if gan is None:
        st.markdown("**GAN**")
        st.info(f"No finished digits GAN on this server yet. The default digits preset: {DIGITS_TIME}.")
        st.button("Train the default GAN", type="primary", icon=":material/play_arrow:", key="vae_gan_train",
                  on_click=start_gan)
    elif gan.status.active:
        live.live(gan_column, gan.id, key="vae_gan_live")
    else:
        gan_column(gan)
st.caption(f"Real digits score {real_sharpness:.2f}. The VAE's decoder outputs the mean of every digit a code could "
           "stand for, so uncertain pixels come out grey: blur is the price of the pixel-wise loss, with a 2-D code or "
           f"a {GAN_Z}-D one. The GAN is judged by a discriminator that learns to call grey smudges fake, so it "
           "commits to strokes, right or wrong. Sharpness is not quality: a half-trained GAN's crisp blobs score high "
           "too, so read the number next to the grids.")

# -- 4. the latent space -----------------------------------------------------------------------------------------------------
st.subheader("The VAE's latent space")
flat = model if model.latent_dim == 2 else (vae.cached_vae(source, latent_dim=2) or (None, None))[0]
if flat is None:
    st.info("Only a 2-D latent space can be drawn as it is: pick the 2-D VAE above and train it to see this part.")
else:
    flat_info = info if flat is model else vae.cached_vae(source, latent_dim=2)[1]
    st.write("The 2-D VAE's code μ(x) for every digit, coloured by the digit it is. Nobody told the VAE the labels: "
             "look for digits that look alike landing near each other, because that makes them easier to rebuild. "
             "The KL term pulls the codes towards the origin, inside the prior's circles, so that most z drawn from "
             "N(0, I) land among real codes.")
    scatter, lattice = st.columns([3, 2])
    with scatter:
        mu, _ = cache.cached(("vae", flat_info["path"], "codes"), lambda: vae.encode(flat, source.x))
        plotly_chart(("vae", flat_info["path"], "latent"), lambda: vae_vs_gan.latent_figure(mu, source.y.numpy()),
                     key="vae_latent")
    with lattice:
        st.markdown("**What the decoder draws at each point** of the square [−2, 2]²")
        st.image(cache.image_url(sample_grid(vae.decode(flat, vae_vs_gan.latent_grid(10, 2.0)), nrow=10)), width="stretch",
                 caption="z₁ left to right, z₂ bottom to top: look for nearby points drawing similar digits, and "
                         "for blends of two digits between their clusters.")

# -- 5. reconstruction next to generation -----------------------------------------------------------------------------------
st.subheader("Reconstruction next to generation")
st.write("A VAE can rebuild a given digit (encode, then decode its μ) as well as make new ones. A GAN has no encoder: "
         "it can only generate.")
picked = np.random.default_rng(SAMPLE_SEED).choice(len(source.x), size=N_SHOWN // 2, replace=False)
originals = source.x[picked].numpy()
for col, (title, images) in zip(st.columns(3), [("Originals", originals),
                                                 ("VAE reconstructions", vae.reconstruct(model, originals)),
                                                 ("VAE samples (new)", vae_samples[:len(originals)])], strict=True):
    with col:
        st.markdown(f"**{title}**")
        st.metric("Sharpness", f"{vae.sharpness(images):.2f}")
        grid(images)

course.links("app_pages/vae_vs_gan.py")
