"""The stage: what the presenter shows now (a page and a run), shared by every app process of the room so students can
follow it like a slide deck, whichever process serves them. No Streamlit here: ui.follow publishes to it and polls it.

A presenter session publishes its page and selected run on every script run and touches the stage every few seconds
(a heartbeat); the stage counts as empty once no presenter has been seen for `active_s`, so a closed presenter tab
stops leading the room. Each change of page or run gets a new version: a follower applies a version once, which is
what keeps it from fighting its own picker or looping. The stage is one row of the classroom store; its times are wall
clock seconds, as every process of the room reads the same row (machines of one room keep their clocks in step).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from gan_core.classroom.recent import Recent
from gan_core.classroom.store import Store

ACTIVE_S = 10.0  # five missed heartbeats (ui.follow.HEARTBEAT_S = 2 s): a presenter tab closed, not merely slow
FRESH_S = 0.1  # a row read this recently answers `current` again: 120 followers polling twice a second cost 240 reads

SCHEMA = ("CREATE TABLE IF NOT EXISTS stage (id INTEGER PRIMARY KEY, page TEXT, run TEXT, version INTEGER NOT NULL, "
          "seen DOUBLE PRECISION NOT NULL)",)


@dataclass(frozen=True)
class Scene:
    """What the presenter shows: a page (its URL path, "" for the default page) and a run (None when there is none)."""

    page: str
    run: str | None
    version: int  # new for every change of page or run


class Stage:
    """The presenter's scene, or None when no presenter has been seen for `active_s` seconds. Every browser session's
    script thread, in every process of the room, reads it; the presenter's writes it."""

    def __init__(self, store: Store, *, active_s: float = ACTIVE_S, clock: Callable[[], float] = time.time,
                 fresh_s: float = FRESH_S) -> None:
        if active_s <= 0:
            raise ValueError(f"active_s must be above 0, got {active_s}")
        self.store, self.active_s, self.fresh_s, self._clock = store, active_s, fresh_s, clock
        self._recent: Recent[tuple | None] = Recent(fresh_s, clock)  # the row, as last read
        store.ensure("stage", SCHEMA)

    def publish(self, page: str, run: str | None) -> Scene:
        """A presenter shows `page` and `run`: a new version when either changed (or the stage had gone quiet)."""
        with self.store.transaction() as cursor:
            now = self._clock()
            cursor.execute("SELECT page, run, version, seen FROM stage WHERE id = 1")
            rows = cursor.fetchall()
            if rows:
                old_page, old_run, version, seen = rows[0]
                if old_page is None or (old_page, old_run) != (page, run) or now - seen > self.active_s:
                    version += 1
                cursor.execute("UPDATE stage SET page = ?, run = ?, version = ?, seen = ? WHERE id = 1",
                               (page, run, version, now))
            else:
                version = 1
                cursor.execute("INSERT INTO stage (id, page, run, version, seen) VALUES (1, ?, ?, ?, ?)",
                               (page, run, version, now))
        self._forget()
        return Scene(page, run, version)

    def heartbeat(self) -> None:
        """A presenter session is still open (its scene unchanged)."""
        self.store.run("UPDATE stage SET seen = ? WHERE id = 1 AND page IS NOT NULL", (self._clock(),))
        self._forget()

    def current(self) -> Scene | None:
        """The scene, as the row stood at most `fresh_s` ago (this process's own publish is seen at once)."""
        now = self._clock()
        row = self._recent.get("stage", self._read)
        if row is None or row[0] is None or now - row[3] > self.active_s:
            return None
        page, run, version, _ = row
        return Scene(page, run, version)

    def _read(self) -> tuple | None:
        rows = self.store.rows("SELECT page, run, version, seen FROM stage WHERE id = 1")
        return rows[0] if rows else None

    def _forget(self) -> None:
        self._recent.forget()

    def clear(self) -> None:
        """No presenter any more (a server's tests start each from an empty stage). The version is kept: a follower in
        another process never sees an old version again."""
        self.store.run("UPDATE stage SET page = NULL, run = NULL, seen = 0 WHERE id = 1")
        self._forget()
