"""Entry point: the page setup, the navigation over the lessons, and the shared sidebar. Nothing else."""

import streamlit as st

from ui import course, sidebar, style

st.set_page_config(page_title="GAN explainer", page_icon="🎭", layout="wide")
st.html(style.PAGE_CSS)  # style-only html takes no space on the page
page = st.navigation(course.pages())  # the course's order: ui/course.py
sidebar.draw(page)
page.run()
