"""Reads of the room's store, kept a moment for every session of this app process.

Each session's page run asks the store the same questions: what the stage shows, which question is open on a lesson,
which comparison everyone sees. With a hundred followers redrawing a page at once, that was a hundred identical reads
(each a few SQLite statements, each statement letting go of the GIL and waiting to get it back behind the other
sessions' threads: py-spy on benchmarks/page_cost.py put a tenth of a lesson page's run there). One read per process
per `fresh_s` now answers them all; this process's own writes call `forget`, so it sees its own change at once, and
another process's change is seen within `fresh_s`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Generic, TypeVar

V = TypeVar("V")
T = TypeVar("T")


class Recent(Generic[V]):
    """What `read()` returned for a key, kept `fresh_s` seconds of `clock`. The values are shared by every session of
    the process: they must not be changed in place."""

    def __init__(self, fresh_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.fresh_s, self._clock = fresh_s, clock
        self._lock = threading.Lock()
        self._kept: dict[Hashable, tuple[float, V]] = {}
        self._generation = 0  # bumped by forget: a read that began before a write is not kept after it

    def get(self, key: Hashable, read: Callable[[], V]) -> V:
        now = self._clock()
        with self._lock:
            hit, generation = self._kept.get(key), self._generation
        if hit is not None and 0 <= now - hit[0] < self.fresh_s:  # (a wall clock set back: read again)
            return hit[1]
        value = read()
        with self._lock:
            if generation == self._generation:
                self._kept[key] = (now, value)
        return value

    @contextmanager
    def writing(self, transaction: AbstractContextManager[T]) -> Iterator[T]:
        """Around a write transaction of this process: what it changed is read again afterwards."""
        try:
            with transaction as cursor:
                yield cursor
        finally:
            self.forget()

    def forget(self) -> None:
        """This process changed what was read: the next `get` reads it again."""
        with self._lock:
            self._kept.clear()
            self._generation += 1
