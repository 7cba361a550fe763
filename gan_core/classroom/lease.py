"""The training lease: which of a room's app processes trains its runs.

Several app processes may serve one runs folder (a lecture hall behind a load balancer); exactly one of them trains. It
holds a lock the operating system or the database lets go of the moment the process dies, even by kill -9, so another
process that keeps asking gets it within its next try (gan_core.runs.manager asks every LEASE_RETRY_S):

- one machine (the classroom store on SQLite): an exclusive `flock` on a file in the runs folder. flock belongs to the
  open file, so two managers in one process exclude each other too;
- several machines (the store on PostgreSQL): a session-level advisory lock held on a connection of its own.

A database restart or a network blip ends that connection, and with it the lock, while its holder lives on and trains.
So the holder beats (writes the database's time into a row, on the lease's connection, every BEAT_S) and asks its lease
`holds()` each time: a lost connection is replaced and the lock taken again at once. Another process takes a free lock
only once the last beat is TAKEOVER_AFTER_S old, and a holder that could not beat for STEP_DOWN_S, or found the lock
taken, stops training (gan_core.runs.sharing.step_down) before that: never two trainers, even across a blip. A clean
release clears the beat, so a successor does not wait.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any, Protocol

from gan_core.classroom.store import PostgresStore, Store

LOCK_FILE = ".trainer.lock"
ADVISORY_KEY = 2854  # the training lease's key (the store's write lock is 2853)
LEASE_RETRY_S = 1.0  # how often a process that does not train asks again: a dead owner is replaced within about this
BEAT_S = 0.5  # how often the holder confirms it still holds the lease (PostgreSQL: a round trip on its connection)
STEP_DOWN_S = 2.0  # a holder that could not confirm for this long stops training...
# ...well before another process may take a lock whose last beat is this recent (PostgreSQL). A confirmation that hangs
# on a lost network ends within 1 s (the lease connection's timeouts: gan_core.classroom.store.LEASE_OPTIONS) and a new
# connection within 2 s more, so a holder has stepped down by BEAT_S + 1 + 2 = 3.5 s after its last beat at the latest
TAKEOVER_AFTER_S = 6.0


class Lease(Protocol):
    def try_acquire(self) -> bool:
        """Take the lease if nobody holds it; True while this holds it."""
        ...

    def holds(self) -> bool | None:
        """Asked by the holder every BEAT_S: True while it holds the lease (taken again if its connection was lost),
        False once another process holds it, None when that cannot be told now (the database unreachable)."""
        ...

    def release(self) -> None: ...


class FileLease:
    """The lease as an exclusive flock on `runs_dir/.trainer.lock`."""

    def __init__(self, runs_dir: str | os.PathLike) -> None:
        self.path = Path(runs_dir) / LOCK_FILE
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:  # no runs folder (it cannot be created): nobody can train in it anyway
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.set_inheritable(fd, False)  # a worker process must not keep the lease alive after its server died
        self._fd = fd
        return True

    def holds(self) -> bool | None:
        return self._fd is not None  # a flock is lost only with the process

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor lets the lock go
            self._fd = None


BEAT_DDL = "CREATE TABLE IF NOT EXISTS trainer_beat (id INTEGER PRIMARY KEY, seen DOUBLE PRECISION NOT NULL)"
_NOW = "extract(epoch from clock_timestamp())"  # the database's clock: every process reads the same one


class AdvisoryLease:
    """The lease as PostgreSQL's session advisory lock, on a connection kept for it alone, and the holder's beat."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self._connection: Any = None

    def try_acquire(self) -> bool:
        if self._connection is not None:
            return True
        return self._take(after_beat=True) is True

    def holds(self) -> bool | None:
        if self._connection is not None:
            try:
                self._beat(self._connection)
                return True
            except Exception:  # noqa: BLE001 - the connection is gone (a restart, a blip), and the lock with it
                self._connection.close()
                self._connection = None
        return self._take(after_beat=False)  # its own: taken again at once, whatever the beat says

    def _take(self, *, after_beat: bool) -> bool | None:
        """Take the lock on a new connection of its own and beat: True; False when another process holds it, or (with
        `after_beat`) when it is free but its holder beat less than TAKEOVER_AFTER_S ago (a blip took the holder's
        lock, and it is taking it again); None when the database cannot be reached."""
        try:
            connection = self.store.dedicated()
        except ValueError:
            return None
        try:
            got = connection.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_KEY,)).fetchone()[0]
            if got and after_beat:
                connection.execute(BEAT_DDL)  # (only a lock holder creates it: never two at once)
                age = connection.execute(f"SELECT {_NOW} - seen FROM trainer_beat WHERE id = 1").fetchone()
                got = age is None or age[0] >= TAKEOVER_AFTER_S
            if got:
                self._beat(connection)
        except Exception:  # noqa: BLE001 - the connection broke between connect and query: as unreachable
            connection.close()
            return None
        if not got:
            connection.close()
            return False
        self._connection = connection
        return True

    def release(self) -> None:
        if self._connection is not None:
            try:  # a clean hand-over: the next process need not wait out the last beat
                self._connection.execute("UPDATE trainer_beat SET seen = 0 WHERE id = 1")
            except Exception:  # noqa: BLE001 - a lost connection has let the lock go anyway
                pass
            self._connection.close()  # the session's end lets its advisory locks go
            self._connection = None

    @staticmethod
    def _beat(connection: Any) -> None:
        connection.execute(f"INSERT INTO trainer_beat (id, seen) VALUES (1, {_NOW}) "
                           f"ON CONFLICT (id) DO UPDATE SET seen = {_NOW}")


def lease_for(store: Store, runs_dir: str | os.PathLike) -> Lease:
    """The lease that fits where the room's state lives."""
    return AdvisoryLease(store) if isinstance(store, PostgresStore) else FileLease(runs_dir)
