"""What one page run costs the server, per page: the CPU a follower's switch spends in the app process.

    python -m benchmarks.page_cost [--sessions 10] [--rounds 4] [--pages training,batch_norm]

Trains the presenter's two small lesson runs (benchmarks.classroom_follow.train_runs), starts `streamlit run
dashboard.py` with a presenter key (so the sessions are students, as followers are), and for each page: opens
`--sessions` student sessions on it with the lesson's run in the address (`?run=lesson-a`; the first draw fills the
caches), then has every session run the page again, `--rounds` times, all at once, as a room of followers does at a
switch. Prints, per page, the server's CPU milliseconds per page run (its CPU time over the rounds, divided by the
page runs), the wall seconds a round took, and how many elements the page sends. The fragment timers a browser runs
are off (their cost is the poll's, not the switch's).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.browser_session import Session
from benchmarks.classroom import cpu_seconds
from benchmarks.classroom_follow import KEY, train_runs
from support.server import local_server

RUN = "lesson-a"


@dataclass
class PageCost:
    page: str
    cpu_ms: float  # server CPU per page run
    round_s: float  # median wall seconds for every session to run the page once
    elements: int  # what one run of the page sends

    def row(self) -> str:
        return f"| {self.page or 'home'} | {self.cpu_ms:.0f} | {self.round_s:.2f} | {self.elements} |"


async def measure(url: str, pid: int, page: str, sessions: int, rounds: int) -> PageCost:
    students = [Session(url, page, query=f"run={RUN}", fetch_media=False, polls=False,
                        cookie=f"_streamlit_xsrf=2|c{i}|cost-{i}|1") for i in range(sessions)]
    try:
        for batch in range(0, sessions, 10):
            await asyncio.gather(*(s.open() for s in students[batch:batch + 10]))
            await asyncio.gather(*(s.wait_idle(180) for s in students[batch:batch + 10]))
        walls = []
        before = cpu_seconds(pid)
        for _ in range(rounds):
            started = time.monotonic()
            await asyncio.gather(*(s.goto(page, f"run={RUN}") for s in students))
            walls.append(time.monotonic() - started)
        used = cpu_seconds(pid) - before
        errors = [e for s in students for e in s.errors]
        if errors:
            raise RuntimeError(f"{page}: {errors[:3]}")
        return PageCost(page, 1000 * used / (sessions * rounds), statistics.median(walls), len(students[0]._elements))
    finally:
        await asyncio.gather(*(s.close() for s in students))


async def pages_of(url: str) -> list[str]:
    probe = Session(url, "", fetch_media=False, polls=False)
    await probe.open()
    await probe.wait_idle(120)
    pages = sorted(probe._pages.values())
    await probe.close()
    return pages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--pages", default="", help="comma-separated url paths (default: every page; '' is Home)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="page_cost_") as tmp:
        runs = Path(tmp) / "runs"
        train_runs(runs)
        with local_server(runs, Path(tmp) / "server.log", {"GAN_PRESENTER_KEY": KEY}) as (url, pid):
            pages = args.pages.split(",") if args.pages else asyncio.run(pages_of(url))
            print(f"{args.sessions} student sessions, {args.rounds} rounds, run {RUN}", file=sys.stderr)
            print("| page | server CPU ms per page run | a round (s) | elements |\n|---|---|---|---|")
            for page in pages:
                cost = asyncio.run(measure(url, pid, page, args.sessions, args.rounds))
                print(cost.row(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
