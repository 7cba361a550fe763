"""A classroom of browsers: N sessions watching one live run, each one emulated with Streamlit's own websocket protocol.

    python -m benchmarks.classroom [--sessions 30] [--minutes 5] [--page training|home]
                                   [--url http://host:8501 [--pid PID]]

Without --url it starts `streamlit run dashboard.py` on a free port with an empty runs folder. A teacher session
starts a long digits run through the Training page's form; the run trains alone (no session open) for --alone
seconds; then --sessions students open the page on that run (`?run=<id>`) for --minutes; then it trains alone again,
and the two alone phases are averaged (other work on the machine drifts); then the teacher stops the run. Prints a
table and exits 1 if a target is missed: no error in any session (an exception shown, a lost connection, a broken
image); every chart of every session got new data at least every 10 s; the run's speed watched is at least 0.8x its
speed alone; the server's memory (RSS) grew by at most 150 MB.

Each student is a benchmarks.browser_session.Session: a browser tab emulated over Streamlit's websocket.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.browser_session import Session
from support.server import local_server

PAGE = "training"  # url path of the page every student watches
RUN_STEPS = 10_000_000  # the engine's limit: the run outlives any test
MAX_GAP_S = 10.0  # every chart of every session gets new data at least this often
MIN_SPEED_RATIO = 0.8
MAX_GROWTH_MB = 150.0



# -- the server ----------------------------------------------------------------------------------------------------------
def rss_mb(pid: int | None) -> float:
    """Resident memory of a process in MB (Linux /proc), NaN where unknown."""
    if pid is None:
        return float("nan")
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def cpu_seconds(pid: int | None) -> float:
    """CPU time (user + system) a process has used so far, in seconds (Linux /proc), NaN where unknown."""
    if pid is None:
        return float("nan")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    except (OSError, ValueError, IndexError):
        return float("nan")


# -- the lesson ----------------------------------------------------------------------------------------------------------
async def start_run(url: str, steps: int = RUN_STEPS) -> str:
    """The teacher: Training page, New run, Steps = `steps`, Start. Returns the run's id."""
    teacher = Session(url, PAGE, fetch_media=False)
    await teacher.open()
    try:
        await teacher.wait_idle()
        await teacher.click("New run")
        await teacher.click("Start", Steps=steps)
        deadline = time.monotonic() + 30
        while not any(h.startswith("Run ") for h in teacher.headings):
            if time.monotonic() > deadline or teacher.errors:
                raise RuntimeError(f"the run did not start: {teacher.errors or teacher.headings}")
            await asyncio.sleep(0.2)
        if teacher.errors:
            raise RuntimeError(f"the teacher's session failed: {teacher.errors}")
        return next(h for h in reversed(teacher.headings) if h.startswith("Run ")).removeprefix("Run ").strip()
    finally:
        await teacher.close()


async def stop_run(url: str, run_id: str) -> None:
    """The teacher presses Stop (the run would otherwise train to its 10 million steps on a shared server)."""
    teacher = Session(url, PAGE, query=urllib.parse.urlencode({"run": run_id}), fetch_media=False)
    await teacher.open()
    try:
        await teacher.wait_idle()
        await teacher.click("Stop")
    finally:
        await teacher.close()


async def read_step(url: str, run_id: str, timeout: float = 60.0) -> tuple[float, int]:
    """(when, step) of the run, read as a browser reads it: open its page, read the progress bar, close."""
    probe = Session(url, PAGE, query=urllib.parse.urlencode({"run": run_id}), fetch_media=False)
    await probe.open()
    try:
        deadline = time.monotonic() + timeout
        while not probe.steps:
            if time.monotonic() > deadline or probe.errors:
                raise RuntimeError(f"no progress bar for run {run_id}: {probe.errors or probe.headings}")
            await asyncio.sleep(0.1)
        return probe.steps[-1]
    finally:
        await probe.close()


async def wait_training(url: str, run_id: str, min_step: int = 200, timeout: float = 120.0) -> None:
    """Until the run is past `min_step`: its worker process has imported torch and trains at full speed."""
    deadline = time.monotonic() + timeout
    while (await read_step(url, run_id))[1] < min_step:
        if time.monotonic() > deadline:
            raise RuntimeError(f"run {run_id} is not training")
        await asyncio.sleep(1.0)


async def speed_alone(url: str, run_id: str, seconds: float) -> float:
    """Steps per second with nobody watching (two short reads, one at each end)."""
    t0, s0 = await read_step(url, run_id)
    await asyncio.sleep(seconds)
    t1, s1 = await read_step(url, run_id)
    return (s1 - s0) / (t1 - t0)


@dataclass
class Watched:
    sessions: list[Session]
    start: float  # when the last session had drawn its page (monotonic)
    end: float
    received_at_start: list[int]
    fragment_runs_at_start: list[int]

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def speed(self) -> float:
        """The run's steps per second over the watched window, from every session's progress bars together."""
        readings = sorted(r for s in self.sessions for r in s.steps if self.start <= r[0] <= self.end)
        if len(readings) < 2 or readings[-1][0] - readings[0][0] < 1:
            return float("nan")
        return (readings[-1][1] - readings[0][1]) / (readings[-1][0] - readings[0][0])

    def updates_per_minute(self) -> list[float]:
        return [sum(self.start <= t <= self.end for t in s.updates) * 60 / self.seconds for s in self.sessions]

    def max_gaps(self) -> list[tuple[float, str]]:
        """Per session, the longest time any of its charts went without new data (window edges count), and which."""
        gaps = []
        for s in self.sessions:
            worst = (0.0, "") if s.chart_updates else (self.seconds, "no chart at all")
            for name, times in s.chart_updates.items():
                inside = [self.start, *(t for t in times if self.start < t < self.end), self.end]
                worst = max(worst, (max(b - a for a, b in zip(inside, inside[1:], strict=False)), name))
            gaps.append(worst)
        return gaps

    def kb_per_second(self) -> list[float]:
        return [(s.received - r0) / 1e3 / self.seconds for s, r0 in zip(self.sessions, self.received_at_start, strict=True)]

    def fragment_runs_per_second(self) -> list[float]:
        return [(s.fragment_runs - f0) / self.seconds
                for s, f0 in zip(self.sessions, self.fragment_runs_at_start, strict=True)]


async def watch(url: str, run_id: str, n: int, seconds: float, ramp: float = 5.0, page: str = PAGE,
                on_ready: Callable[[], object] | None = None, tick: Callable[[], object] | None = None) -> Watched:
    """`n` students open the run's page within `ramp` seconds and keep it open for `seconds` once all have drawn it.

    `on_ready()` is called when all have drawn it, `tick()` every 10 s after that.
    """
    query = urllib.parse.urlencode({"run": run_id})
    sessions = [Session(url, page, query=query) for _ in range(n)]

    async def arrive(i: int, s: Session) -> None:
        await asyncio.sleep(ramp * i / max(1, n))
        await s.open()
        await s.wait_idle(timeout=120)

    await asyncio.gather(*(arrive(i, s) for i, s in enumerate(sessions)))
    if on_ready is not None:
        on_ready()
    start = time.monotonic()
    watched = Watched(sessions, start, start + seconds, [s.received for s in sessions],
                      [s.fragment_runs for s in sessions])
    while (left := watched.end - time.monotonic()) > 0:
        await asyncio.sleep(min(10.0, left))
        if tick is not None:
            tick()
    watched.end = time.monotonic()
    return watched


async def close_all(sessions: list[Session]) -> None:
    await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)


# -- the command ---------------------------------------------------------------------------------------------------------
@dataclass
class Report:
    sessions: int
    seconds: float
    errors: list[str]
    updates_per_minute: list[float]
    max_gap: float
    max_gap_chart: str
    alone: float
    watched: float
    rss_start: float
    rss_end: float
    rss_peak: float
    server_cpu: float  # share of one core the server used while watched
    client_cpu: float  # and this process, the sessions' side
    kb_per_session_s: float
    fragment_runs_per_s: float

    @property
    def ratio(self) -> float:
        return self.watched / self.alone if self.alone > 0 else float("nan")

    @property
    def growth(self) -> float:
        return self.rss_end - self.rss_start

    def failures(self) -> list[str]:
        out = []
        if self.errors:
            out.append(f"{len(self.errors)} errors in sessions, e.g. {self.errors[0]}")
        if not self.max_gap <= MAX_GAP_S:
            out.append(f"a chart ({self.max_gap_chart}) went {self.max_gap:.1f} s without new data "
                       f"(target ≤ {MAX_GAP_S:.0f} s)")
        if not self.ratio >= MIN_SPEED_RATIO:
            out.append(f"the run's speed watched is {self.ratio:.2f}x its speed alone (target ≥ {MIN_SPEED_RATIO})")
        if self.growth > MAX_GROWTH_MB:  # NaN (unknown pid) passes: it is reported as unknown
            out.append(f"the server grew by {self.growth:.0f} MB (target ≤ {MAX_GROWTH_MB:.0f} MB)")
        return out

    def table(self) -> str:
        upm = self.updates_per_minute
        rows = [
            ("sessions", f"{self.sessions}"),
            ("watched for", f"{self.seconds:.0f} s"),
            ("errors (exceptions, lost connections, broken images)", f"{len(self.errors)}"),
            ("chart updates per session per minute, min / median",
             f"{min(upm):.0f} / {statistics.median(upm):.0f}" if upm else "—"),
            ("longest any chart went without new data", f"{self.max_gap:.1f} s"),
            ("run steps/s alone / watched / ratio", f"{self.alone:.0f} / {self.watched:.0f} / {self.ratio:.2f}"),
            ("server RSS start / end / growth (peak)",
             f"{self.rss_start:.0f} / {self.rss_end:.0f} / {self.growth:+.0f} MB ({self.rss_peak:.0f})"),
            ("CPU while watched, server / these clients (of one core)",
             f"{100 * self.server_cpu:.0f} % / {100 * self.client_cpu:.0f} %"),
            ("received per session per second (1 refresh/s)", f"{self.kb_per_session_s:.1f} kB"),
            ("fragment reruns per session per second", f"{self.fragment_runs_per_s:.2f}"),
        ]
        left, right = (max(len(row[i]) for row in rows) for i in (0, 1))
        return "\n".join(f"| {name:<{left}} | {value:>{right}} |" for name, value in rows)


async def lesson(url: str, pid: int | None, sessions: int, seconds: float, alone_s: float, ramp: float,
                 page: str = PAGE, log: Callable[[str], object] = print) -> Report:
    run_id = await start_run(url)
    log(f"run {run_id} started; warming up")
    try:
        return await _measure(url, pid, run_id, sessions, seconds, alone_s, ramp, page, log)
    finally:
        await stop_run(url, run_id)


async def _measure(url: str, pid: int | None, run_id: str, sessions: int, seconds: float, alone_s: float, ramp: float,
                   page: str, log: Callable[[str], object]) -> Report:
    await wait_training(url, run_id)
    before = await speed_alone(url, run_id, alone_s)
    log(f"alone: {before:.0f} steps/s; {sessions} sessions arrive over {ramp:.0f} s")
    rss: dict[str, float] = {"start": rss_mb(pid)}
    cpu: dict[str, float] = {}
    samples = [rss["start"]]
    watched = await watch(url, run_id, sessions, seconds, ramp, page,
                          on_ready=lambda: cpu.update(start=cpu_seconds(pid), client_start=time.process_time()),
                          tick=lambda: samples.append(rss_mb(pid)))
    rss["end"], cpu["end"], cpu["client_end"] = rss_mb(pid), cpu_seconds(pid), time.process_time()
    await close_all(watched.sessions)
    log(f"watched: {watched.speed():.0f} steps/s; sessions closed")
    await asyncio.sleep(3)  # reruns already queued finish
    after = await speed_alone(url, run_id, alone_s)
    log(f"alone again: {after:.0f} steps/s")
    errors = [f"session {i}: {e}" for i, s in enumerate(watched.sessions) for e in s.errors]
    gaps, kbs, runs = watched.max_gaps(), watched.kb_per_second(), watched.fragment_runs_per_second()
    return Report(sessions=sessions, seconds=watched.seconds, errors=errors,
                  updates_per_minute=watched.updates_per_minute(), max_gap=max(gaps)[0] if gaps else float("nan"),
                  max_gap_chart=max(gaps)[1] if gaps else "",
                  alone=(before + after) / 2, watched=watched.speed(), rss_start=rss["start"], rss_end=rss["end"],
                  rss_peak=max([*samples, rss["end"]]),
                  server_cpu=(cpu["end"] - cpu["start"]) / watched.seconds,
                  client_cpu=(cpu["client_end"] - cpu["client_start"]) / watched.seconds,
                  kb_per_session_s=statistics.median(kbs) if kbs else float("nan"),
                  fragment_runs_per_s=statistics.median(runs) if runs else float("nan"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--minutes", type=float, default=5.0, help="how long the sessions watch")
    parser.add_argument("--alone", type=float, default=30.0, help="seconds of each phase with no session open")
    parser.add_argument("--ramp", type=float, default=5.0, help="seconds over which the sessions arrive")
    parser.add_argument("--page", choices=("training", "home"), default="training", help="the page the sessions watch")
    parser.add_argument("--url", help="an app already running (default: start one with an empty runs folder)")
    parser.add_argument("--pid", type=int, help="with --url: the server's process id, to measure its memory")
    args = parser.parse_args(argv)

    def run(url: str, pid: int | None) -> Report:
        return asyncio.run(lesson(url, pid, args.sessions, args.minutes * 60, args.alone, args.ramp,
                                  page="" if args.page == "home" else args.page,
                                  log=lambda line: print(line, file=sys.stderr, flush=True)))

    if args.url:
        report = run(args.url.rstrip("/"), args.pid)
    else:
        with tempfile.TemporaryDirectory(prefix="classroom_") as tmp:
            with local_server(Path(tmp) / "runs", Path(tmp) / "server.log") as (url, pid):
                report = run(url, pid)
    print(report.table())
    for line in report.errors[:10]:
        print("  ", line)
    failures = report.failures()
    for line in failures:
        print("MISSED:", line)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
