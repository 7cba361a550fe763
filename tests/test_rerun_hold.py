"""ui.rerun_hold: a fragment's rerun that arrives while the session's runner is ending waits for it to end."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.runtime.scriptrunner_utils.script_requests import ScriptRequestType

from tests import aio
from ui import rerun_hold


class Session:
    """Stands in for Streamlit's AppSession: records the reruns it is asked for, and what its runner was doing."""

    def __init__(self) -> None:
        self._scriptrunner: object | None = None
        self.asked: list[tuple[str, bool]] = []

    def request_rerun(self, client_state: ClientState | None = None) -> None:
        self.asked.append((client_state.fragment_id if client_state else "", self._scriptrunner is None))


def _ending() -> object:
    return SimpleNamespace(_requests=SimpleNamespace(_state=ScriptRequestType.STOP))


def test_a_fragment_rerun_waits_for_an_ending_runner_and_a_full_one_does_not():
    assert rerun_hold.install(Session) and rerun_hold.install(Session)  # once: the second call changes nothing

    async def lesson() -> Session:
        s = Session()
        s._scriptrunner = SimpleNamespace(_requests=SimpleNamespace(_state=ScriptRequestType.CONTINUE))
        s.request_rerun(ClientState(fragment_id="poll"))  # a runner that still takes requests: at once
        assert s.asked == [("poll", False)]
        s._scriptrunner = _ending()
        s.request_rerun(ClientState(fragment_id="poll"))
        s.request_rerun(ClientState())  # a full rerun redraws everything anyway: at once
        assert s.asked[1:] == [("", False)]
        await asyncio.sleep(0.1)
        assert s.asked[2:] == []  # held while the runner ends
        s._scriptrunner = None  # the loop has handled the runner's end
        await asyncio.sleep(0.1)
        return s

    s = aio.run(lesson())
    assert s.asked[2:] == [("poll", True)]  # then asked, once, with nothing left to drop


def test_a_runner_that_never_ends_holds_the_rerun_at_most_hold_s(monkeypatch):
    monkeypatch.setattr(rerun_hold, "HOLD_S", 0.2)

    class Other(Session):
        pass

    rerun_hold.install(Other)

    async def lesson() -> Other:
        s = Other()
        s._scriptrunner = _ending()
        s.request_rerun(ClientState(fragment_id="poll"))
        await asyncio.sleep(0.5)
        return s

    assert aio.run(lesson()).asked == [("poll", False)]


def test_the_dashboard_holds_streamlits_own_sessions():
    from streamlit.runtime.app_session import AppSession

    assert rerun_hold.install()
    assert getattr(AppSession.request_rerun, rerun_hold._MARK, False)
