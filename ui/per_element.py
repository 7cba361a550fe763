"""What Streamlit does for every element a script draws, made cheap for a room of sessions drawing at once.

py-spy on a server where ten followers redrew a lesson page at once (benchmarks/page_cost.py) found two per-element
costs that the script threads queued on, not work of this app's own:

1. Wake-ups of the server's event loop. Streamlit hands every element a script draws to the loop with
   `call_soon_threadsafe`, which writes a byte to the loop's wake-up socket each time; the loop, handling it, does the
   same once more to flush the browser's queue. Each write releases the GIL, and a script thread that releases the GIL
   waits for it again behind every other thread that wants it: a third of the script threads' samples sat in those
   writes. Here a session's events queue in order behind one scheduled drain (the script thread writes only when the
   queue was empty), and the loop sets its own "messages to send" flag directly. The order of a session's events is
   unchanged; each still runs on the loop.
2. A config read behind one process-wide lock: every element asks `config.get_option` for the size from which a
   message is cached, under the lock that guards the config's parsing (a tenth of the samples after the first fix).
   Here the hasher's read takes the parsed options without the lock, as Streamlit's own `get_config_options` does.

Measured with benchmarks/page_cost.py (10 sessions, 25 rounds, server CPU per page run): mode collapse 39 -> 25 ms,
batch norm 55 -> 36 ms, activations 47 -> 37 ms, training 29 -> 23 ms after the first.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)
_MARK = "_gan_batches_wakeups"


def install(session_class: Any = None, hasher: Any = None) -> bool:
    """Patch Streamlit's AppSession and the config its message hasher reads, once per process; False where this
    Streamlit lacks what they need (then nothing changes)."""
    try:
        if session_class is None:
            from streamlit.runtime.app_session import AppSession as session_class  # noqa: PLC0415
        if hasher is None:
            from streamlit.runtime import forward_msg_cache as hasher  # noqa: PLC0415
    except ImportError:
        return False
    call_soon = getattr(session_class, "_call_soon_on_event_loop", None)
    config = getattr(hasher, "config", None)
    if call_soon is None or not hasattr(config, "get_config_options"):
        return False
    if not getattr(call_soon, _MARK, False):
        session_class._call_soon_on_event_loop = _batched(call_soon)
    if not isinstance(config, _UnlockedConfig):
        # only the hasher's own view of the config: Streamlit's AppTest swaps `config.get_option` for its own overrides
        hasher.config = _UnlockedConfig(config)
    return True


class _UnlockedConfig:
    """Streamlit's config module as the message hasher sees it: `get_option` reads the parsed options without the
    lock (an unknown key still gets Streamlit's own error); anything else is the module's own."""

    def __init__(self, config: Any) -> None:
        self._config = config

    def get_option(self, key: str) -> Any:
        option = self._config.get_config_options().get(key)  # lock-free once parsed
        return option.value if option is not None else self._config.get_option(key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._config, name)


def _batched(original: Callable[[Any, Callable[[], None]], None]) -> Callable[[Any, Callable[[], None]], None]:
    @functools.wraps(original)
    def call_soon_on_event_loop(session: Any, callback: Callable[[], None]) -> None:
        batch = session.__dict__.get("_gan_batch")
        if batch is None:  # the session's first event: its loop-side wake-up too (the runtime bound it at its start)
            batch = session.__dict__.setdefault("_gan_batch", _Batch())
            enqueued = session.__dict__.get("_message_enqueued_callback")
            if enqueued is not None and not getattr(enqueued, _MARK, False):
                session._message_enqueued_callback = _set_on_the_loop(enqueued)
        if batch.add(callback):
            try:
                original(session, batch.drain)
            except BaseException:
                batch.reset()  # the loop is gone (Streamlit raises or drops, as it did before)
                raise

    setattr(call_soon_on_event_loop, _MARK, True)
    return call_soon_on_event_loop


class _Batch:
    """One session's callbacks waiting for the loop, in order, behind one scheduled drain."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: list[Callable[[], None]] = []

    def add(self, callback: Callable[[], None]) -> bool:
        """Queue it; True when a drain must be scheduled (none is)."""
        with self._lock:
            self._waiting.append(callback)
            return len(self._waiting) == 1

    def reset(self) -> None:
        with self._lock:
            self._waiting.clear()

    def drain(self) -> None:
        """On the loop: every callback queued so far, in order, then any queued meanwhile."""
        while True:
            with self._lock:
                # the last one is taken under the lock with the list emptied: an `add` after this schedules a drain
                batch, self._waiting = self._waiting, []
            if not batch:
                return
            for callback in batch:
                try:
                    callback()
                except Exception:  # as the loop's own handler would: reported, and the rest still run
                    log.exception("a session event failed on the event loop")


def _set_on_the_loop(original: Callable[[], None]) -> Callable[[], None]:
    """The runtime's "a message was queued" callback (a bound Runtime._enqueued_some_message): on the runtime's own
    loop, it sets the flag its sender waits on directly instead of scheduling that through the wake-up socket."""
    objs = getattr(getattr(original, "__self__", None), "_async_objs", None)
    if objs is None or not hasattr(objs, "need_send_data"):
        return original

    @functools.wraps(original)
    def enqueued_some_message() -> None:
        try:
            on_loop = asyncio.get_running_loop() is objs.eventloop
        except RuntimeError:  # no loop in this thread: a script thread
            on_loop = False
        if on_loop:
            objs.need_send_data.set()  # an asyncio.Event, set on its own loop: nothing to wake
        else:
            original()

    setattr(enqueued_some_message, _MARK, True)
    return enqueued_some_message
