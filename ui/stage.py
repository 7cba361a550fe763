"""The stage: what the presenter shows now (a page and a run), shared by every session on the server so students can
follow it like a slide deck. No Streamlit here: ui.follow publishes to it and polls it.

A presenter session publishes its page and selected run on every script run and touches the stage every few seconds
(a heartbeat); the stage counts as empty once no presenter has been seen for `active_s`, so a closed presenter tab
stops leading the room. Each change of page or run gets a new version: a follower applies a version once, which is
what keeps it from fighting its own picker or looping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

ACTIVE_S = 10.0  # five missed heartbeats (ui.follow.HEARTBEAT_S = 2 s): a presenter tab closed, not merely slow


@dataclass(frozen=True)
class Scene:
    """What the presenter shows: a page (its URL path, "" for the default page) and a run (None when there is none)."""

    page: str
    run: str | None
    version: int  # new for every change of page or run


class Stage:
    """The presenter's scene, or None when no presenter has been seen for `active_s` seconds. Thread-safe: every
    browser session's script thread reads it, the presenter's writes it."""

    def __init__(self, *, active_s: float = ACTIVE_S, clock: Callable[[], float] = time.monotonic) -> None:
        if active_s <= 0:
            raise ValueError(f"active_s must be above 0, got {active_s}")
        self.active_s = active_s
        self._clock = clock
        self._lock = threading.Lock()
        self._scene: Scene | None = None
        self._seen = float("-inf")
        self._version = 0

    def publish(self, page: str, run: str | None) -> Scene:
        """A presenter shows `page` and `run`: a new version when either changed (or the stage had gone quiet)."""
        with self._lock:
            now = self._clock()
            scene = self._scene
            if scene is None or (scene.page, scene.run) != (page, run) or now - self._seen > self.active_s:
                self._version += 1
                scene = self._scene = Scene(page, run, self._version)
            self._seen = now
            return scene

    def heartbeat(self) -> None:
        """A presenter session is still open (its scene unchanged)."""
        with self._lock:
            if self._scene is not None:
                self._seen = self._clock()

    def current(self) -> Scene | None:
        with self._lock:
            if self._scene is None or self._clock() - self._seen > self.active_s:
                return None
            return self._scene

    def clear(self) -> None:
        """No presenter any more (a server's tests start each from an empty stage)."""
        with self._lock:
            self._scene = None
            self._seen = float("-inf")
