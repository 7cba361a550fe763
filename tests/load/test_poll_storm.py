"""A script stuffs the room's poll over Streamlit's own protocol: thirty sessions from one address, each a browser of
its own (a cookie each), answer the presenter's question at once; a real student at another address answers meanwhile.
The script gets its burst (GAN_POLL_BURST, 10 here for a short test; 200 by default) and then one a second, each
refusal saying why; the student's answer counts; the presenter sees the answers beside the browsers on the page, so the
stuffing shows. The rule itself, at 500 sessions: tests/test_predictions.py."""

from __future__ import annotations

import asyncio
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("websockets.asyncio.client", reason="websockets ≥ 13 (a Streamlit dependency) drives the sessions")

from benchmarks.browser_session import Session  # after the skip: it imports websockets
from gan_core.lessons.predictions import BURST_ENV
from gan_core.runs.roles import KEY_ENV
from support.server import local_server

KEY = "the teacher's key 9"
BURST = 10
SCRIPTED = 30
PAGE = "batch_norm"
QUESTION = "Your prediction"
BUSY = "too many new answers from your network"


def _alerts(session: Session) -> list[str]:
    return [e.alert.body for e in session._elements.values() if e.WhichOneof("type") == "alert"]


def _markdown(session: Session) -> str:
    return " ".join(e.markdown.body for e in session._elements.values() if e.WhichOneof("type") == "markdown")


async def _answer(session: Session, choice: str) -> bool:
    """Answer, and read what the page said at once (the message goes with the panel's next poll): True if refused."""
    await session.choose(QUESTION, choice, timeout=150)  # thirty pages redrawn at once, on a busy 2-core machine
    return any(BUSY in a for a in _alerts(session))


async def _storm(url: str) -> dict[str, object]:
    presenter = Session(url, "", fetch_media=False, local_host="127.0.0.2")
    await presenter.open()
    await presenter.wait_idle(90)
    await presenter.type_text("Presenter key", KEY)
    await presenter.goto(PAGE)
    await presenter.click("Ask the room to predict first")
    scripted = [Session(url, PAGE, fetch_media=False, cookie=f"_streamlit_xsrf=2|s{i}|script-{i}|1",
                        local_host="127.0.0.3", polls=False) for i in range(SCRIPTED)]
    student = Session(url, PAGE, fetch_media=False, cookie="_streamlit_xsrf=2|rs|a-real-student|1",
                      local_host="127.0.0.4")
    try:
        for batch in range(0, SCRIPTED, 10):  # ten at a time: the pages draw on a 2-core machine
            await asyncio.gather(*(s.open() for s in scripted[batch:batch + 10]))
            await asyncio.gather(*(s.wait_idle(90) for s in scripted[batch:batch + 10]))
        await student.open()
        await student.wait_idle(90)
        started = time.monotonic()
        refused = await asyncio.gather(*(_answer(s, "batch norm") for s in scripted))
        took = time.monotonic() - started
        student_refused = await _answer(student, "no batch norm")
        await asyncio.sleep(1.0)  # every open panel has polled since (a question panel polls every 3 s)
        await presenter.goto(PAGE)  # the presenter's page drawn again: the tally as it stands
        return {"refused": refused, "took": took, "student": student_refused, "presenter": _markdown(presenter),
                "errors": presenter.errors + student.errors + [e for s in scripted for e in s.errors]}
    finally:
        await asyncio.gather(*(s.close() for s in [*scripted, student, presenter]))


@pytest.mark.timeout(300)
def test_a_scripted_storm_cannot_lock_out_a_real_answer_and_shows_to_the_presenter(tmp_path: Path) -> None:
    env = {KEY_ENV: KEY, BURST_ENV: str(BURST), "GAN_MAX_RUNS": "1"}
    with local_server(tmp_path / "runs", tmp_path / "server.log", env) as (url, _):
        with ThreadPoolExecutor(1) as pool:  # a fresh event loop (Playwright's sync API may hold this thread's)
            seen = pool.submit(asyncio.run, _storm(url)).result()
    assert not seen["errors"], seen["errors"]
    assert not seen["student"]  # another address: counted at once
    room = re.search(r"The room so far\*\*: (\d+) answers?: (.*?) \(from (\d+) browsers? on this page now\)",
                     seen["presenter"])
    assert room, seen["presenter"][-600:]
    total, tally, here = int(room[1]), room[2], int(room[3])
    counted = int(re.search(r"(?<!no )batch norm (\d+)", tally)[1])
    assert total == counted + 1 and "no batch norm 1" in tally, room[0]  # the student's answer is in
    # the script's burst, then at most one more per second its answers took to send; every other one told why
    assert BURST <= counted <= BURST + int(seen["took"]) + 1, (counted, seen["took"])
    assert sum(seen["refused"]) == SCRIPTED - counted, (sum(seen["refused"]), counted)
    assert here == SCRIPTED + 1, room[0]  # every browser on the page: thirty-one, against the answers counted
    assert "Traceback" not in (tmp_path / "server.log").read_text()
