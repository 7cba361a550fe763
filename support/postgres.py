"""A throwaway PostgreSQL server for tests and benchmarks: a new cluster in a temporary folder, listening on loopback
only, stopped by its own pg_ctl and removed afterwards. Debian's `postgresql` package provides initdb and pg_ctl (in
/usr/lib/postgresql/<version>/bin, not on PATH). The server refuses to run as root: as root it runs as the `postgres`
user the package creates."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from support.server import free_port


def postgres_bin() -> Path | None:
    """The folder holding initdb and pg_ctl (the newest installed version), or None."""
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True):
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    found = shutil.which("initdb")
    return Path(found).parent if found and shutil.which("pg_ctl") else None


_RESTARTS: dict[str, Callable[[], None]] = {}


def restart_postgres(url: str) -> None:
    """Crash and restart the server local_postgres started at `url` (every connection to it is dropped, as in a blip);
    returns once it accepts connections again."""
    _RESTARTS[url]()


@contextmanager
def local_postgres(timeout: float = 60.0) -> Iterator[str]:
    """Start a server; yield its URL (postgresql://gan@127.0.0.1:PORT/postgres, no password: trust on loopback)."""
    folder = postgres_bin()
    if folder is None:
        raise FileNotFoundError("PostgreSQL's initdb and pg_ctl were not found (apt-get install postgresql)")
    home = Path(tempfile.mkdtemp(prefix="gan-postgres-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(home, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = home / "data", free_port()

    def run(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, text=True, timeout=timeout)

    try:
        run(str(folder / "initdb"), "-D", str(data), "-U", "gan", "--auth=trust", "-E", "UTF8", "--no-sync")
        run(str(folder / "pg_ctl"), "-D", str(data), "-l", str(home / "server.log"), "-w", "-t", str(int(timeout)),
            "-o", f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        url = f"postgresql://gan@127.0.0.1:{port}/postgres"
        # a blip: the server stops at once, as a crash would, and comes back on the same port (restart_postgres)
        _RESTARTS[url] = lambda: run(str(folder / "pg_ctl"), "-D", str(data), "-l", str(home / "server.log"), "-m",
                                     "immediate", "-w", "-t", str(int(timeout)), "restart")
        try:
            yield url
        finally:
            _RESTARTS.pop(url, None)
            run(str(folder / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(home, ignore_errors=True)


def fresh_database(url: str, prefix: str = "room") -> str:
    """A new, empty database on the server at `url` (a room of a test's own: no lease or beat from another test);
    returns its URL."""
    from gan_core.classroom.store import open_store  # noqa: PLC0415 - the store imports psycopg only when used

    name = f"{prefix}_{time.monotonic_ns()}"
    admin = open_store(url)
    try:
        admin.run(f"CREATE DATABASE {name}")
    finally:
        admin.close()
    return url.rsplit("/", 1)[0] + f"/{name}"


@contextmanager
def lease_taken_away(room: str) -> Iterator[None]:
    """What an outage longer than the beat allows does to the trainer's lease on PostgreSQL: the session holding its
    advisory lock ends, another session (this helper's) gets the lock before the trainer can take it back, and the
    trainer's last beat is a minute old. The lock stays taken inside the block and is let go on leaving it, its last
    beat still old, so another process may take it at once."""
    import psycopg  # noqa: PLC0415 - only where PostgreSQL is used

    from gan_core.classroom.lease import ADVISORY_KEY  # noqa: PLC0415
    from gan_core.classroom.store import open_store  # noqa: PLC0415

    admin = open_store(room)
    blocker = psycopg.connect(room, autocommit=True)
    try:
        held = admin.rows("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = ? AND granted",
                          (ADVISORY_KEY,))
        assert len(held) == 1, f"the lease is held by {len(held)} sessions, not 1"
        waiting = threading.Thread(target=blocker.execute, args=("SELECT pg_advisory_lock(%s)", (ADVISORY_KEY,)))
        waiting.start()  # queued behind the trainer's session: it gets the lock the moment that session ends
        admin.run("SELECT pg_terminate_backend(?)", (held[0][0],))
        waiting.join(10)
        assert not waiting.is_alive(), "the lock was not handed on within 10 s"
        admin.run("UPDATE trainer_beat SET seen = seen - 60")
        yield
    finally:
        blocker.close()
        admin.close()
