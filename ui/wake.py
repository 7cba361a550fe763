"""Wake the followers: when the presenter's stage changes, this app process reruns its following sessions itself,
instead of each of them polling for it.

A follower used to poll the stage twice a second from a fragment; 120 followers were 240 script runs a second in one
process, a whole core, before anyone switched a slide (benchmarks/classroom_follow.py: the presenter's own page took
8-44 s, and follower polls fell to 0.2 a second). Now one thread per process reads the stage (at most every
classroom.stage.FRESH_S) and, on a new version, asks Streamlit to rerun each following session of this process, as a
browser's own rerun would (its last client state, as a full run): `ui.follow.sync` at the top of that run switches to
the presenter's page. Followers keep a slow poll (ui.follow.WOKEN_POLL_S) as the safety net for a switch the wake
missed, or for a Streamlit whose internals this cannot reach (then the poll is the fast one again).

What the wake learned from the room (benchmarks/classroom_follow.py, 120 followers on 2 processes): it never stops a
run that is going on (it waits for it), it wakes again a follower whose page was not drawn (RETRY_S), it lets the
presenter's own run in this process end first (LEAD_WAIT_S), and it runs a few followers at a time (PACE), so they
arrive one after another instead of all at the end.

Streamlit has no public call for "rerun that session": this uses the runtime's session manager and a session's last
client state, the pair Streamlit's own rerun-on-save uses. `available()` says whether they are there.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from gan_core.classroom.stage import Stage

log = logging.getLogger(__name__)
TICK_S = 0.1
# A woken follower whose page is still not drawn this long after, and which runs nothing now, is woken again, at most
# RETRIES times per stage version: the net under a switch whose page run ended without being drawn (seen at 120
# followers on 2 processes, benchmarks/classroom_follow.py; the lost ends of drawn pages are ui/rerun_hold's).
RETRY_S = 2.0
RETRIES = 3
# The presenter first: while a presenter's session in this process is still running the page it has just published, its
# followers here wait for it, at most LEAD_WAIT_S. Woken at once, 60 followers' page runs took the GIL from the loop
# that was sending the presenter's page (benchmarks/classroom_follow.py --sessions 60: the presenter's page 2.3 s).
LEAD_WAIT_S = 1.0
# Followers redrawn a few at a time, not all at once. Woken together, 60 followers' page runs share one GIL with the
# event loop that sends their pages, so every one of them arrives at the end (measured: median 2.6 s, max 2.7 s) and the
# presenter's page, already drawn, waits behind them to be sent. Paced, they arrive one after another from the first
# tenths of a second, and the loop keeps its share. GAN_WAKE_PACE sets how many run at once in a process.
PACE = max(1, int(os.environ.get("GAN_WAKE_PACE", "3") or 3))
FAST_TICK_S = 0.01  # while followers wait for a slot

_lock = threading.Lock()
_followers: set[str] = set()  # session ids of this process's sessions that follow the presenter
_leaders: set[str] = set()  # session ids of this process's presenters
_watcher: threading.Thread | None = None
_stage: Stage | None = None
_drawn: Callable[[str, int], bool] = lambda session_id, version: True  # noqa: E731 - until a follower says how


ENV = "GAN_WAKE_FOLLOWERS"  # "0": followers poll twice a second instead (on by default)


def available() -> bool:
    """Whether to wake followers: not turned off (GAN_WAKE_FOLLOWERS=0) and this Streamlit lets a thread rerun a
    session."""
    if os.environ.get(ENV, "").strip() == "0":
        return False
    try:
        from streamlit.proto.ClientState_pb2 import ClientState  # noqa: F401, PLC0415
        from streamlit.runtime import Runtime  # noqa: PLC0415

        return Runtime.exists() and hasattr(Runtime.instance(), "_session_mgr")
    except Exception:  # noqa: BLE001 - another Streamlit: the followers poll instead
        return False


def follow(session_id: str, stage: Stage, drawn: Callable[[str, int], bool]) -> None:
    """This session follows the stage: rerun it when the stage changes, and again while `drawn(session_id, version)`
    says its page for that version was not drawn to its end."""
    global _watcher, _stage, _drawn
    with _lock:
        _followers.add(session_id)
        _stage, _drawn = stage, drawn
        if _watcher is None or not _watcher.is_alive():
            _watcher = threading.Thread(target=_watch, name="gan-wake-followers", daemon=True)
            _watcher.start()


def unfollow(session_id: str) -> None:
    with _lock:
        _followers.discard(session_id)


def lead(session_id: str, leads: bool = True) -> None:
    """This session presents (or no longer does): its followers in this process wait for its own run to end."""
    with _lock:
        (_leaders.add if leads else _leaders.discard)(session_id)


def _watch() -> None:
    waker = Waker(_rerun, lambda session_id: _state(session_id) is BUSY)
    while True:
        time.sleep(FAST_TICK_S if waker.pending else TICK_S)
        with _lock:
            stage, followers, drawn, leaders = _stage, set(_followers), _drawn, set(_leaders)
        if stage is None or not followers:
            continue
        try:
            scene = stage.current()
        except Exception:  # the store unreachable for a moment: the followers' own poll still runs
            log.warning("wake: cannot read the stage", exc_info=True)
            continue
        states = {s: _state(s) for s in leaders}
        for session_id in (s for s, state in states.items() if state is GONE):
            lead(session_id, False)  # closed: forget it
        busy = BUSY in states.values()
        for session_id in waker.tick(None if scene is None else scene.version, followers, drawn, time.monotonic(),
                                     presenting=busy):
            unfollow(session_id)  # closed: forget it


class Waker:
    """Which followers to rerun, tick by tick: all of them when the stage's version changes (each once its own run has
    ended), and again one whose page for that version is still not drawn RETRY_S after it was woken. Not while the
    presenter's own run in this process goes on (LEAD_WAIT_S at most), and at most `pace` woken followers running at
    once."""

    def __init__(self, rerun: Callable[[str], str], running: Callable[[str], bool] = lambda session_id: False,
                 pace: int = PACE) -> None:
        self._rerun, self._running, self._pace = rerun, running, pace
        self._seen: int | None = None
        self._due: set[str] = set()  # to rerun for the latest version, once their own run has ended
        self._woken: dict[str, float] = {}  # woken for this version and not drawn since -> when last woken
        self._wakes: dict[str, int] = {}  # how many times each was woken for this version
        self._changed = 0.0  # when the version last changed

    def tick(self, version: int | None, followers: set[str], drawn: Callable[[str, int], bool], now: float,
             presenting: bool = False) -> list[str]:
        """Rerun who is due; returns the followers found closed. `presenting`: a presenter's run in this process is
        still going on."""
        if self._seen is not None and version != self._seen:
            self._due, self._woken, self._wakes, self._changed = set(followers), {}, {}, now
        self._seen = version
        if presenting and now - self._changed < LEAD_WAIT_S:
            return []
        if version is not None:
            for session_id in list(self._due | self._woken.keys()):
                if drawn(session_id, version):  # there already (maybe by its own poll): nothing to redo
                    self._due.discard(session_id)
                    self._woken.pop(session_id, None)
            for session_id, when in list(self._woken.items()):
                if now - when >= RETRY_S and self._wakes.get(session_id, 0) <= RETRIES:
                    self._due.add(session_id)
                    del self._woken[session_id]
        gone = []
        in_flight = sum(1 for session_id in self._woken if self._running(session_id))  # woken, not yet drawn
        for session_id in sorted(self._due & followers):
            if in_flight >= self._pace:
                break
            answer = self._rerun(session_id)
            if answer is not BUSY:
                self._due.discard(session_id)
            if answer is WOKEN:
                in_flight += 1
                self._woken[session_id] = now
                self._wakes[session_id] = self._wakes.get(session_id, 0) + 1
            elif answer is GONE:
                gone.append(session_id)
        self._due &= followers
        self._woken = {s: t for s, t in self._woken.items() if s in followers}
        return gone

    @property
    def pending(self) -> bool:
        """Followers wait to be woken (for a slot, or for their own run to end)."""
        return bool(self._due)


GONE, BUSY, WOKEN = "gone", "busy", "woken"


def _info(session_id: str) -> object | None:
    """The session manager's record of the session (None when closed); raises if Streamlit's internals changed."""
    from streamlit.runtime import Runtime  # noqa: PLC0415

    return Runtime.instance()._session_mgr.get_active_session_info(session_id)


def _state_of(info: object | None) -> str:
    """GONE (closed), BUSY (a run of its own going on, or asked for and not begun) or WOKEN (idle: may be rerun)."""
    if info is None:
        return GONE
    # a full rerun requested now would stop that run (Streamlit's fast reruns), and the script runner it stops sends
    # the browser nothing more, not even that its run ended
    return BUSY if getattr(info.session, "_scriptrunner", None) is not None else WOKEN


def _state(session_id: str) -> str:
    try:
        return _state_of(_info(session_id))
    except Exception:  # internals changed under us
        log.warning("wake: cannot read session %s", session_id, exc_info=True)
        return WOKEN


def _rerun(session_id: str) -> str:
    """Rerun the session as its browser last ran it, as a full run: WOKEN; BUSY while a run of its own is going on or
    pending (a rerun now would stop it, and with it the click that started it: tried again next tick); GONE when
    closed."""
    from streamlit.proto.ClientState_pb2 import ClientState  # noqa: PLC0415

    try:
        info = _info(session_id)
        state = _state_of(info)
        if state is not WOKEN:
            return state
        client = ClientState()
        client.CopyFrom(info.session._client_state)
        client.fragment_id, client.is_auto_rerun = "", False  # the whole page: it may switch to another
        info.session.request_rerun(client)
    except Exception:  # internals changed under us: its poll still brings it along
        log.warning("wake: cannot rerun session %s", session_id, exc_info=True)
    return WOKEN
