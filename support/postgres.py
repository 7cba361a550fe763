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
