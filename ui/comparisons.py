"""A lesson's one-click comparison on a page: the server's shared comparison (gan_core.lessons.shared_comparisons), its
buttons, and its runs drawn live.

Every browser shows the same comparison of each kind, the latest started by anyone. "Run the comparison" shows an
identical one already there instead of training it again; "Run it again" trains it with a new seed. A start the run
manager refuses (a student's quota, the queue's bound) is shown with its reason.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial

import streamlit as st

from gan_core.config import ConfigError, TrainConfig
from gan_core.data import DataSource, load_dataset
from gan_core.evaluation import coverage
from gan_core.lessons import outcomes
from gan_core.lessons.comparisons import get_comparison
from gan_core.lessons.shared_comparisons import SharedComparisons
from gan_core.runs.roles import RunRefused
from gan_core.runs.state import RunSnapshot
from gan_core.train.records import SampleRecord
from ui import cache, live, predictions, roles, take_home
from ui.text import md_escape

_REUSED = "comparison_reused:"  # + name: this browser's press found the comparison already there

_store: SharedComparisons | None = None
_store_lock = threading.Lock()


def store() -> SharedComparisons:
    """The server's comparisons, over the server's RunManager (a new manager, as after live.reset_manager, gets a new
    store read from the same file)."""
    global _store
    manager = live.get_manager()
    with _store_lock:
        if _store is None or _store.manager is not manager:
            _store = SharedComparisons(manager)
        return _store


def runs(name: str) -> dict[str, RunSnapshot] | None:
    """The shared comparison's runs (label -> snapshot), None when there is none."""
    shown = store().current(name)
    if shown is None:
        return None
    manager = live.get_manager()
    try:
        return {label: manager.snapshot(run_id) for label, run_id in shown.runs.items()}
    except ConfigError:  # deleted a moment ago
        return None


def lesson_run(name: str, fits: Callable[[RunSnapshot], bool]) -> tuple[RunSnapshot | None, RunSnapshot | None]:
    """The run a page's section shows, and the browser's own run it stands in for (None: it is that run).

    This browser's run when it fits the section, or was picked on purpose (never overridden); else the first run of
    the room's comparison `name` that fits: a fresh browser, which shows the newest run by default, lands on a run the
    section can draw instead of being sent to find one."""
    snap = live.selected_snapshot()
    if snap is not None and (fits(snap) or live.picked_on_purpose()):
        return snap, None
    stand_in = next((s for s in (runs(name) or {}).values() if fits(s)), None)
    return (stand_in, snap) if stand_in is not None else (snap, None)


def stand_in_note(snap: RunSnapshot, instead: RunSnapshot, what: str, lacks: str) -> None:
    """One line above a section drawn from `lesson_run`'s stand-in: which run it is, and why the sidebar's is not it
    (`lacks`: what the sidebar's run has not, e.g. "none")."""
    st.write(f"Run **{snap.id}**, the room's comparison run with {what} (the sidebar's run, {instead.id}, has "
             f"{lacks}; pick a run there to see it here).")


def start(name: str, again: bool = False, select: bool = False) -> None:
    """A button's callback: show the comparison to everyone, training it only if it is not already there.

    A presenter's start closes an open prediction question: the room predicts before the evidence, not while it comes in.
    `select`: this browser's sidebar run becomes the first variant (for pages whose upper sections draw the selected run).
    """
    actor = roles.actor()
    try:
        shown = store().start(name, actor=actor, again=again)
    except RunRefused as err:
        live.refused(err)
        return
    except ConfigError as err:  # the runs folder cannot be written
        st.error(md_escape(str(err)), icon=":material/error:")
        return
    if shown.reused:
        st.session_state[_REUSED + name] = True
    elif actor.presenter:
        predictions.close_on_start(name)
    if select:
        live.select(next(iter(shown.runs.values())))


def buttons(name: str, snaps: dict[str, RunSnapshot] | None, *, key: str, label: str = "Run the comparison",
            icon: str = ":material/play_arrow:", select: bool = False) -> None:
    """"Run the comparison" while there is none; then "Run it again" (a new seed), disabled while its runs train."""
    comparison = get_comparison(name)
    if snaps is None:
        st.button(label, key=f"{key}_start", type="primary", icon=icon, on_click=start, args=(name,),
                  kwargs={"select": select}, help=f"Starts both runs, for everyone on this server. "
                                                  f"{comparison.steps_note[:1].upper()}{comparison.steps_note[1:]}")
    else:
        active = any(s.status.active for s in snaps.values())
        seed = next(iter(snaps.values())).config.seed
        st.button("Run it again", key=f"{key}_again", icon=":material/replay:", on_click=start, args=(name,),
                  kwargs={"again": True, "select": select}, disabled=active,
                  help="Its runs are still training." if active else
                  f"The same two runs with another seed (this one used seed {seed}), for everyone on this server.")
    if st.session_state.pop(_REUSED + name, False):
        st.info("This comparison is already on the server (queued, training or finished): shown below instead of "
                "training it again.", icon=":material/group:")


def section(name: str, render: Callable[[dict[str, RunSnapshot]], None], *, key: str,
            measure: Callable[[dict[str, RunSnapshot]], dict[str, float]] | None = None,
            fmt: Callable[[float], str] = str, label: str = "Run the comparison",
            icon: str = ":material/play_arrow:", select: bool = False) -> dict[str, RunSnapshot] | None:
    """The whole comparison block: the prediction question, the buttons, the runs drawn live by `render`, and, once they
    have ended, the room's predictions beside what `measure` finds in them. Returns the runs shown (None: none)."""
    predictions.panel(name, key=key)
    snaps = runs(name)
    buttons(name, snaps, key=key, label=label, icon=icon, select=select)
    if snaps is None:
        return None
    live.live_many(render, {label: s.id for label, s in snaps.items()}, key=key)
    if measure is not None and not any(s.status.active for s in snaps.values()):
        predictions.verdict(name, measure(snaps), fmt, key=key)
        take_home.panel(name, store(), SCORING, key=key)  # the lesson's end: its files, and clearing for the next class
    return snaps


def source_of(config: TrainConfig) -> DataSource:
    """The run's data, loaded once per server (the Mode collapse page's cache key)."""
    return cache.cached(("mc_source", config.dataset.value, config.points_csv), partial(load_dataset, config))


def stats_of(snap: RunSnapshot, record: SampleRecord, source: DataSource) -> dict:
    """Coverage of one snapshot, scored once per server: a snapshot's samples never change once taken."""
    return cache.cached(("mc_stats", snap.id, snap.created, record.step, len(record.samples)),
                        partial(coverage.record_stats, record, source))


SCORING = outcomes.Scoring(source_of=source_of, stats_of=stats_of)


def classes_covered(snap: RunSnapshot) -> float:
    """Classes (digits) or modes covered at the run's last sample snapshot, as the Mode collapse page counts them (the
    same cache keys: built once for both pages); NaN when it has no samples or its data has nothing to count."""
    return outcomes.covered(snap, source_of=SCORING.source_of, stats_of=SCORING.stats_of)
