"""The presenter key's pace across the room: at most one wrong guess answered per delay, whichever app process it
reached (gan_core.runs.roles.KeyGuard's `pace`). Each app process keeps its own bounds on guesses waiting; the pace is
the room's, a row of the classroom store, so a guesser spread over the hall's processes gets no more tries a second
than against one process."""

from __future__ import annotations

import time
from collections.abc import Callable

from gan_core.classroom.store import Store

SCHEMA = ("CREATE TABLE IF NOT EXISTS key_pace (id INTEGER PRIMARY KEY, free_at DOUBLE PRECISION NOT NULL)",)


class RoomPace:
    """Called with `delay_s` by a wrong guess: returns once it is its turn to be answered (delay_s after the room's
    previous wrong guess was answered, and at least delay_s after this one came)."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.store, self._clock, self._sleep = store, clock, sleep
        store.ensure("key_pace", SCHEMA)

    def __call__(self, delay_s: float) -> None:
        with self.store.transaction() as cursor:  # the room's write lock: two processes never take the same turn
            cursor.execute("SELECT free_at FROM key_pace WHERE id = 1")
            rows = cursor.fetchall()
            now = self._clock()
            answered_at = max(now, float(rows[0][0]) if rows else now) + delay_s
            if rows:
                cursor.execute("UPDATE key_pace SET free_at = ? WHERE id = 1", (answered_at,))
            else:
                cursor.execute("INSERT INTO key_pace (id, free_at) VALUES (1, ?)", (answered_at,))
        self._sleep(answered_at - now)
