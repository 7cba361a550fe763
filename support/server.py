"""`streamlit run dashboard.py` on a free port with its own runs folder: the server of the browser tests, the load tests
and the benchmarks that drive a real app."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from gan_core.hall import wait_healthy

REPO_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def local_server(runs_dir: Path, log: Path, env: dict[str, str] | None = None,
                 start_timeout: float = 90.0) -> Iterator[tuple[str, int]]:
    """Start the app, wait for its health check, yield (url, pid); terminate it afterwards (kill if it hangs).

    GAN_OFFLINE=1: a page that wants MNIST never tries the network (these machines have none).
    """
    port = free_port()
    full_env = {**os.environ, "GAN_RUNS_DIR": str(runs_dir), "GAN_OFFLINE": "1", **(env or {})}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "dashboard.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
            cwd=REPO_ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_healthy(proc, port, log, start_timeout)
        except RuntimeError as err:
            raise RuntimeError(f"streamlit did not start ({err}):\n{log.read_text()[-3000:]}") from None
        yield url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
