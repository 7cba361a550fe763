"""The lessons in the course's order (GAN Specialization, course 1), and the links that walk a learner through them.

dashboard.py builds the navigation from PAGES and each page ends with `links(its path)`: one list, so the sidebar's order
and every page's "Back" and "Next" cannot disagree. The order: what a GAN is and how it differs from a VAE, its loss
and the training loop (week 1: the first-GAN lab puts it all together), the pieces that make it train (week 2), what
goes wrong and W-loss (week 3), and controlling what it makes (week 4). Then the sweep page, beyond the course: many
settings at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
from streamlit.navigation.page import StreamlitPage

from ui import glossary

_BUILT = "course_pages"  # session_state: this session's st.Page objects


@dataclass(frozen=True)
class Lesson:
    path: str  # relative to dashboard.py, as st.Page and st.page_link take it
    title: str
    icon: str
    week: int | None  # the course-1 week it follows; None: a tool beyond the course, after its lessons
    builds_on: str  # one clause: what the previous page gave this one


PAGES: tuple[Lesson, ...] = (
    Lesson("app_pages/home.py", "Home", ":material/home:", 1, ""),
    Lesson("app_pages/vae_vs_gan.py", "VAE vs GAN", ":material/compare:", 1,
           "the generator and discriminator from Home"),
    Lesson("app_pages/bce_loss.py", "BCE loss", ":material/functions:", 1,
           "the minimax game Home previewed"),
    Lesson("app_pages/training.py", "Training", ":material/monitoring:", 1,
           "the BCE loss each update minimises"),
    Lesson("app_pages/activations.py", "Activations", ":material/show_chart:", 2,
           "the layers the Training page trains"),
    Lesson("app_pages/batch_norm.py", "Batch norm", ":material/equalizer:", 2,
           "the activations whose inputs batch norm steadies"),
    Lesson("app_pages/mode_collapse.py", "Mode collapse", ":material/scatter_plot:", 3,
           "the batch-norm comparison's run without batch norm"),
    Lesson("app_pages/controllable.py", "Controllable generation", ":material/tune:", 4,
           "a GAN trained on all ten digits"),
    Lesson("app_pages/sweep.py", "Explore hyperparameters", ":material/grid_view:", None,
           "the settings each lesson changed one at a time"),
)


def pages() -> list[StreamlitPage]:
    """st.Page objects for st.navigation, Home first (the default). Built once per browser session and kept in its
    session_state: a StreamlitPage may not be shared between sessions (st.navigation marks which one may run), and
    building nine of them on every rerun of thirty followers was a tenth of the server's busy time (py-spy)."""
    built = st.session_state.get(_BUILT)
    if built is None:
        built = st.session_state[_BUILT] = [st.Page(p.path, title=p.title, icon=p.icon, default=i == 0)
                                            for i, p in enumerate(PAGES)]
    return built


def _index(path: str) -> int:
    return next(i for i, p in enumerate(PAGES) if p.path == path)


def page(path: str) -> StreamlitPage:
    """This session's st.Page of the lesson at `path`, for st.page_link: given a path string instead, Streamlit resolves
    it on the disk (os.path.realpath) in every run of every browser, a twentieth of a follower's page run (py-spy)."""
    return pages()[_index(path)]


def neighbours(path: str) -> tuple[Lesson | None, Lesson | None]:
    """The lessons before and after `path` in the course's order (None at either end)."""
    index = _index(path)
    before = PAGES[index - 1] if index > 0 else None
    after = PAGES[index + 1] if index + 1 < len(PAGES) else None
    return before, after


def links(path: str) -> None:
    """"Back" and "Next" at the end of the page at `path` (each names its lesson; Back's help says what this one builds
    on), and the course glossary between them."""
    before, after = neighbours(path)
    here = next(p for p in PAGES if p.path == path)
    st.divider()
    back, terms, forward = st.columns([2, 1, 2])
    with terms.popover("Glossary", icon=":material/menu_book:", help="The course's terms as this app uses them"):
        st.markdown(glossary.markdown())
    if before is not None:
        back.page_link(page(before.path), label=f"Back: {before.title}", icon=":material/arrow_back:",
                       help=f"This page builds on {here.builds_on}." if here.builds_on else None)
    if after is not None:
        week = f" (week {after.week})" if after.week is not None else ""
        forward.page_link(page(after.path), label=f"Next: {after.title}{week}", icon=":material/arrow_forward:")
