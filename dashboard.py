"""Entry point: the page setup, the navigation over the lessons, and the shared sidebar. Nothing else."""

import streamlit as st

from ui import course, follow, per_element, rerun_hold, sidebar

# once per process, around Streamlit's own session code: see each module for the measurement that asked for it
rerun_hold.install()  # a fragment's rerun never drops the end of the run before it
per_element.install()  # a session's elements reach the event loop in batches, config reads take no lock

st.set_page_config(page_title="GAN explainer", page_icon="🎭", layout="wide")
# Streamlit leaves 6rem above a page's title; on a 1280x720 projector that pushes a lesson's picture below the fold.
# 3.5rem still clears the toolbar (3.75rem, drawn over the top padding). Style-only html takes no space on the page.
st.html("<style>[data-testid='stMainBlockContainer'] { padding-top: 3.5rem; }</style>")
page = st.navigation(course.pages())  # the course's order: ui/course.py
with follow.showing():  # a follower who follows the presenter has arrived once this run is not cut short
    sidebar.draw(page)
    with follow.published():  # the presenter's page is drawn before the room is told to follow it
        page.run()
