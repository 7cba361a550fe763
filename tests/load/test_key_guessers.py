"""Thirty sessions guess the presenter key over Streamlit's own protocol, from one address, each guessing again as soon
as it is answered; the presenter's browser, at its own address, types the right key meanwhile and is the presenter at
once: the guessers never stand in its line (gan_core.runs.roles.KeyGuard). Loopback gives each client its own address:
127.0.0.3 for the guessers, 127.0.0.2 for the presenter."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("websockets.asyncio.client", reason="websockets ≥ 13 (a Streamlit dependency) drives the sessions")

from benchmarks.browser_session import Session  # after the skip: it imports websockets
from gan_core.runs.roles import KEY_ENV
from support.server import local_server

KEY = "the teacher's key 7"
GUESSERS = 30
ACCEPTED_WITHIN_S = 2.0  # the promise: the presenter is let in within 2 s while 30 sessions guess
PRESENTER = "you control every run"


def _texts(session: Session) -> str:
    return " ".join(e.markdown.body for e in session._elements.values() if e.WhichOneof("type") == "markdown")


async def _guess(url: str, n: int, stop: asyncio.Event, answers: list[str]) -> None:
    session = Session(url, "", fetch_media=False, local_host="127.0.0.3")
    await session.open()
    try:
        await session.wait_idle(120)
        i = 0
        while not stop.is_set():
            await session.type_text("Presenter key", f"guess {n}-{i}")
            answers.append(" ".join(e.alert.body for e in session._elements.values() if e.WhichOneof("type") == "alert"))
            i += 1
    finally:
        await session.close()


async def _lesson(url: str) -> tuple[float, list[str], list[str]]:
    stop, answers = asyncio.Event(), []
    guessers = [asyncio.create_task(_guess(url, n, stop, answers)) for n in range(GUESSERS)]
    try:
        while len(answers) < 2 * GUESSERS:  # every guesser guessing, some answered already
            await asyncio.sleep(0.2)
        presenter = Session(url, "", fetch_media=False, local_host="127.0.0.2")
        await presenter.open()
        await presenter.wait_idle(60)
        started = time.monotonic()
        await presenter.type_text("Presenter key", KEY)
        while PRESENTER not in _texts(presenter):
            assert time.monotonic() - started < 60, _texts(presenter)[-500:]
            await asyncio.sleep(0.05)
        took = time.monotonic() - started
        errors = list(presenter.errors)
        await presenter.close()
    finally:
        stop.set()
        await asyncio.gather(*guessers, return_exceptions=True)
    return took, answers, errors


@pytest.mark.timeout(240)
def test_the_presenters_key_is_accepted_at_once_while_thirty_sessions_guess(tmp_path: Path) -> None:
    with local_server(tmp_path / "runs", tmp_path / "server.log", {KEY_ENV: KEY}) as (url, _):
        with ThreadPoolExecutor(1) as pool:  # a fresh event loop (Playwright's sync API may hold this thread's)
            took, answers, errors = pool.submit(asyncio.run, _lesson(url)).result()
        log = (tmp_path / "server.log").read_text()
    assert not errors, errors
    assert KEY not in log and "Traceback" not in log
    wrong = sum("not the presenter key" in a for a in answers)
    busy = sum("Too many key guesses" in a for a in answers)
    assert wrong + busy == len(answers) and wrong >= 1 and busy >= 1, (wrong, busy, answers[:5])
    print(f"accepted in {took:.2f} s; guesses answered: {wrong} wrong, {busy} turned away unread")
    assert took <= ACCEPTED_WITHIN_S, f"the presenter's key took {took:.2f} s while {GUESSERS} sessions guessed"
