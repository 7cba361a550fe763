"""Follow the presenter: a student's browser shows the page and the run the presenter shows, like a slide deck.

Only with a presenter key set (ui.roles). The presenter's session publishes its page and run to the room's one Stage
(gan_core.classroom.stage, a row of the classroom store every app process on the runs folder shares) on every script
run, and touches it every HEARTBEAT_S from a small fragment, so a closed presenter tab stops leading the room. A
student with "Follow the presenter" on polls the stage every FOLLOW_POLL_S from a fragment; on a new version it
selects the run (ui.live.select) and switches page (st.switch_page), or reruns when only the run changed.

A follower applies each stage version once (it remembers which, and whether its page was drawn to the end): its own
reruns never re-apply one, so it neither loops nor fights its picker (drawn disabled while following). A student who
leaves the presenter's page by the navigation stops following (said in a toast); switching the toggle back on rejoins.

A race a class of thirty produces (measured with benchmarks/classroom_follow.py: 1-6 of 120 switches were lost): the
switched-to page's run is cut short by another rerun, and what runs next is only a fragment, so the page is never
drawn. `showing` takes such an arrival back, and the next poll draws the whole page again.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import NoReturn

import streamlit as st
from streamlit.navigation.page import StreamlitPage
from streamlit.runtime.scriptrunner import get_script_run_ctx
from streamlit.runtime.scriptrunner_utils.exceptions import RerunException, StopException

from gan_core.classroom.stage import Scene, Stage
from gan_core.classroom.store import open_store, state_url
from gan_core.runs.roles import presenter_key
from ui import course, live, roles, wake

FOLLOW = "follow_presenter"  # the toggle's key
FOLLOW_BY_DEFAULT = True  # a class that opens the app is on the presenter's slide; anyone may switch it off
FOLLOW_POLL_S = 0.5  # half a second of polling: a switch within about a second of the presenter's
WAIT_POLL_S = 2.0  # with no presenter yet: a class waiting for the teacher costs a quarter of the polls
WOKEN_POLL_S = 3.0  # when ui.wake reruns the followers on a switch: the poll only catches a switch cut short
# ...and only once the wake has had this long: polls that switched on their own, every follower within its 3 s, undid
# the wake's pacing (60 followers all redrawn at once, all arriving at the end: benchmarks/classroom_follow.py)
WAKE_GRACE_S = 6.0
HEARTBEAT_S = 2.0  # well inside classroom.stage.ACTIVE_S, so a presenter is never dropped for one slow rerun
_WANTS = "_follow_wants"  # the student's choice, kept while the toggle is hidden (no presenter)
_APPLIED = "_follow_applied"  # the stage version this browser shows
_ARRIVED = "_follow_arrived"  # the stage version whose page this browser has drawn (the switch happened)
_ACTIVE = "_follow_shown_active"  # whether this browser's last full run saw a presenter
_JUST = "_follow_just_arrived"  # the stage version this very run arrived at (undone if the run is cut short)
_PAGE = "_follow_page"  # the URL path of the page this session shows
_PUBLISHED = "_follow_published"  # a presenter's (page, run) as it last published them
_LEADS = "_follow_leads"  # a presenter's (page, run) in this full run, published once its page is drawn
_WOKEN = "_follow_woken"  # this session is rerun by ui.wake on a switch
_SAW = "_follow_saw"  # (stage version, monotonic time) a woken follower's poll first saw it unapplied

_stage: Stage | None = None
_stage_of: object = None  # the RunManager whose runs folder _stage's store belongs to
_stage_lock = threading.Lock()


def stage() -> Stage:
    """The room's stage, in the classroom store of this server's runs folder (shared with every app process on it)."""
    global _stage, _stage_of
    manager = live.get_manager()
    if _stage is not None and _stage_of is manager:  # every follower's poll asks: no path work on the way
        return _stage
    url = state_url(manager.runs_dir)
    with _stage_lock:
        if _stage is None or _stage.store.url != url:  # a new runs folder (a test's): its own room
            if _stage is not None:
                _stage.store.close()
            _stage = Stage(open_store(url))
        _stage_of = manager
        return _stage


def _classroom() -> bool:
    return presenter_key() is not None


def wants_to_follow() -> bool:
    """A student's choice (on by default); False for a presenter and on a server with no presenter key."""
    return _classroom() and not roles.is_presenter() and bool(st.session_state.get(_WANTS, FOLLOW_BY_DEFAULT))


def following() -> bool:
    """This browser follows the presenter now: it wants to, and a presenter is active."""
    return wants_to_follow() and stage().current() is not None


def shown_run() -> str | None:
    """The run a follower's picker must show: the presenter's, while this browser follows and the presenter shows one
    this server has (None otherwise). The browser's own picker value can be a switch behind (a rerun it asked for
    before the switch reached it), and must not win over the stage."""
    if not following() or (scene := stage().current()) is None or scene.run is None:
        return None
    return scene.run if scene.run in live.get_manager() else None


def _set_wants(on: bool) -> None:
    """Before the toggle is drawn in this run (Streamlit's rule for setting a widget's value through its key)."""
    st.session_state[_WANTS] = on
    st.session_state[FOLLOW] = on


def _toggled() -> None:
    on = bool(st.session_state.get(FOLLOW))
    st.session_state[_WANTS] = on
    if on:
        st.session_state.pop(_APPLIED, None)  # rejoin now: this very run applies the stage


def sync(page: StreamlitPage) -> None:
    """At the top of every script run, before the sidebar draws: remember the page; a follower catches up with the
    stage (switching page ends this run and starts the presenter's page)."""
    st.session_state[_PAGE] = page.url_path
    if not wants_to_follow() or (scene := stage().current()) is None:
        return
    if st.session_state.get(_APPLIED) == scene.version and page.url_path != scene.page:
        if st.session_state.get(_ARRIVED) == scene.version:  # shown the presenter's page, then picked another
            _set_wants(False)
            st.toast("You left the presenter's page: Follow the presenter is off.", icon=":material/explore:")
            return
        # applied but never arrived: the run that was switching page was cut short by another rerun; switch again
    if st.session_state.get(_APPLIED) != scene.version or page.url_path != scene.page:
        _apply(scene, page.url_path)  # switching page ends this run here
    if page.url_path == scene.page and st.session_state.get(_ARRIVED) != scene.version:
        st.session_state[_ARRIVED] = st.session_state[_JUST] = scene.version  # `showing` takes it back if cut short
    if page.url_path == scene.page:
        _drawing[_session()] = scene.version  # `showing` moves it to _drawn once the page is drawn to its end


@contextlib.contextmanager
def showing() -> Iterator[None]:
    """Around a full run's sidebar and page (dashboard.py): a follower's arrival that this run recorded is taken back
    if another rerun cuts the run short, so the poll draws the page again. (Recorded when the run starts, not when it
    ends: after a page's st.stop() nothing can be written to the session.)"""
    st.session_state.pop(_JUST, None)
    session = _session()
    _drawing.pop(session, None)
    try:
        yield
    except RerunException:
        just = st.session_state.get(_JUST)
        if just is not None and just == st.session_state.get(_ARRIVED):
            st.session_state.pop(_ARRIVED)
        raise
    except StopException:
        # a page that stopped itself once drawn said so (end_page); any other stop is a run that a newer rerun of
        # this session cut short (Streamlit stops the running script for it), and the page was not drawn
        raise
    _drew(session)


def end_page() -> NoReturn:
    """st.stop() for a page that has drawn all it has to show: a follower's arrival counts as drawn."""
    _drew(_session())
    st.stop()


# A follower's page drawn to its end, kept in the process rather than in the session: a run that Streamlit replaces
# by a fragment run ends without an exception the page sees (measured: 7 of 60 woken followers), and after a page's
# st.stop() the session can no longer be written. session id -> stage version.
_drawing: dict[str, int] = {}
_drawn: dict[str, int] = {}


def _session() -> str:
    ctx = get_script_run_ctx()
    return getattr(ctx, "session_id", "") if ctx is not None else ""  # (a test's stand-in may have none)


def _has_drawn(session: str, version: int) -> bool:
    """Whether this session's page for that stage version was drawn to its end (ui.wake asks, from its thread)."""
    return _drawn.get(session) == version


def _drew(session: str) -> None:
    if session in _drawing:
        _drawn[session] = _drawing.pop(session)


def _apply(scene: Scene, here: str | None, *, in_fragment: bool = False) -> None:
    st.session_state[_APPLIED] = scene.version  # before switching: the switch's own run must not apply it again
    if scene.run is not None and scene.run in live.get_manager():
        live.select(scene.run)
    # this session's own st.Page of the presenter's page (one may not be shared between sessions: ui.course.pages),
    # so a follower switches to a page no session of this app process has opened yet
    target = next((p for p in course.pages() if p.url_path == scene.page), None)
    if scene.page != here and target is not None:
        if scene.run:
            live.note_link(scene.run)  # the switch writes it into the address bar
        st.switch_page(target, query_params={live.LINK: scene.run} if scene.run else None)
    if in_fragment:
        st.rerun()  # the run changed on this page: the whole page draws it


def toggle() -> None:
    """In the sidebar of a student's browser: the toggle while a presenter is active (a caption otherwise), and the
    poll that follows the stage while the student wants to follow."""
    if not _classroom() or roles.is_presenter():
        wake.unfollow(_session())  # a student who just typed the key is the presenter now: never woken again
        return
    active = stage().current() is not None
    st.session_state[_ACTIVE] = active
    if active:
        if FOLLOW not in st.session_state:
            st.session_state[FOLLOW] = st.session_state.get(_WANTS, FOLLOW_BY_DEFAULT)
        st.toggle("Follow the presenter", key=FOLLOW, on_change=_toggled,
                  help="On: this browser shows the page and the run the presenter shows. Off: explore on your own.")
    else:
        st.caption(":material/co_present: Follow the presenter: no presenter is presenting now.")
    session = _session()
    if wants_to_follow():
        # measured: 30 followers polling twice a second cost the server a quarter of one core, 120 a whole one; where
        # this process can rerun its followers itself on a new stage version (ui.wake), the poll is only a safety net
        woken = st.session_state[_WOKEN] = bool(session) and wake.available()
        if woken:
            wake.follow(session, stage(), _has_drawn)
        st.fragment(_poll, run_every=(WOKEN_POLL_S if woken else FOLLOW_POLL_S) if active else WAIT_POLL_S)()
    elif session:
        wake.unfollow(session)


def _poll() -> None:
    """Draws nothing: a presenter who came or went redraws the sidebar; a new stage version is applied, and a switch
    whose page was cut short is drawn again."""
    scene = stage().current()
    if (scene is not None) != st.session_state.get(_ACTIVE):
        st.rerun()
    ctx = get_script_run_ctx()
    if scene is None or not wants_to_follow() or ctx is None or not ctx.fragment_ids_this_run:
        return  # drawn inline in a full run: `sync` did this run's part, and the page is still being drawn
    # the page the server last drew for this session: what the browser's own request names can be a second behind
    # while thirty sessions switch at once, and switching on that fed a storm of redraws (measured)
    here = st.session_state.get(_PAGE)
    drawn = _drawn.get(_session()) == scene.version or here != scene.page  # (not there at all: _APPLIED says)
    if st.session_state.get(_APPLIED) != scene.version or st.session_state.get(_ARRIVED) != scene.version \
            or not drawn:
        if not st.session_state.get(_WOKEN) or _overdue(scene.version):
            _apply(scene, here, in_fragment=True)


def _overdue(version: int) -> bool:
    """A woken follower's poll has seen `version` unapplied for WAKE_GRACE_S: the wake missed it, the poll switches."""
    saw = st.session_state.get(_SAW)
    if saw is None or saw[0] != version:
        st.session_state[_SAW] = (version, time.monotonic())
        return False
    return time.monotonic() - saw[1] >= WAKE_GRACE_S


def lead(run: str | None) -> None:
    """At the end of a presenter's sidebar (with a presenter key set): note this page and run for `published`, and keep
    the stage alive while the tab stays open."""
    if not _classroom() or not roles.is_presenter():
        st.session_state.pop(_LEADS, None)
        wake.lead(_session(), False)
        return
    st.session_state[_LEADS] = (st.session_state.get(_PAGE, ""), run)
    wake.lead(_session())
    _heartbeat()


@contextlib.contextmanager
def published() -> Iterator[None]:
    """Around a full run's page (dashboard.py): a presenter's page and run are published once the page is drawn, not
    before. The presenter's page then draws before the room starts following it, rather than in a crowd of thirty
    followers' redraws of it (the presenter first: one Python process runs one script at a time)."""
    scene = st.session_state.pop(_LEADS, None)
    room = stage() if scene is not None else None
    if scene is not None:
        st.session_state[_PUBLISHED] = scene
    try:
        yield
    finally:  # only the store here: after a page's st.stop() Streamlit's session and caches can no longer be used
        if room is not None:
            room.publish(*scene)


def _publish(page: str, run: str | None) -> None:
    st.session_state[_PUBLISHED] = (page, run)
    stage().publish(page, run)


@st.fragment(run_every=HEARTBEAT_S)
def _heartbeat() -> None:
    """Draws nothing. A run selected inside a page's fragment (a Start button) is published from here."""
    ctx = get_script_run_ctx()
    if ctx is None or not ctx.fragment_ids_this_run:
        return  # drawn inline in a full run: `published` publishes once the page is drawn
    scene = (st.session_state.get(_PAGE, ""), live.selected_id())
    if scene != st.session_state.get(_PUBLISHED):
        _publish(*scene)
    else:
        stage().heartbeat()
