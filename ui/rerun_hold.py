"""A fragment's rerun that arrives while the session's previous run is ending waits until that run's messages are out.

A race in Streamlit under load: a rerun request that arrives after the session's script runner has decided to stop,
but before the server's event loop has handled that runner's last events, starts a new runner at once; the session then
ignores every event of the old runner still waiting on the loop (AppSession's "non-current ScriptRunner" rule). The
browser never gets that run's last elements, nor the news that it ended, while the script itself ran to its end.
Streamlit guards only the case where the fragment no longer exists (its issue 9921).

Measured with benchmarks/classroom_follow.py (120 followers on 2 app processes, 2 cores): a follower's poll, timed
just as its switched-to page finished, dropped that page's end in 9 to 25 of 480 switches; the server counted the page
drawn, so nothing drew it again until the next slide. Here such a fragment rerun is asked again on the event loop once
the old runner has ended (it is only a fragment: a few milliseconds later changes nothing a user sees), at most HOLD_S.
A full rerun is left alone: it redraws the whole page anyway.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

HOLD_S = 2.0
AGAIN_S = (0.01, 0.02, 0.05, 0.1)  # how soon to look again: soon at first, then less often (a runner ends in ms)
_MARK = "_gan_holds_fragment_reruns"


def install(session_class: Any = None) -> bool:
    """Wrap `session_class.request_rerun` (Streamlit's AppSession by default) once per process; False where this
    Streamlit lacks what it needs (then nothing changes)."""
    try:
        from streamlit.runtime.scriptrunner_utils.script_requests import ScriptRequestType  # noqa: PLC0415

        if session_class is None:
            from streamlit.runtime.app_session import AppSession as session_class  # noqa: PLC0415
    except ImportError:
        return False
    if getattr(session_class.request_rerun, _MARK, False):
        return True
    original = session_class.request_rerun
    stop = ScriptRequestType.STOP

    def ending(session: Any) -> bool:
        """The session's runner has stopped taking requests, and the loop has not yet seen it end."""
        requests = getattr(getattr(session, "_scriptrunner", None), "_requests", None)
        return getattr(requests, "_state", None) is stop

    @functools.wraps(original)
    def request_rerun(self: Any, client_state: Any = None) -> None:
        if client_state is None or not client_state.fragment_id or not ending(self):
            return original(self, client_state)
        try:
            loop = asyncio.get_running_loop()  # a browser's request: on the session's event loop
        except RuntimeError:
            return original(self, client_state)
        deadline = loop.time() + HOLD_S

        def again(tries: int) -> None:
            if ending(self) and loop.time() < deadline:
                loop.call_later(AGAIN_S[min(tries, len(AGAIN_S) - 1)], again, tries + 1)
            else:
                original(self, client_state)

        loop.call_later(AGAIN_S[0], again, 1)
        return None

    setattr(request_rerun, _MARK, True)
    session_class.request_rerun = request_rerun
    return True
