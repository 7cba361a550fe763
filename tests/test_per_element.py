"""ui.per_element: a session's script events reach the event loop in order, in batches; config reads take no lock."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace

import pytest

from tests import aio
from ui import per_element


class Session:
    """Stands in for Streamlit's AppSession: schedules each callback on a loop, and counts the wake-ups."""

    def __init__(self, loop: asyncio.AbstractEventLoop, enqueued=None) -> None:
        self._event_loop = loop
        self._message_enqueued_callback = enqueued
        self.wakeups = 0

    def _call_soon_on_event_loop(self, callback):
        self.wakeups += 1
        self._event_loop.call_soon_threadsafe(callback)


class Runtime:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._async_objs = type("Objs", (), {"eventloop": loop, "need_send_data": asyncio.Event()})()
        self.woken_from_threads = 0

    def _enqueued_some_message(self) -> None:
        self.woken_from_threads += 1


class Config:
    def __init__(self) -> None:
        self.locked_reads = 0
        self.options = {"global.minCachedMessageSize": type("Option", (), {"value": 10_000})()}

    def get_option(self, key: str):
        self.locked_reads += 1
        if key not in self.options:
            raise RuntimeError(f'Config key "{key}" not defined.')
        return self.options[key].value

    def get_config_options(self):
        return self.options


def _install() -> SimpleNamespace:
    hasher = SimpleNamespace(config=Config())
    assert per_element.install(Session, hasher)
    assert per_element.install(Session, hasher)  # once: the second call changes nothing
    return hasher


def test_a_scripts_events_arrive_in_order_with_few_wakeups_and_a_failing_one_does_not_stop_the_rest():
    _install()
    seen: list[int] = []

    def event(i: int):
        def callback() -> None:
            if i == 3:
                raise ValueError("one event fails")
            seen.append(i)
        return callback

    async def lesson() -> Session:
        session = Session(asyncio.get_running_loop())

        def script() -> None:  # a script thread drawing 500 elements
            for i in range(500):
                session._call_soon_on_event_loop(event(i))

        thread = threading.Thread(target=script)
        thread.start()
        while thread.is_alive() or len(seen) < 499:
            await asyncio.sleep(0.01)
        return session

    session = aio.run(lesson())
    assert seen == [i for i in range(500) if i != 3]
    assert session.wakeups < 500  # (how few depends on the threads' timing: one per batch the loop found waiting)


def test_the_loop_sets_its_own_flag_and_a_script_thread_still_wakes_it():
    _install()

    async def lesson() -> Runtime:
        runtime = Runtime(asyncio.get_running_loop())
        session = Session(runtime._async_objs.eventloop, runtime._enqueued_some_message)  # bound, as the runtime does
        session._call_soon_on_event_loop(lambda: None)  # the session's first event
        session._message_enqueued_callback()  # on the loop: the flag directly
        assert runtime._async_objs.need_send_data.is_set() and runtime.woken_from_threads == 0
        await asyncio.to_thread(session._message_enqueued_callback)  # from another thread: Streamlit's own way
        assert runtime.woken_from_threads == 1
        return runtime

    aio.run(lesson())


def test_the_hashers_config_reads_take_no_lock_and_an_unknown_key_is_still_refused():
    hasher = _install()
    assert hasher.config.get_option("global.minCachedMessageSize") == 10_000
    assert hasher.config._config.locked_reads == 0
    with pytest.raises(RuntimeError, match="not defined"):
        hasher.config.get_option("no.such")
    assert hasher.config.get_config_options() is hasher.config._config.options  # the rest: the module's own


def test_streamlit_itself_is_patched():
    from streamlit import config
    from streamlit.runtime import forward_msg_cache
    from streamlit.runtime.app_session import AppSession

    assert per_element.install()
    assert getattr(AppSession._call_soon_on_event_loop, per_element._MARK)
    assert forward_msg_cache.config.get_option("global.minCachedMessageSize") == \
        config.get_option("global.minCachedMessageSize")
