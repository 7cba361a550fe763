"""A vote storm through several app processes: N students answer the presenter's question at once, spread over the room's
processes, and the presenter's tally must say N.

    python -m benchmarks.vote_storm [--sessions 120] [--replicas 2]

Starts `--replicas` `streamlit run dashboard.py` processes on one fresh runs folder (one room: its votes are rows of the
classroom store), opens the presenter's session on the first (the key typed in the sidebar), opens the Batch norm page,
asks the room to predict, then opens the students' sessions (benchmarks.browser_session.Session, a browser each: its own
cookie), the i-th on process i mod N, and has them all answer at once. Prints how long the answers took and the
presenter's tally; exits 1 unless the tally counts every answer and no session saw an error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks.browser_session import Session
from support.server import local_server

KEY = "vote-storm-key"
PAGE = "batch_norm"
QUESTION = "Your prediction"
CHOICES = ("batch norm", "no batch norm")
TALLY = re.compile(r"The room so far\*\*: (\d+) answers?: (.*?) \(from (\d+) browsers? on this page now\)")


def _markdown(session: Session) -> str:
    return " ".join(e.markdown.body for e in session._elements.values() if e.WhichOneof("type") == "markdown")


async def storm(urls: Sequence[str], n: int, key: str = KEY, log: Callable[[str], object] = print) -> dict:
    """Open the question on urls[0] as the presenter, have `n` students spread over `urls` answer at once; returns the
    seconds it took, the tally the presenter then reads (answers, browsers on the page) and every session's errors."""
    presenter = Session(urls[0], "", fetch_media=False, local_host="127.0.0.2")
    await presenter.open()
    await presenter.wait_idle(90)
    await presenter.type_text("Presenter key", key)
    await presenter.goto(PAGE)
    await presenter.click("Ask the room to predict first")
    students = [Session(urls[i % len(urls)], PAGE, fetch_media=False, cookie=f"_streamlit_xsrf=2|v{i}|voter-{i}|1",
                        local_host="127.0.0.3", polls=False) for i in range(n)]
    try:
        for batch in range(0, n, 10):  # ten at a time: every page draws on the same few cores
            await asyncio.gather(*(s.open() for s in students[batch:batch + 10]))
            await asyncio.gather(*(s.wait_idle(120) for s in students[batch:batch + 10]))
        log(f"{n} students on the page, over {len(urls)} processes; all answer now")
        started = time.monotonic()
        await asyncio.gather(*(s.choose(QUESTION, CHOICES[i % 2], timeout=300) for i, s in enumerate(students)))
        took = time.monotonic() - started
        await asyncio.sleep(1.0)
        await presenter.goto(PAGE)  # the presenter's page drawn again: the tally as it stands
        found = TALLY.search(_markdown(presenter))
        return {"took": took, "answers": int(found[1]) if found else None, "tally": found[2] if found else "",
                "browsers": int(found[3]) if found else None,
                "errors": presenter.errors + [e for s in students for e in s.errors]}
    finally:
        await asyncio.gather(*(s.close() for s in [*students, presenter]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=120)
    parser.add_argument("--replicas", type=int, default=2, help="app processes on one runs folder (one room)")
    args = parser.parse_args(argv)
    if args.replicas < 1 or args.sessions < 1:
        parser.error("--replicas and --sessions must be at least 1")
    with tempfile.TemporaryDirectory(prefix="vote_storm_") as tmp, contextlib.ExitStack() as servers:
        runs = Path(tmp) / "runs"
        started = [servers.enter_context(local_server(runs, Path(tmp) / f"server{i}.log",
                                                      {"GAN_PRESENTER_KEY": KEY, "GAN_MAX_RUNS": "1"}))
                   for i in range(args.replicas)]
        seen = asyncio.run(storm([url for url, _ in started], args.sessions,
                                 log=lambda line: print(line, file=sys.stderr, flush=True)))
    print(f"{args.sessions} answers through {args.replicas} processes sent in {seen['took']:.2f} s; the presenter "
          f"reads {seen['answers']} answers ({seen['tally']}) from {seen['browsers']} browsers on the page")
    for line in seen["errors"][:10]:
        print("  ", line)
    return 0 if seen["answers"] == args.sessions and not seen["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
