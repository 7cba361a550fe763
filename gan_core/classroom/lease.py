"""The training lease: which of a room's app processes trains its runs.

Several app processes may serve one runs folder (a lecture hall behind a load balancer); exactly one of them trains. It
holds a lock the operating system or the database lets go of the moment the process dies, even by kill -9, so another
process that keeps asking gets it within its next try (gan_core.runs.manager asks every LEASE_RETRY_S):

- one machine (the classroom store on SQLite): an exclusive `flock` on a file in the runs folder. flock belongs to the
  open file, so two managers in one process exclude each other too;
- several machines (the store on PostgreSQL): a session-level advisory lock held on a connection of its own.
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


class Lease(Protocol):
    def try_acquire(self) -> bool:
        """Take the lease if nobody holds it; True while this holds it."""
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

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor lets the lock go
            self._fd = None


class AdvisoryLease:
    """The lease as PostgreSQL's session advisory lock, on a connection kept for it alone."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self._connection: Any = None

    def try_acquire(self) -> bool:
        if self._connection is not None:
            return True
        try:
            connection = self.store.dedicated()
        except ValueError:  # the server cannot be reached: no lease now, the next try may do better
            return False
        try:
            got = connection.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_KEY,)).fetchone()[0]
        except Exception:  # noqa: BLE001 - the connection broke between connect and query: as unreachable
            connection.close()
            return False
        if not got:
            connection.close()
            return False
        self._connection = connection
        return True

    def release(self) -> None:
        if self._connection is not None:
            self._connection.close()  # the session's end lets its advisory locks go
            self._connection = None


def lease_for(store: Store, runs_dir: str | os.PathLike) -> Lease:
    """The lease that fits where the room's state lives."""
    return AdvisoryLease(store) if isinstance(store, PostgresStore) else FileLease(runs_dir)
