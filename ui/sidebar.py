"""The shared sidebar: who this browser is (ui.roles), Follow the presenter (ui.follow), the run picker and the picked
run's status and controls.

A classroom server collects runs (thirty students, a lesson's comparisons): the picker lists the presenter's runs first,
then the newest; past FILTER_FROM runs it offers filters by kind, status and name, and it never lists more than
PICKER_MAX (a selectbox of hundreds of labels is slow to send and useless to scroll).
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st
from streamlit.navigation.page import StreamlitPage

from gan_core.config import ConfigError, Dataset
from gan_core.runs.manager import RunManager
from gan_core.runs.state import RunSnapshot
from gan_core.runs.status import Status
from ui import follow, live, roles

FILTER_FROM = 6  # more runs than fit on a phone's screen of the picker's list
PICKER_MAX = 100  # search-as-you-type finds one among a hundred; more is a filter's job
KIND_FILTER = "sidebar_kind_filter"
STATUS_FILTER = "sidebar_status_filter"
NAME_FILTER = "sidebar_name_filter"


def draw(page: StreamlitPage) -> None:
    """Everything in the sidebar; `page` is the page st.navigation chose (a presenter publishes it, a follower
    compares it with the presenter's)."""
    manager = live.get_manager()
    live.follow_link()
    follow.sync(page)
    with st.sidebar:
        follow.toggle()  # first: what a student in a class uses most
        roles.role_panel(manager.limits)
        choice = _picker(manager)
        follow.lead(choice)
        if choice is not None:
            live.live(_status(manager), choice, key="sidebar", every=live.STATUS_REFRESH_S)


def _snapshots(manager: RunManager) -> list[RunSnapshot]:
    snaps = []
    for run_id in live.run_order(manager):
        try:
            snaps.append(manager.snapshot(run_id))
        except ConfigError:  # deleted since it was listed
            continue
    return snaps


def _picker(manager: RunManager) -> str | None:
    """The run picker over the runs the filters let through (and always the one shown); the picked run's id."""
    snaps = _snapshots(manager)
    if not snaps:
        st.caption("No runs yet: start one on Home or Training.")
        return None
    ids = {s.id for s in snaps}
    # the run to show: one just selected (a link, a Start button, the presenter's), else the one picked here
    pending, picked = st.session_state.pop(live.PENDING, None), st.session_state.get(live.PICKER)
    matching = _filtered(snaps) if len(snaps) > FILTER_FROM else snaps
    shown = [s.id for s in matching[:PICKER_MAX]]
    # else (the run shown was deleted, or this is a new browser) the first the filters let through
    current = next((i for i in (follow.shown_run(), pending, picked, st.session_state.get(live.SELECTED)) if i in ids),
                   shown[0] if shown else snaps[0].id)
    if current not in shown:
        shown.insert(0, current)  # the run this browser shows stays pickable, whatever the filters say
    if picked != current:
        # the picker's value is set through its key (before it is drawn: Streamlit's rule), never with index=
        st.session_state[live.PICKER] = current
    labels = {s.id: s.label for s in snaps}
    if roles.presenter_key() is not None:  # a student sees which runs are its own
        mine = roles.actor().owner  # None for the presenter: no run is marked
        labels = {i: f"{label} · yours" if mine and manager.owner(i) == mine else label for i, label in labels.items()}
    following = follow.following()
    choice = st.selectbox(
        "Run", shown, format_func=lambda i: labels.get(i, i), key=live.PICKER, disabled=following, on_change=live.mark_picked,
        help="Following the presenter: switch it off to pick another run." if following else
        "Every run on this server: the presenter's first, then the newest. Type to search. Each browser picks its own.")
    if len(matching) > PICKER_MAX:
        st.caption(f"The first {PICKER_MAX} of {len(matching)} runs: filter to find the others.")
    if choice != st.session_state.get(live.SELECTED):
        st.session_state[live.SELECTED] = choice
    live.show_link(choice)
    return choice


def _filtered(snaps: list[RunSnapshot]) -> list[RunSnapshot]:
    """Filters by kind (the training data), status and name, in a collapsed expander; the runs they let through."""
    # a filter's new value is in session_state before the run it triggers: the list below and the pills agree
    chosen_kinds = set(st.session_state.get(KIND_FILTER) or [])
    chosen_statuses = set(st.session_state.get(STATUS_FILTER) or [])
    name = (st.session_state.get(NAME_FILTER) or "").strip().lower()
    # only the kinds and statuses some run has (and any already chosen): a short row of pills, not every enum value
    kinds = [d for d in Dataset if d in chosen_kinds or any(s.config.dataset is d for s in snaps)]
    statuses = [x for x in Status if x in chosen_statuses or any(s.status is x for s in snaps)]
    busy = bool(chosen_kinds or chosen_statuses or name)
    with st.expander(f"Filter {len(snaps)} runs", icon=":material/filter_list:", expanded=busy):
        st.pills("Kind", kinds, selection_mode="multi", format_func=lambda d: d.value, key=KIND_FILTER)
        st.pills("Status", statuses, selection_mode="multi", format_func=lambda x: x.value, key=STATUS_FILTER)
        st.text_input("Name contains", key=NAME_FILTER, placeholder="e.g. batch-norm")
    matching = [s for s in snaps if (not chosen_kinds or s.config.dataset in chosen_kinds)
                and (not chosen_statuses or s.status in chosen_statuses) and name in s.id]
    if busy:
        st.caption(f"{len(matching)} of {len(snaps)} runs match.")
    return matching


def _status(manager: RunManager) -> Callable[[RunSnapshot], None]:
    def status(snap: RunSnapshot) -> None:
        live.show_status(snap)
        if snap.status.active:
            st.progress(snap.progress)
        if not roles.is_presenter() and not manager.may_control(roles.actor(), snap.id):
            st.caption(f":material/visibility: {live.NOT_YOURS}")
        live.controls(snap, key="sidebar", slow_motion=False)
        live.delete_control(snap, key="sidebar")

    return status
