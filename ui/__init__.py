"""The Streamlit side of the dashboard: everything between the engine's records (gan_core) and the pages (app_pages/).

- figures/   what the pages draw (pure: no streamlit): one module per page, and curves, plane, images shared by several
- style      every colour, palette, margin and legend placement
- cache      the one place a figure or chart is built once per run version and shared by every browser
- panels     a run's snapshot drawn with Streamlit: headline numbers, loss charts, samples, history scrubbing
- live       the server's one RunManager, each browser's selected run, the sidebar, run controls, live fragments
- forms      the hyperparameter form, built from the engine's config fields
- text       user text shown as typed inside Streamlit markdown
"""
