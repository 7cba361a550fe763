"""Take the lesson home: under a comparison whose runs have ended, the presenter (or a learner alone, with no presenter
key) downloads the room's predictions beside what the runs measured (CSV) and the comparison's charts (PNG, in a ZIP),
and clears the questions for the next class.

The files are built by gan_core.lessons.export only when a button is pressed (st.download_button runs a callable then,
on a thread of its own), never on a page run, and a student's page draws none of this: a room of followers rerunning
the page pays nothing for it. Clearing is the store's presenter-only rule (Predictions.clear), whatever a page draws.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import streamlit as st

from gan_core.lessons import export, outcomes
from gan_core.lessons.predictions import Predictions
from gan_core.lessons.shared_comparisons import SharedComparisons
from gan_core.runs.roles import RunRefused
from ui import predictions, roles
from ui.text import md_escape

_SAID = "take_home_said:"  # + key -> what clearing did, said once inside its confirmation


def _csv(asked: Predictions, shared: SharedComparisons, scoring: outcomes.Scoring) -> Callable[[], bytes]:
    return lambda: export.predictions_csv(export.lessons(asked, shared), scoring)


def _charts(name: str, asked: Predictions, shared: SharedComparisons,
            scoring: outcomes.Scoring) -> Callable[[], bytes]:
    def build() -> bytes:
        return export.charts_zip([x for x in export.lessons(asked, shared) if x.comparison.name == name], scoring)

    return build


def _clear(key: str) -> None:
    try:
        cleared = predictions.store().clear(actor=roles.actor())
    except RunRefused as err:  # the presenter role was lost (a new key): the store says so
        st.session_state[_SAID + key] = ("warning", str(err))
        return
    questions = "question" if cleared == 1 else "questions"
    st.session_state[_SAID + key] = ("success", f"Cleared {cleared} {questions}: the next class starts with none. "
                                                "The runs stay.")


def panel(name: str, shared: SharedComparisons, scoring: outcomes.Scoring, *, key: str) -> None:
    """The buttons, for the presenter (or a learner alone); nothing for a student. `shared`: the room's comparisons;
    `scoring`: how the page scores a snapshot's coverage (its cached ways: nothing the page scored is scored again)."""
    if not roles.is_presenter():
        return
    asked = predictions.store()
    st.markdown("**Take the lesson home**: the room's predictions beside what the runs measured (every question, one "
                "row each) and this comparison's charts.")
    with st.container(horizontal=True):
        st.download_button("Predictions (CSV)", data=_csv(asked, shared, scoring), file_name=f"predictions-{date.today()}.csv",
                           mime="text/csv", on_click="ignore", key=f"{key}_csv", icon=":material/table_view:",
                           help="One row per question: its options and how many chose each, what the runs measured, "
                                "the runs and their seed. Opens in any spreadsheet.")
        st.download_button("Charts (PNG)", data=_charts(name, asked, shared, scoring), file_name=f"{name}-charts.zip",
                           mime="application/zip", on_click="ignore", key=f"{key}_charts", icon=":material/image:",
                           help="This comparison's charts as pictures for slides, in a ZIP: the room's predictions, "
                                "the number the question is answered with over training, and the losses.")
        with st.popover("Clear the questions for the next class", icon=":material/delete_sweep:"):
            st.markdown("This removes every question and its answers, on every lesson page. Download the "
                        "predictions first: it cannot be undone. The runs stay.")
            st.button("Yes, clear every question", key=f"{key}_clear", type="primary", icon=":material/delete:",
                      on_click=_clear, args=(key,))
            # said here, where the teacher looks: the popover stays open after the click, over anything below it
            said = st.session_state.pop(_SAID + key, None)
            if said is not None:
                kind, text = said
                (st.success if kind == "success" else st.warning)(md_escape(text), icon=":material/delete_sweep:")
