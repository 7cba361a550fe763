"""The shared RunManager, each browser's selected run, and the run controls every page and the sidebar reuse.

One RunManager per server (st.cache_resource): every browser sees the same runs. Which run a browser looks at lives in
its own st.session_state. Pages never train: they call the manager's controls and draw its snapshots. Every control
passes this session's Actor (ui.roles); the manager decides, and a refusal is shown with its reason.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from gan_core.config import ConfigError, TrainConfig
from gan_core.runs.history import COLUMNS
from gan_core.runs.manager import RunManager
from gan_core.runs.roles import Actor, RunRefused
from gan_core.runs.state import RunSnapshot
from gan_core.runs.status import Status, StepKind
from gan_core.train.records import SampleRecord
from ui import roles
from ui.text import md_escape

SELECTED = "selected_run"
PURPOSE = "_run_picked_on_purpose"  # see mark_picked
PICKER = "sidebar_run"
PENDING = "pending_selection"
LINK = "run"  # ?run=<id>: a link to one run (a teacher shares it); the address bar always holds the run shown
LINKED = "linked_run"
_LEFT = "_link_left"  # (the run the address bar named before its latest change, when, on which page)
ECHO_S = 2.0  # a browser's request in flight when the address changed arrives within this (a back button takes longer)
_CONFIRM_DELETE = "confirm_delete"
REFRESH_S = 1.0  # how often live panels poll the run: a curve that moves every second reads as live
STATUS_REFRESH_S = 2.0  # a status line and a progress bar (the sidebar's) read as live at half that rate
# While a run trains its snapshot changes ten times a second (each batch of worker events). Browsers drawing it less than
# FRESH_S apart share one snapshot, and so one build of each figure (shared_snapshot).
FRESH_S = 0.5
PREWARM_DELAY_S = 3.0  # after the server's first page has been drawn

STATUS_ICONS = {  # material icons: they render the same in every browser, emoji fonts do not
    Status.QUEUED: ":material/hourglass_top:", Status.RUNNING: ":material/play_circle:",
    Status.PAUSED: ":material/pause_circle:", Status.STOPPED: ":material/stop_circle:",
    Status.FINISHED: ":material/check_circle:", Status.DIVERGED: ":material/error:", Status.FAILED: ":material/cancel:",
}


_manager: RunManager | None = None
_manager_lock = threading.Lock()


def get_manager() -> RunManager:
    """The server's one RunManager: the module global once it exists. A page run asks for it many times, and through
    st.cache_resource each ask took that cache's lock: at a slide change 88 of 120 followers' runs were waiting on it
    (py-spy on the server, benchmarks/classroom_follow.py --sessions 120)."""
    manager = _manager
    return manager if manager is not None else _cached_manager()


@st.cache_resource(show_spinner=False)
def _cached_manager() -> RunManager:
    """The server's one RunManager, made once.

    Kept in a module global as well as in st.cache_resource: any browser can clear Streamlit's caches (the "c" key,
    or the menu), and that must not orphan the runs in flight by building a second manager.
    """
    global _manager
    with _manager_lock:
        if _manager is None:
            _manager = RunManager()
            atexit.register(_manager.shutdown)  # a clean server stop checkpoints every running run
            # Later, not now: warming up holds the GIL, and run at once it slowed the first pages it was meant to
            # speed up (benchmarks/first_picture.py: a second browser's first picture 2.2 s → 1.5 s with the delay).
            warm = threading.Timer(PREWARM_DELAY_S, _prewarm)
            warm.daemon = True
            warm.start()
        return _manager


def reset_manager() -> None:
    """Shut the manager down and forget it (tests: a fresh runs folder per test)."""
    global _manager
    with _manager_lock:
        if _manager is not None:
            _manager.shutdown()
            _manager = None
    _cached_manager.clear()
    with _shared_lock:
        _shared.clear()


def _prewarm() -> None:
    """The first plotly figure loads plotly's validators and the first chart pandas' machinery: seconds on 2 cores
    that would otherwise land on whoever first presses Start."""
    from ui.figures import curves, plane  # noqa: PLC0415 (imported by the pages too; here only to be warm)

    curves.loss_chart({c: np.zeros(0) for c in COLUMNS})
    plane.plane_figure(SampleRecord(0, np.zeros((1, 2), np.float32), None), None).to_json()


def refused(err: RunRefused) -> None:
    """Say why the manager refused (the rule, and the limit); in a button's callback it lands at the top of the page."""
    st.error(md_escape(str(err)), icon=":material/block:")


def start(config: TrainConfig, name: str) -> str | None:
    """Start a run, select it for this browser, and wait (≤ 1 s) for its first samples so the page can show them.

    None when the manager refuses this session another run (shown, with the reason)."""
    manager = get_manager()
    try:
        run_id = manager.start(config, name, actor=roles.actor())
    except RunRefused as err:
        refused(err)
        return None
    select(run_id)
    try:
        manager.wait(run_id, lambda s: bool(s.samples) or not s.status.active, timeout=1.0)
    except TimeoutError:
        pass  # queued behind other runs, or a cold worker: the live panel shows it when it comes
    return run_id


def follow_link() -> None:
    """Select the run a `?run=<id>` link names, once per link (the sidebar's picker then shows it).

    Not the address this session's browser showed just before the server changed it: every request a browser sends
    carries its address as it knew it, and one sent just before the server's new address reached it names the run
    shown before, on the page shown then. Taken for a new link, that echo took a follower (or the presenter, and
    with it the room) back a run (seen in CI)."""
    run_id = st.query_params.get(LINK)
    if not run_id or run_id == st.session_state.get(LINKED):
        return
    left = st.session_state.get(_LEFT)
    if left is not None and left[0] == run_id and time.monotonic() - left[1] < ECHO_S and left[2] == _page_hash():
        return
    note_link(run_id)
    manager = get_manager()
    manager.scan()  # a run the CLI trained into the runs folder since the last look is found on the first visit
    if run_id in manager:
        select(run_id)
    else:
        st.sidebar.warning(f"The link names no run on this server: {md_escape(run_id)}")


def show_link(run_id: str) -> None:
    """The address bar names the run this browser shows: a link to it."""
    if st.query_params.get(LINK) != run_id:
        note_link(run_id)
        st.query_params[LINK] = run_id


def note_link(run_id: str) -> None:
    """This session's address bar names `run_id` (a link it opened, or written here or by switching page)."""
    before = st.session_state.get(LINKED)
    if before is not None and before != run_id:
        st.session_state[_LEFT] = (before, time.monotonic(), _page_hash())
    st.session_state[LINKED] = run_id


def _page_hash() -> str:
    ctx = get_script_run_ctx()
    return ctx.page_script_hash if ctx is not None else ""


def selected_id() -> str | None:
    """This browser's run: the one it picked, else the newest on the server (None when there is none)."""
    manager = get_manager()
    run_id = st.session_state.get(SELECTED)
    if run_id is not None and run_id in manager:
        return run_id
    ids = run_order(manager)
    return ids[0] if ids else None


def run_order(manager: RunManager) -> list[str]:
    """Every run, the presenter's first (those no student session started: the lesson's), then newest first."""
    return sorted(manager.ids(), key=lambda i: manager.owner(i) is not None)  # stable: newest first within each


def select(run_id: str) -> None:
    st.session_state[SELECTED] = run_id
    st.session_state[PENDING] = run_id  # the sidebar's picker shows it from its next run on
    mark_picked()


def mark_picked() -> None:
    """This browser's run was chosen, not defaulted to: a pick in the sidebar, a link, a Start button, the presenter
    it follows. A page never shows another run in its place (comparisons.lesson_run)."""
    st.session_state[PURPOSE] = True


def picked_on_purpose() -> bool:
    return bool(st.session_state.get(PURPOSE))


def selected_snapshot() -> RunSnapshot | None:
    run_id = selected_id()
    return get_manager().snapshot(run_id) if run_id is not None else None


def status_line(snap: RunSnapshot) -> str:
    return f"{STATUS_ICONS[snap.status]} **{snap.status.value}** — {snap.message}"


def show_status(snap: RunSnapshot) -> None:
    """The run's status as a sentence; a diverged or failed run is shown as an error, wherever it is shown."""
    if snap.status in (Status.DIVERGED, Status.FAILED):
        # the message may quote a file's name or a line of an uploaded CSV: shown as text
        st.error(f"**{snap.id}** {snap.status.value}: {md_escape(snap.message)}", icon=STATUS_ICONS[snap.status])
    else:
        st.caption(status_line(snap))


@dataclass(frozen=True)
class _Control:
    label: str
    icon: str
    action: Callable[[RunManager, str, Actor], None]
    settled: Callable[[RunSnapshot], bool]  # the state the button leads to, waited for (briefly) before redrawing
    help: str = ""


_PAUSE = _Control("Pause", ":material/pause:", lambda m, i, a: m.pause(i, actor=a),
                  lambda s: s.status is not Status.RUNNING)
_RESUME = _Control("Resume", ":material/play_arrow:", lambda m, i, a: m.resume(i, actor=a),
                   lambda s: s.status is not Status.PAUSED)
_STOP = _Control("Stop", ":material/stop:", lambda m, i, a: m.stop(i, actor=a), lambda s: not s.status.active,
                 "Stop after this step and save a checkpoint; Resume continues from it.")
_STEPS = [
    _Control("Step D", ":material/looks_one:", lambda m, i, a: m.step(i, StepKind.D, actor=a), lambda s: True,
             "One discriminator update: D's view of the plane changes, the fake points stay where they are."),
    _Control("Step G", ":material/looks_two:", lambda m, i, a: m.step(i, StepKind.G, actor=a), lambda s: True,
             "One generator update: the fake points move the way D's gradient tells them to."),
    _Control("Full step", ":material/skip_next:", lambda m, i, a: m.step(i, StepKind.FULL, actor=a), lambda s: True,
             "One training step: the configured D updates, then one G update."),
]
NOT_YOURS = "You watch this run: only the session that started it, or the presenter, controls it."


def controls(snap: RunSnapshot, *, key: str, slow_motion: bool = True) -> None:
    """Pause / Resume / Stop buttons that fit the run's status, and the slow-motion steps of a paused run.

    Drawn disabled when this session does not hold the run; a click sent anyway is refused by the manager."""
    actor = roles.actor()
    mine = get_manager().may_control(actor, snap.id)
    shown: list[_Control] = []
    if snap.status in (Status.RUNNING, Status.QUEUED):
        shown.append(_PAUSE)
    if snap.status in (Status.PAUSED, Status.STOPPED, Status.DIVERGED, Status.FAILED) and snap.resumable:
        shown.append(_RESUME)
    if snap.status.active:
        shown.append(_STOP)
    if slow_motion and snap.status is Status.PAUSED:
        shown += _STEPS
    if not shown:
        return
    for col, control in zip(st.columns(len(shown)), shown, strict=True):
        if col.button(control.label, icon=control.icon, key=f"{key}_{control.label}_{snap.id}", width="stretch",
                      help=(control.help or None) if mine else NOT_YOURS, disabled=not mine):
            manager = get_manager()
            try:
                control.action(manager, snap.id, actor)
                manager.wait(snap.id, control.settled, timeout=2.0)
            except RunRefused as err:  # a click on a control this session does not hold: nothing changed
                st.session_state["control_refused"] = str(err)
            except ConfigError as err:  # e.g. a finished run cannot resume: say so, never a traceback
                st.session_state["control_error"] = str(err)
            except TimeoutError:
                pass  # the worker is slow to answer: the next refresh shows where it got to
            st.rerun()  # the whole page: buttons, sidebar and live panels all show the new state
    error = st.session_state.pop("control_error", None)
    if error:
        st.warning(error)
    refusal = st.session_state.pop("control_refused", None)
    if refusal:
        st.error(md_escape(refusal), icon=":material/block:")


def delete_control(snap: RunSnapshot, *, key: str) -> None:
    """Delete a run that is not active, after a second click; only for the presenter and the run's own session."""
    manager = get_manager()
    actor = roles.actor()
    if snap.status.active or not manager.may_control(actor, snap.id):
        return
    if st.session_state.get(_CONFIRM_DELETE) != snap.id:
        if st.button("Delete", icon=":material/delete:", key=f"{key}_delete_{snap.id}",
                     help="Remove this run and its folder for good (asks once more)."):
            st.session_state[_CONFIRM_DELETE] = snap.id
            st.rerun()
        return
    st.warning(f"Delete **{snap.id}** and its folder for good?")
    yes, no = st.columns(2)
    if yes.button("Delete it", type="primary", key=f"{key}_delete_yes_{snap.id}", width="stretch"):
        st.session_state.pop(_CONFIRM_DELETE, None)
        try:
            manager.delete(snap.id, actor=actor)
        except RunRefused as err:
            st.session_state["control_refused"] = str(err)
        except ConfigError as err:  # it was resumed meanwhile, or the folder cannot be removed
            st.session_state["control_error"] = str(err)
        with _shared_lock:
            _shared.pop(snap.id, None)
        st.rerun()
    if no.button("Keep it", key=f"{key}_delete_no_{snap.id}", width="stretch"):
        st.session_state.pop(_CONFIRM_DELETE, None)
        st.rerun()


def live(render: Callable[[RunSnapshot], None], run_id: str, *, key: str, every: float = REFRESH_S) -> None:
    """Draw `render(snapshot)` now and, while the run is active, again every `every` seconds (only this part reruns).

    When the run ends the whole page reruns once, so buttons and the sidebar catch up, and polling stops.
    """
    live_many(lambda snaps: render(snaps["run"]), {"run": run_id}, key=key, every=every)


def live_many(render: Callable[[dict[str, RunSnapshot]], None], runs: dict[str, str], *, key: str,
              every: float = REFRESH_S) -> None:
    """Draw `render({label: snapshot})` now and again every `every` seconds while any of the runs is active.

    Every browser polls on its own, but they draw shared snapshots (shared_snapshot) and so shared figures. Each poll
    costs the server a script run per browser: panels that need not move every second poll less often.
    """
    manager = get_manager()
    try:
        active = any(manager.status(i).active for i in runs.values())
    except ConfigError:  # one of them was deleted a moment ago: the next run of the page no longer asks for it
        st.rerun()

    @st.fragment(run_every=every if active else None, key=key)
    def panel() -> None:
        try:
            snaps = {label: shared_snapshot(i) for label, i in runs.items()}
        except ConfigError:  # deleted (by the presenter, or the session that started it) while this page showed it
            st.rerun()
        render(snaps)
        if active and not any(s.status.active for s in snaps.values()):
            st.rerun()

    panel()


_shared: dict[str, tuple[float, RunSnapshot]] = {}
_shared_lock = threading.Lock()


def shared_snapshot(run_id: str) -> RunSnapshot:
    """The run's snapshot to draw: while the run trains, one taken less than FRESH_S ago is reused.

    Figures are cached by snapshot version (ui.cache.cached), so thirty browsers refreshing at different moments of a
    second cost about two builds of each figure instead of one per version the worker sent. A run that is not running
    now is read as it is: one paused a moment ago, stepped one update, or just ended shows exactly that.
    """
    now = time.monotonic()
    with _shared_lock:
        taken, snap = _shared.get(run_id, (0.0, None))
    manager = get_manager()
    if snap is not None and now - taken < FRESH_S and manager.status(run_id) is Status.RUNNING:
        return snap
    snap = manager.snapshot(run_id)
    with _shared_lock:
        _shared[run_id] = (now, snap)
    return snap
