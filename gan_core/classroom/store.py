"""The classroom store: a small SQL database every app process of one room opens.

SQLite by default, one file in the runs folder (WAL and a busy timeout: several processes on one machine, nothing to
install); PostgreSQL when GAN_STATE_URL is a postgresql:// address (psycopg 3), for app processes on several machines.
The SQL is written once, with ? placeholders (turned into psycopg's %s), in the dialect both accept. Connections are
pooled: Streamlit runs each script run in a new thread, and a connection per thread would open one (a PostgreSQL backend
process) per poll. Every statement commits at once; `transaction()` groups the few that must not interleave with another
process's.
"""

from __future__ import annotations

import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Protocol, TypeVar

URL_ENV = "GAN_STATE_URL"
SQLITE_FILE = "classroom.db"
BUSY_TIMEOUT_MS = 5_000  # a writer waits this long for another process's write before giving up
T = TypeVar("T")
IDLE_CONNECTIONS = 8  # kept open between uses; more are opened while more threads want one at once, then closed


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...
    def fetchall(self) -> list[tuple]: ...


def state_url(runs_dir: str | os.PathLike) -> str:
    """GAN_STATE_URL if set, else the SQLite file in the runs folder."""
    url = os.environ.get(URL_ENV, "").strip()
    return url or f"sqlite:///{Path(runs_dir).resolve() / SQLITE_FILE}"


IMPORTED = ("CREATE TABLE IF NOT EXISTS imported (what TEXT PRIMARY KEY)",)  # the files import_once has read

class Store:
    """One room's database. `rows` reads, `run` writes (committed at once), `transaction` holds a write lock across
    several statements; all take SQL with ? placeholders."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._idle: queue.LifoQueue = queue.LifoQueue()
        self._schema_lock = threading.Lock()
        self._schemas: set[str] = set()

    # -- what a part of the room uses ------------------------------------------------------------------------------------
    def ensure(self, name: str, ddl: Sequence[str]) -> None:
        """Create a part's tables once per store (CREATE ... IF NOT EXISTS: any process may be first)."""
        with self._schema_lock:
            if name in self._schemas:
                return
            # under the room's write lock: two processes creating one table at once is an error on PostgreSQL, even
            # with IF NOT EXISTS (seen in CI: DuplicateTable)
            with self.transaction() as cursor:
                for statement in ddl:
                    cursor.execute(statement)
            self._schemas.add(name)

    def import_once(self, what: str, read: Callable[[Cursor], None]) -> None:
        """A file from before the room had a store (predictions.json, comparisons.json): `read` copies it into the
        store's rows in the first process that gets here, once per room, and never again (what the room does later
        is in the store, not in the file)."""
        self.ensure("imported", IMPORTED)
        with self.transaction() as cursor:
            cursor.execute("SELECT what FROM imported WHERE what = ?", (what,))
            if cursor.fetchall():
                return
            cursor.execute("INSERT INTO imported (what) VALUES (?)", (what,))
            read(cursor)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        def fetch(connection: Any) -> list[tuple]:
            cursor = connection.cursor()
            cursor.execute(self._sql(sql), tuple(params))
            return cursor.fetchall()

        connection, found = self._started(fetch)
        self._give_back(connection)
        return found

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        """One write, committed at once. It may be sent twice after a connection loss (see `_started`): every write the
        room sends this way is one that repeats harmlessly (an upsert, or an update or delete by key)."""
        connection, _ = self._started(lambda c: c.cursor().execute(self._sql(sql), tuple(params)))
        self._give_back(connection)

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[Cursor]:
        """Statements that see and write the room as one step: no other process writes in between. `write=False`:
        reads that see one moment of the room, taking no write lock."""
        connection, cursor = self._started(lambda c: self._begin(c, write))
        try:
            yield _Translating(cursor, self._sql)
        except BaseException:
            with suppress(Exception):  # a connection that broke mid-transaction cannot roll back: it is dropped
                cursor.execute("ROLLBACK")
            connection.close()  # in an unknown state: never handed out again
            raise
        try:
            cursor.execute("COMMIT")
        except BaseException:
            connection.close()
            raise
        self._give_back(connection)

    def _begin(self, connection: Any, write: bool) -> Any:
        cursor = connection.cursor()
        # IMMEDIATE takes the write lock now: a read-then-write cannot be overtaken
        cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        return cursor

    def close(self) -> None:
        """Close the idle connections (a store still in use opens new ones)."""
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return

    # -- the dialect -------------------------------------------------------------------------------------------------
    def _sql(self, sql: str) -> str:
        return sql

    def _started(self, use: Callable[[Any], T]) -> tuple[Any, T]:
        """`use(connection)` on an idle connection (or a new one); returns the connection, not yet given back, and what
        `use` returned.

        A connection idle in the pool may belong to a server that has restarted or a network that dropped it since (a
        blip): its first statement fails on a connection now `_lost`. Then every idle connection, opened before the
        same blip, is dropped, and `use` runs once more on a new connection, so the room's pages never see the blip
        (tests/test_classroom_store.py restarts a real PostgreSQL under a store). Only what may run twice is given to
        `_started`: a read, a transaction's BEGIN, and writes that repeat harmlessly."""
        try:
            connection, pooled = self._idle.get_nowait(), True
        except queue.Empty:
            connection, pooled = self._connect(), False
        try:
            return connection, use(connection)
        except BaseException:
            connection.close()  # in an unknown state (a statement cut short): never handed out again
            if not (pooled and self._lost(connection)):
                raise
        self.close()  # the other idle connections went with the same blip
        connection = self._connect()
        try:
            return connection, use(connection)
        except BaseException:
            connection.close()
            raise

    def _give_back(self, connection: Any) -> None:
        if self._idle.qsize() < IDLE_CONNECTIONS:
            self._idle.put(connection)
        else:
            connection.close()

    def _lost(self, connection: Any) -> bool:
        """Whether a failed connection was dropped by its server or the network (SQLite's file never is)."""
        return False

    def _connect(self) -> Any:
        path = self.url.removeprefix("sqlite:///")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # autocommit (isolation_level=None): each statement commits, BEGIN IMMEDIATE opens a transaction
        connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        connection.execute("PRAGMA journal_mode = WAL")  # readers never wait for the writer
        connection.execute("PRAGMA synchronous = NORMAL")  # WAL's safe setting: a power cut loses a moment, never the file
        return connection


# the lease connection's limits: 2 s to connect (libpq's least), 1 s for a statement, whether the server is slow to
# answer (statement_timeout) or the network took the packets (tcp_user_timeout, in ms)
LEASE_OPTIONS = {"connect_timeout": 2, "tcp_user_timeout": 1000, "options": "-c statement_timeout=1000"}


class PostgresStore(Store):
    """The same store on PostgreSQL (psycopg 3, imported only here: a room on SQLite never needs it)."""

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def _begin(self, connection: Any, write: bool) -> Any:
        cursor = connection.cursor()
        cursor.execute("BEGIN")  # (the connection commits each statement on its own until a BEGIN)
        if write:  # one room-wide lock for the transaction: the same guarantee as SQLite's BEGIN IMMEDIATE
            cursor.execute("SELECT pg_advisory_xact_lock(2853)")
        else:  # one snapshot for all its reads (PostgreSQL's default gives each statement its own)
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        return cursor

    def _lost(self, connection: Any) -> bool:
        return bool(getattr(connection, "broken", False))

    def dedicated(self) -> Any:
        """A connection of its own, never pooled (the training lease lives as long as it does), whose every wait is
        short: the lease's holder must hear within seconds that it can no longer confirm it (gan_core.classroom.lease)."""
        return self._connect(**LEASE_OPTIONS)

    def _connect(self, **options: Any) -> Any:
        try:
            import psycopg  # noqa: PLC0415 - optional: only a room on PostgreSQL needs it
        except ImportError as err:
            raise ValueError(f"{URL_ENV} names PostgreSQL, but psycopg cannot be imported ({err}): "
                             'pip install "psycopg[binary]"') from None
        try:
            return psycopg.connect(self.url, **{"autocommit": True, "connect_timeout": 10, **options})
        except psycopg.OperationalError as err:
            first = (str(err).strip().splitlines() or ["no answer"])[0]
            raise ValueError(f"{URL_ENV}: cannot connect to PostgreSQL: {first[:200]}") from None


class _Translating:
    """A cursor that takes ? placeholders whatever the database."""

    def __init__(self, cursor: Any, translate: Any) -> None:
        self._cursor, self._translate = cursor, translate

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._cursor.execute(self._translate(sql), tuple(params))

    def fetchall(self) -> list[tuple]:
        return self._cursor.fetchall()


def open_store(url: str) -> Store:
    """The store at `url` (sqlite:///path or postgresql://...); it connects when first used. A bad URL is refused with
    one line naming GAN_STATE_URL."""
    if url.startswith("sqlite:///"):
        return Store(url)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresStore(url)
    raise ValueError(f"{URL_ENV} must be sqlite:///path or postgresql://..., not {url[:60]!r}")
