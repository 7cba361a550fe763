"""The Training page's "Keep the generator" lab: upload a checkpoint, draw new samples from its G.

The file is hostile input, read by gan_core.lessons.checkpoints (size cap, weights_only, config and weights checked);
a refusal is one line under the uploader. The browser refuses a bigger file before sending it, and the server
(server.maxUploadSize) too, at the same cap.
"""

from __future__ import annotations

import hashlib

import streamlit as st

from gan_core.config import ConfigError
from gan_core.lessons.checkpoints import MAX_CHECKPOINT_BYTES, SavedGenerator, read_checkpoint
from gan_core.runs.uploads import MB
from ui.figures import images
from ui.text import md_escape

KEY = "ckpt_upload"
_LOADED = "ckpt_loaded"  # session_state: (digest, SavedGenerator or the refusal), so a rerun does not read it again
N_IMAGES, N_POINTS = 64, 256


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
    seed = int(seed_col.number_input("Seed of the new noise z", 0, 2**31 - 1, 0, key="ckpt_seed"))
    label = None
    if cfg.conditional:
        label = int(label_col.selectbox("Class to make", range(loaded.n_classes), key="ckpt_label"))
    if cfg.dataset.is_2d:
        points = loaded.sample(N_POINTS, seed)
        st.image(images.scatter_image(points, None, None, size=400),
                 caption=f"{N_POINTS} new samples from seed {seed}", width=400)
    else:
        grid = images.sample_grid(loaded.sample(N_IMAGES, seed, label), min_size=320)
        st.image(grid, caption=f"{N_IMAGES} new samples from seed {seed}", width=400)
