"""Entry point: the page setup, the navigation over the lessons, and the shared sidebar. Nothing else."""

import streamlit as st

from ui import sidebar

st.set_page_config(page_title="GAN explainer", page_icon="🎭", layout="wide")
# The course's order (GAN Specialization, course 1): what a GAN is and how it differs from a VAE (week 1), its loss and
# the training loop (weeks 1-2), the pieces that make it train (week 2), what goes wrong and W-loss (week 3), and
# controlling what it makes (week 4).
page = st.navigation([
    st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("app_pages/vae_vs_gan.py", title="VAE vs GAN", icon=":material/compare:"),
    st.Page("app_pages/bce_loss.py", title="BCE loss", icon=":material/functions:"),
    st.Page("app_pages/training.py", title="Training", icon=":material/monitoring:"),
    st.Page("app_pages/activations.py", title="Activations", icon=":material/show_chart:"),
    st.Page("app_pages/batch_norm.py", title="Batch norm", icon=":material/equalizer:"),
    st.Page("app_pages/mode_collapse.py", title="Mode collapse", icon=":material/scatter_plot:"),
    st.Page("app_pages/controllable.py", title="Controllable generation", icon=":material/tune:"),
])
sidebar.draw(page)
page.run()
