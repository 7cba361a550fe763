"""Entry point. Until the lesson pages land it shows only what the engine already has: its training presets."""

import pandas as pd
import streamlit as st

from gan_core.config import PRESETS

st.set_page_config(page_title="GAN explainer", layout="wide")
st.title("GAN explainer")
st.write("The engine's training presets for small generative adversarial networks; train one from a terminal with "
         "`python -m gan_core train --preset NAME --out runs/NAME`.")

rows = [
    {
        "preset": name,
        "description": p.description,
        "source": p.source,
        "dataset": p.config.dataset.value,
        "arch": p.config.arch.value,
        "loss": p.config.loss.value,
        "conditional": p.config.conditional,
        "z_dim": p.config.z_dim,
        "lr (G / D)": f"{p.config.lr_g:g} / {p.config.lr_d:g}",
        "batch": p.config.batch_size,
        "D steps": p.config.d_steps,
        "steps": p.config.steps,
    }
    for name, p in PRESETS.items()
]
st.dataframe(pd.DataFrame(rows), hide_index=True)
