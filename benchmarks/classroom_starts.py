"""A classroom that presses Start: N student sessions each try to start 5 runs while the presenter's run trains.

    python -m benchmarks.classroom_starts [--sessions 30] [--tries 5]

Starts `streamlit run dashboard.py` with a presenter key (so every session is a student, with the default quota of one
active run and the default queue bound) and one worker, on a runs folder holding the presenter's long digits run
(queued, as a restart leaves it: the server queues it again). Each student opens the Training page over Streamlit's own
websocket protocol and presses New run, then Start, `--tries` times. Prints a table and exits 1 if a target is missed:
the queue never holds more runs than its bound; every start that was refused said why (a "cannot start: …" message);
the server's memory (RSS) grew by at most 150 MB; the presenter's run kept at least 0.8x its speed alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.browser_session import Session
from benchmarks.classroom import PAGE, RUN_STEPS, read_step, rss_mb, speed_alone, wait_training
from gan_core.config import get_preset
from gan_core.runs.folder import RunStore
from gan_core.runs.roles import DEFAULT_MAX_QUEUED, KEY_ENV
from support.server import local_server

LESSON = "presenters-lesson"
MIN_SPEED_RATIO = 0.8
MAX_GROWTH_MB = 150.0
STUDENT_STEPS = 2000


@dataclass
class Tally:
    started: int = 0
    refused: dict[str, int] = field(default_factory=dict)  # the reason's first words -> how many
    unexplained: list[str] = field(default_factory=list)  # a click that neither started a run nor said why
    errors: list[str] = field(default_factory=list)


def alerts(session: Session) -> list[str]:
    """The texts of the error and warning boxes on the session's page now."""
    # the app escapes Markdown in messages (ui.text.md_escape): read them as a person sees them
    return [re.sub(r"\\(.)", r"\1", e.alert.body) for e in session._elements.values() if e.WhichOneof("type") == "alert"]


def queued_runs(runs: Path) -> int:
    """Runs waiting for a worker, as their status.json files say (the manager writes one whenever a run is queued)."""
    count = 0
    for status in runs.glob("*/status.json"):
        try:
            count += json.loads(status.read_text()).get("status") == "queued"
        except (OSError, ValueError):
            continue
    return count


async def student(url: str, tries: int, tally: Tally) -> None:
    session = Session(url, PAGE, fetch_media=False)
    await session.open()
    try:
        await session.wait_idle()
        for _ in range(tries):
            runs_before = sum(h.startswith("Run ") for h in session.headings)
            try:
                try:
                    await session.click("New run")
                except LookupError:
                    pass  # the form is already open
                await session.click("Start", Steps=STUDENT_STEPS)
            except (TimeoutError, LookupError) as err:  # counted, so the table says how often it happened
                tally.errors.append(f"{type(err).__name__}: {err}"[:200])
                continue
            said = [a for a in alerts(session) if "cannot start" in a]
            if said:
                reason = said[-1].split("cannot start: ", 1)[1]
                key = " ".join(reason.split()[:5])
                tally.refused[key] = tally.refused.get(key, 0) + 1
            elif sum(h.startswith("Run ") for h in session.headings) > runs_before:
                tally.started += 1
            else:
                tally.unexplained.append(f"headings {session.headings[-3:]}, alerts {alerts(session)}")
        tally.errors += session.errors
    finally:
        await session.close()


async def lesson(url: str, pid: int, runs: Path, sessions: int, tries: int, alone_s: float) -> dict[str, object]:
    opener = Session(url, "", fetch_media=False)  # the first page builds the run manager, which queues the lesson
    await opener.open()
    await opener.wait_idle(90)
    await opener.close()
    await wait_training(url, LESSON)
    before = await speed_alone(url, LESSON, alone_s)
    rss_start = rss_mb(pid)
    tally, peak_queue, peak_rss = Tally(), 0, rss_start
    stop = asyncio.Event()

    async def sample() -> None:
        nonlocal peak_queue, peak_rss
        while not stop.is_set():
            peak_queue = max(peak_queue, queued_runs(runs))
            peak_rss = max(peak_rss, rss_mb(pid))
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample())
    t0, s0 = await _step(url)
    await asyncio.gather(*(student(url, tries, tally) for _ in range(sessions)))
    t1, s1 = await _step(url)
    stop.set()
    await sampler
    await asyncio.sleep(3)
    rss_end = rss_mb(pid)
    after = await speed_alone(url, LESSON, alone_s)
    return {"sessions": sessions, "tries": tries, "tally": tally, "peak_queue": peak_queue, "rss_start": rss_start,
            "rss_end": rss_end, "rss_peak": peak_rss, "alone": (before + after) / 2, "during": (s1 - s0) / (t1 - t0),
            "seconds": t1 - t0}


async def _step(url: str) -> tuple[float, int]:
    return await read_step(url, LESSON)


def report(r: dict[str, object]) -> tuple[str, bool]:
    tally: Tally = r["tally"]
    attempts = r["sessions"] * r["tries"]
    refused = sum(tally.refused.values())
    growth = r["rss_end"] - r["rss_start"]
    ratio = r["during"] / r["alone"]
    checks = [
        ("queue within its bound", f"peak {r['peak_queue']} waiting", f"≤ {DEFAULT_MAX_QUEUED}",
         r["peak_queue"] <= DEFAULT_MAX_QUEUED),
        ("every refusal says why", f"{refused} refused with a reason, {len(tally.unexplained)} without",
         "0 without", not tally.unexplained and started_plus_refused(tally) == attempts),
        ("errors in sessions", str(len(tally.errors)), "0", not tally.errors),
        ("server memory growth", f"{growth:+.0f} MB (peak {r['rss_peak'] - r['rss_start']:+.0f} MB)",
         f"≤ {MAX_GROWTH_MB:.0f} MB", growth <= MAX_GROWTH_MB),
        ("presenter's run speed", f"{r['during']:.0f} against {r['alone']:.0f} steps/s alone ({ratio:.2f}x)",
         f"≥ {MIN_SPEED_RATIO}x", ratio >= MIN_SPEED_RATIO),
    ]
    lines = [f"{r['sessions']} sessions x {r['tries']} starts = {attempts} presses in {r['seconds']:.0f} s: "
             f"{tally.started} started, {refused} refused",
             *(f"  {n:>4} × {reason} …" for reason, n in sorted(tally.refused.items(), key=lambda kv: -kv[1])),
             "| check | measured | target | |", "|---|---|---|---|",
             *(f"| {name} | {value} | {target} | {'met' if ok else 'MISSED'} |" for name, value, target, ok in checks)]
    return "\n".join(lines), all(ok for *_, ok in checks)


def started_plus_refused(tally: Tally) -> int:
    return tally.started + sum(tally.refused.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--tries", type=int, default=5)
    parser.add_argument("--alone", type=float, default=20.0, help="seconds of each phase with no student")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="classroom_starts_") as tmp:
        runs = Path(tmp) / "runs"
        store = RunStore(runs / LESSON).create(get_preset("digits").config.replace(steps=RUN_STEPS))
        store.write_status({"status": "queued", "created": time.time(), "owner": None})  # the presenter's
        env = {KEY_ENV: "benchmark-presenter-key", "GAN_MAX_RUNS": "1"}
        with local_server(runs, Path(tmp) / "server.log", env) as (url, pid):
            result = asyncio.run(lesson(url, pid, runs, args.sessions, args.tries, args.alone))
    text, ok = report(result)
    print(text)
    for error in result["tally"].errors[:5]:
        print("error:", error)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
