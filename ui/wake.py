"""Wake the followers: when the presenter's stage changes, this app process reruns its following sessions itself,
instead of each of them polling for it.

A follower used to poll the stage twice a second from a fragment; 120 followers were 240 script runs a second in one
process, a whole core, before anyone switched a slide (benchmarks/classroom_follow.py: the presenter's own page took
8-44 s, and follower polls fell to 0.2 a second). Now one thread per process reads the stage (at most every
classroom.stage.FRESH_S) and, on a new version, asks Streamlit to rerun each following session of this process, as a
browser's own rerun would (its last client state, as a full run): `ui.follow.sync` at the top of that run switches to
the presenter's page. Followers keep a slow poll (ui.follow.FOLLOW_POLL_S) as the safety net for a switch that was
cut short, or for a Streamlit whose internals this cannot reach (then the poll is the fast one again).

Streamlit has no public call for "rerun that session": this uses the runtime's session manager and a session's last
client state, the pair Streamlit's own rerun-on-save uses. `available()` says whether they are there.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from gan_core.classroom.stage import Stage

log = logging.getLogger(__name__)
TICK_S = 0.1

_lock = threading.Lock()
_followers: set[str] = set()  # session ids of this process's sessions that follow the presenter
_watcher: threading.Thread | None = None
_stage: Stage | None = None


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


def follow(session_id: str, stage: Stage) -> None:
    """This session follows the stage: rerun it when the stage changes."""
    global _watcher, _stage
    with _lock:
        _followers.add(session_id)
        _stage = stage
        if _watcher is None or not _watcher.is_alive():
            _watcher = threading.Thread(target=_watch, name="gan-wake-followers", daemon=True)
            _watcher.start()


def unfollow(session_id: str) -> None:
    with _lock:
        _followers.discard(session_id)


def _watch() -> None:
    seen: int | None = None
    due: set[str] = set()  # followers to rerun for the latest version, once their own run has ended
    while True:
        time.sleep(TICK_S)
        with _lock:
            stage, followers = _stage, set(_followers)
        if stage is None or not followers:
            continue
        try:
            scene = stage.current()
        except Exception:  # the store unreachable for a moment: the followers' own poll still runs
            log.warning("wake: cannot read the stage", exc_info=True)
            continue
        version = None if scene is None else scene.version
        if seen is not None and version != seen:
            due = set(followers)
        seen = version
        for session_id in list(due & followers):
            answer = _rerun(session_id)
            if answer is not BUSY:
                due.discard(session_id)
            if answer is GONE:
                unfollow(session_id)  # closed: forget it
        due &= followers


GONE, BUSY, WOKEN = "gone", "busy", "woken"


def _rerun(session_id: str) -> str:
    """Rerun the session as its browser last ran it, as a full run: WOKEN; BUSY while a run of its own is going on
    (a rerun now would stop it, and with it the click that started it: tried again next tick); GONE when closed."""
    from streamlit.proto.ClientState_pb2 import ClientState  # noqa: PLC0415
    from streamlit.runtime import Runtime  # noqa: PLC0415

    try:
        manager: Any = Runtime.instance()._session_mgr
        info = manager.get_active_session_info(session_id)
        if info is None:
            return GONE
        if getattr(getattr(info.session, "_state", None), "name", "") == "APP_IS_RUNNING":
            return BUSY
        state = ClientState()
        state.CopyFrom(info.session._client_state)
        state.fragment_id, state.is_auto_rerun = "", False  # the whole page: it may switch to another
        info.session.request_rerun(state)
    except Exception:  # internals changed under us: its poll still brings it along
        log.warning("wake: cannot rerun session %s", session_id, exc_info=True)
    return WOKEN
