"""What the pages draw, as pure functions from engine records to plotly figures, Vega-Lite (spec, data) pairs and
images: no streamlit here, so tests need no browser.

One module per page, named like the page in app_pages/ (home, bce_loss, activations, batch_norm, mode_collapse,
controllable, vae_vs_gan), and the pieces several pages draw, named for what they draw:
curves (a run's losses and D's outputs over steps), plane (GAN Lab's 2D view), images (sample grids and PNGs).
Colours, margins and legends come from ui.style.
"""
