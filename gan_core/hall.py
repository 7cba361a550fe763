"""`python -m gan_core serve --replicas N`: a lecture hall on one machine.

N `streamlit run dashboard.py` processes for the students and one for the presenter, on loopback ports, all on one
runs folder (one room: its state in the classroom store, exactly one process training, gan_core.runs.sharing), behind
HAProxy on the public port. HAProxy keeps each browser on one process (a cookie it sets: Streamlit's websocket, uploads
and media live in the process that drew the page) and sends a browser elsewhere when its process stops answering its
health check. The presenter opens /presenter once; its browser is then served by a process of its own, never by one
that thirty followers keep busy. The apps share one cookie secret, so a browser moved to another process keeps
working. Ctrl-C (or SIGTERM) stops the balancer first, then the apps, each of which checkpoints what it trains; nothing
is left running.

Only the launcher is here: it starts programs and imports no UI (the engine stays UI-free).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gan_core.classroom import join

DASHBOARD = Path(__file__).resolve().parents[1] / "dashboard.py"
START_TIMEOUT_S = 90.0  # an app process imports torch and Streamlit: ~10 s each on 2 busy cores
STOP_TIMEOUT_S = 20.0  # the training process checkpoints its runs on the way out
COOKIE = "GANAPP"
MAX_REPLICAS = 64

BALANCER = """\
global
    maxconn 4096
defaults
    mode http
    option forwardfor
    timeout connect 5s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
frontend hall
    bind {address}:{port}
    # the presenter opens /presenter once: its browser is then served by a process of its own
    http-request redirect location / set-cookie {cookie}=presenter if {{ path /presenter }}
    default_backend apps
backend apps
    balance roundrobin
    # the browser stays on the process that drew its page (its websocket, uploads and media are there); one whose
    # process stopped answering goes to another
    cookie {cookie} insert indirect nocache httponly
    option redispatch
    option httpchk GET /_stcore/health
{servers}
"""


@dataclass
class Hall:
    """What `start` started: the apps (their ports), the balancer, and the folder with the config and the logs."""

    folder: Path
    port: int
    apps: list[subprocess.Popen] = field(default_factory=list)
    app_ports: list[int] = field(default_factory=list)
    balancer: subprocess.Popen | None = None

    def processes(self) -> list[subprocess.Popen]:
        return [*self.apps, *([self.balancer] if self.balancer is not None else [])]


def haproxy() -> str:
    """The haproxy program, or ValueError saying how to get it."""
    found = shutil.which("haproxy") or next((p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy")
                                             if os.access(p, os.X_OK)), None)
    if found is None:
        raise ValueError("--replicas: the lecture hall needs HAProxy as its load balancer, and it is not installed "
                         "(Debian/Ubuntu: sudo apt-get install haproxy); or serve one process: streamlit run dashboard.py")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def balancer_config(port: int, app_ports: list[int], address: str = "0.0.0.0") -> str:
    """HAProxy's config: the first app process is the presenter's (weight 0: no new browser is sent there, only one
    that opened /presenter), the others share the students."""
    check = "check inter 2s fall 2 rise 1"
    servers = [f"    server presenter 127.0.0.1:{app_ports[0]} cookie presenter weight 0 {check}"]
    servers += [f"    server app{i} 127.0.0.1:{p} cookie app{i} {check}" for i, p in enumerate(app_ports[1:], start=1)]
    return BALANCER.format(address=address, port=port, cookie=COOKIE, servers="\n".join(servers))


def app_environment(port: int, address: str, runs_dir: str | None) -> dict[str, str]:
    """The environment every app process of the hall gets (the balancer listens on address:port)."""
    return dict(os.environ, GAN_RUNS_DIR=str(Path(runs_dir or os.environ.get("GAN_RUNS_DIR") or "runs").resolve()),
                # one cookie secret for all (Streamlit takes it only from its environment or config): a browser the
                # balancer moves keeps its cookies valid
                STREAMLIT_SERVER_COOKIE_SECRET=secrets.token_hex(16),
                GAN_BEHIND_PROXY="1",  # a client's address is the one HAProxy forwards (ui.roles.client_address)
                # students open the balancer, never an app's loopback port: the presenter's join address (ui.join)
                **{join.HALL_ENV: f"[{address}]:{port}" if ":" in address else f"{address}:{port}"})


def start(replicas: int, port: int, address: str = "0.0.0.0", runs_dir: str | None = None,
          log: Callable[[str], None] = print) -> Hall:
    """Start `replicas` app processes for the students, one for the presenter, and the balancer in front of them;
    returns once all answer."""
    if not 1 <= replicas <= MAX_REPLICAS:
        raise ValueError(f"--replicas: {replicas} is not between 1 and {MAX_REPLICAS}")
    join.public_url()  # a malformed GAN_PUBLIC_URL is refused before anything starts
    names = ["presenter", *(f"app{i}" for i in range(1, replicas + 1))]
    program = haproxy()
    hall = Hall(Path(tempfile.mkdtemp(prefix="gan-hall-")), port)
    env = app_environment(port, address, runs_dir)
    try:
        for name in names:
            app_port = free_port()
            with open(hall.folder / f"{name}.log", "w") as out:
                hall.apps.append(subprocess.Popen(
                    [sys.executable, "-m", "streamlit", "run", str(DASHBOARD), "--server.port", str(app_port),
                     "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
                    stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True))
            hall.app_ports.append(app_port)
        for name, app, app_port in zip(names, hall.apps, hall.app_ports, strict=True):
            wait_healthy(app, app_port, hall.folder / f"{name}.log")
            log(f"{name}: pid {app.pid}, http://127.0.0.1:{app_port} (log {hall.folder / f'{name}.log'})")
        config = hall.folder / "haproxy.cfg"
        config.write_text(balancer_config(port, hall.app_ports, address))
        with open(hall.folder / "haproxy.log", "w") as out:
            hall.balancer = subprocess.Popen([program, "-db", "-f", str(config)], stdout=out, stderr=subprocess.STDOUT,
                                             start_new_session=True)
        wait_healthy(hall.balancer, port, hall.folder / "haproxy.log")
        log(f"balancer: pid {hall.balancer.pid}, HAProxy on {address}:{port} (config {config})")
    except BaseException:
        stop(hall)
        raise
    return hall


def wait_healthy(process: subprocess.Popen, port: int, log_file: Path, timeout: float = START_TIMEOUT_S) -> None:
    """Wait until the process answers Streamlit's health check on 127.0.0.1:port (HAProxy passes it on to an app);
    RuntimeError naming the process (its log's name) and its last lines if it exits or stays silent for timeout s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{log_file.stem} exited with code {process.returncode} while starting: "
                               f"{_tail(log_file)}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{log_file.stem} did not answer on port {port} within {timeout:.0f} s: "
                       f"{_tail(log_file)}")


def _tail(log_file: Path) -> str:
    try:
        return " | ".join(log_file.read_text(errors="replace").strip().splitlines()[-3:])[-400:] or "(no output)"
    except OSError:
        return "(no log)"


def stop(hall: Hall) -> None:
    """The balancer first (no new requests), then the apps (each checkpoints what it trains); SIGKILL what outlives
    STOP_TIMEOUT_S."""
    for group in ([hall.balancer] if hall.balancer is not None else [], hall.apps):
        for process in group:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in group:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def serve(replicas: int, port: int, address: str = "0.0.0.0", runs_dir: str | None = None) -> int:
    """Start the hall, say what was started, and run until Ctrl-C or SIGTERM (0) or until a process dies (1)."""
    haproxy()  # before anything starts: without it, one line saying how to get it
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda number, _: stopping.append(number))
    signal.signal(signal.SIGINT, lambda number, _: stopping.append(number))
    hall = start(replicas, port, address, runs_dir)
    joining = join.where_to_join(address, port, fix=join.HALL_FIX)
    students = joining.url or f"this machine's address, port {port}"
    print(f"lecture hall: {replicas} app processes for students and one for the presenter behind "
          f"http://{address}:{port}; students open {students}; the presenter opens /presenter there once; "
          f"Ctrl-C stops everything", flush=True)
    if joining.problem:
        print(f"warning: {joining.problem}", file=sys.stderr, flush=True)
    died = None
    while not stopping and died is None:
        time.sleep(0.5)
        died = next((p for p in hall.processes() if p.poll() is not None), None)
    if died is not None:
        print(f"error: process {died.pid} exited with code {died.returncode}; stopping the hall "
              f"(logs in {hall.folder})", file=sys.stderr, flush=True)
    stop(hall)
    print("lecture hall stopped", flush=True)
    return 1 if died is not None else 0
