"""Predict, then observe, on a page: the presenter's question to the room, each browser's answer, the live tally, and the
predictions set beside what the runs measured.

The rules (only the presenter opens and closes a question, one anonymous answer per browser) live in
gan_core.lessons.predictions; this module draws them. Every browser polls the question (WAIT_S) so a student sees it
within seconds of the presenter opening it; the presenter's tally refreshes every live.REFRESH_S while it is open.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

import pandas as pd
import streamlit as st

from gan_core.config import ConfigError
from gan_core.lessons.comparisons import get_comparison
from gan_core.lessons.predictions import Poll, Predictions
from gan_core.runs.roles import RunRefused
from ui import cache, live, roles
from ui.style import FIT
from ui.text import md_escape

WAIT_S = 3.0  # a closed or absent question is polled this often: thirty students at 1 s would cost a core's tenth
_ERROR = "prediction_error:"  # + key -> (the question's id it is about, or None; the message)

_store: Predictions | None = None
_store_lock = threading.Lock()


def store() -> Predictions:
    """The server's questions, kept beside the runs (a new runs folder, as in a test, gets its own store)."""
    global _store
    folder = live.get_manager().runs_dir
    with _store_lock:
        if _store is None or _store.path.parent != folder:
            _store = Predictions(folder)
        return _store


def close_on_start(name: str) -> None:
    """The presenter started the comparison: the room's answers are locked in before the first evidence comes."""
    poll = store().poll(name)
    if poll is not None and poll.is_open:
        store().close(name, actor=roles.actor())


def _answer(name: str, poll_id: int, widget: str, key: str) -> None:
    choice = st.session_state.get(widget)
    if choice is None:
        return
    try:
        store().answer(name, poll_id, choice, actor=roles.actor(), address=roles.client_address())
    except ConfigError as err:  # closed or replaced while this browser showed it, or too many new answers
        st.session_state[_ERROR + key] = (poll_id, str(err))
    else:
        st.session_state.pop(_ERROR + key, None)


def tally_text(poll: Poll) -> str:
    tally = poll.tally()
    n = sum(tally.values())
    return f"{n} {'answer' if n == 1 else 'answers'}: " + " · ".join(f"{choice} {count}" for choice, count in tally.items())


def tally_chart(poll: Poll, right: str | None, *, key: str) -> None:
    """One bar per choice, in the question's order; the choice the runs proved right (once known) in green."""
    tally = poll.tally()

    def build() -> tuple[dict, pd.DataFrame]:
        data = pd.DataFrame({"choice": list(tally), "answers": list(tally.values()),
                             "right": [choice == right for choice in tally]})
        spec = {
            "mark": {"type": "bar", "cornerRadiusEnd": 3},
            "height": 36 * len(tally) + 50, "autosize": FIT,  # the height holds the axis too: ~36 px per bar
            "encoding": {
                "y": {"field": "choice", "type": "nominal", "sort": list(tally), "title": None},
                "x": {"field": "answers", "type": "quantitative", "title": "answers",
                      "axis": {"tickMinStep": 1, "format": "d"}, "scale": {"domainMin": 0}},
                "color": {"condition": {"test": "datum.right", "value": "#2e7d32"}, "value": "#7986cb"},
                "tooltip": [{"field": "choice"}, {"field": "answers"}],
            },
        }
        return spec, data

    cache.vega_chart(("prediction_tally", poll.name, poll.id, tuple(tally.items()), right), build, key=key)


def panel(name: str, *, key: str) -> None:
    """The question block above a comparison's button: the presenter opens and closes it and sees the tally; every
    browser answers while it is open. Polls on its own (a fragment), so a question opened elsewhere shows up."""
    presenter = roles.is_presenter()
    first = store().poll(name)
    was_open = first is not None and first.is_open

    @st.fragment(run_every=live.REFRESH_S if presenter and was_open else WAIT_S, key=f"{key}_question")
    def body() -> None:
        if not presenter:
            store().seen(name, roles.browser_id())
        poll = store().poll(name)
        is_open = poll is not None and poll.is_open
        if presenter and is_open != was_open:  # opened or closed in another tab: the tally's refresh rate changes
            st.rerun()
        if presenter and not is_open:
            if st.button("Ask the room to predict first", key=f"{key}_ask", icon=":material/how_to_vote:",
                         help="Students answer in their own browsers, anonymously; you see the tally live. Pressing "
                              "the comparison's button closes the question."):
                try:
                    store().open(name, actor=roles.actor())
                except RunRefused as err:  # the presenter role was lost (a new key): the store says so
                    st.session_state[_ERROR + key] = (None, str(err))
                st.rerun()
        if poll is not None and is_open:
            with st.container(border=True):
                st.markdown(f":material/how_to_vote: **Predict before it runs.** {md_escape(poll.question)}")
                mine = poll.answer_of(roles.browser_id())
                widget = f"{key}_vote_{poll.id}"
                st.radio("Your prediction", poll.choices, key=widget, horizontal=True,
                         index=poll.choices.index(mine) if mine in poll.choices else None,
                         on_change=_answer, args=(name, poll.id, widget, key))
                st.caption("Anonymous, one answer per browser: change it until the question closes." if mine is None
                           else f"Your answer: **{md_escape(mine)}**. You can change it until the question closes.")
                if presenter:
                    here = store().present(name, besides=roles.browser_id())
                    st.markdown(f"**The room so far**: {tally_text(poll)} (from {here} "
                                f"{'browser' if here == 1 else 'browsers'} on this page now)")
                    tally_chart(poll, None, key=f"{key}_tally")
                    if st.button("Close the question", key=f"{key}_close", icon=":material/lock:",
                                 help="No more answers; the tally is set beside the outcome once the runs end."):
                        store().close(name, actor=roles.actor())
                        st.rerun()
        elif poll is not None:
            mine = poll.answer_of(roles.browser_id())
            st.caption(f":material/lock: The room's predictions are in ({tally_text(poll)})."
                       + (f" Yours: **{md_escape(mine)}**." if mine else "")
                       + " They are set beside the outcome once the runs end.")
        # a refused answer to the question still shown stays until an answer is taken (the panel polls every few
        # seconds: a message gone with the next poll could go unread); any other message is said once
        about, error = st.session_state.get(_ERROR + key) or (None, None)
        if poll is None or about != poll.id or not poll.is_open:
            st.session_state.pop(_ERROR + key, None)
        if error:
            st.warning(md_escape(error), icon=":material/block:")

    body()


def verdict(name: str, measured: Mapping[str, float], fmt: Callable[[float], str], *, key: str) -> None:
    """What the ended runs measured, the answer it gives, and beside it what the room predicted (a closed question)."""
    prediction = get_comparison(name).prediction
    right = prediction.outcome(measured)
    poll = store().poll(name)
    shown = poll is not None and not poll.is_open and sum(poll.tally().values()) > 0
    outcome, room = st.columns(2) if shown else (st.container(), None)
    with outcome:
        st.markdown("**What happened**: " + md_escape(prediction.measure) + ": "
                    + ", ".join(f"{md_escape(label)} **{fmt(value)}**" for label, value in measured.items()))
        if right is None:
            st.info("A run has no records to measure yet, so the question has no answer.")
        else:
            st.success(f"{md_escape(prediction.question)} Measured: **{md_escape(right)}**.",
                       icon=":material/fact_check:")
    if room is not None and poll is not None:
        with room:
            tally = poll.tally()
            n = sum(tally.values())
            hits = tally.get(right, 0) if right is not None else 0
            st.markdown(f"**What the room predicted** ({n} {'answer' if n == 1 else 'answers'}, before the runs)"
                        + (f": {hits} of {n} right" if right is not None else ""))
            tally_chart(poll, right, key=f"{key}_verdict_tally")
