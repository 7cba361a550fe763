"""The Training page's "Keep the generator" lab: upload a checkpoint, draw new samples from its G, or continue training
it as a new run on this server.

The file is hostile input, read by gan_core.lessons.checkpoints (size cap, weights_only, config and weights checked);
a refusal is one line under the uploader. The browser refuses a bigger file before sending it, and the server
(server.maxUploadSize) too, at the same cap.
"""

from __future__ import annotations

import hashlib

import streamlit as st

from gan_core.config import ConfigError
from gan_core.lessons.checkpoints import MAX_CHECKPOINT_BYTES, SavedGenerator, continue_from, read_checkpoint
from gan_core.runs.roles import RunRefused
from gan_core.runs.uploads import MB
from ui import live, roles
from ui.figures import images
from ui.forms import whole_number
from ui.text import md_escape

KEY = "ckpt_upload"
_LOADED = "ckpt_loaded"  # session_state: (digest, SavedGenerator or the refusal), so a rerun does not read it again
N_IMAGES, N_POINTS = 64, 256
MORE_STEPS = 1_000  # the default: a minute or less for the bundled presets on one core


def _load(data: bytes) -> SavedGenerator | ConfigError:
    digest = hashlib.sha256(data).hexdigest()
    held = st.session_state.get(_LOADED)
    if held is not None and held[0] == digest:
        return held[1]
    try:
        loaded: SavedGenerator | ConfigError = read_checkpoint(data)
    except ConfigError as err:
        loaded = err
    st.session_state[_LOADED] = (digest, loaded)  # one per browser: the newest upload replaces the last
    return loaded


def saved_generator_lab() -> None:
    """The uploader, and for a readable checkpoint: its run's settings in one line, a seed, and G's new samples."""
    file = st.file_uploader("A checkpoint (.pt): this page's download, or a run folder's checkpoint.pt from the CLI",
                            type=["pt"], max_upload_size=MAX_CHECKPOINT_BYTES // MB, key=KEY)
    if file is None:
        st.session_state.pop(_LOADED, None)
        return
    loaded = _load(file.getvalue())
    if isinstance(loaded, ConfigError):
        st.error(md_escape(str(loaded)))  # one line; it may quote values from the file
        return
    cfg = loaded.config
    st.success(f"G of a **{cfg.dataset.value}** run ({cfg.arch.value}, z of length {cfg.z_dim}) at step "
               f"{loaded.step:,}: D and the optimisers in the file are not needed to sample.")
    seed_col, label_col = st.columns(2)
    seed = whole_number(seed_col, "Seed of the new noise z", min_value=0, max_value=2**31 - 1, value=0, key="ckpt_seed")
    label = None
    if cfg.conditional:
        label = int(label_col.selectbox("Class to make", range(loaded.n_classes), key="ckpt_label"))
    draw_samples(loaded, seed, label)
    continue_training(file.getvalue(), loaded)


def draw_samples(loaded: SavedGenerator, seed: int, label: int | None) -> None:
    if loaded.config.dataset.is_2d:
        points = loaded.sample(N_POINTS, seed)
        st.image(images.scatter_image(points, None, None, size=400),
                 caption=f"{N_POINTS} new samples from seed {seed}", width=400)
    else:
        grid = images.sample_grid(loaded.sample(N_IMAGES, seed, label), min_size=320)
        st.image(grid, caption=f"{N_IMAGES} new samples from seed {seed}", width=400)


def continue_training(data: bytes, loaded: SavedGenerator) -> None:
    """More steps, and a button that makes a new run from the file (D and the optimisers as saved) and queues it."""
    steps_col, button_col = st.columns([1, 2], vertical_alignment="bottom")
    more = whole_number(steps_col, "More steps", min_value=1, max_value=1_000_000, value=MORE_STEPS, step=100,
                        key="ckpt_more", help="Training continues from the file's step for this many more steps.")
    if not button_col.button("Continue training it as a new run", icon=":material/play_arrow:", key="ckpt_continue"):
        return
    manager, actor = live.get_manager(), roles.actor()
    try:
        run_id = continue_from(data, manager.runs_dir, more, owner=actor.owner, data_dir=manager.data_dir)
    except ConfigError as err:
        st.error(md_escape(str(err)))
        return
    manager.scan()
    try:
        manager.resume(run_id, actor=actor)  # the session's quota and the queue's bound, as for any start
    except RunRefused as err:
        manager.delete(run_id, actor=actor)  # its own new folder: nothing of anyone else's
        live.refused(err)
        return
    live.select(run_id)
    st.toast(f"**{run_id}** continues from step {loaded.step:,} to {loaded.step + more:,}.", icon=":material/play_arrow:")
    st.rerun()  # the page above was drawn for the run shown before: draw it again for the new one
