"""A room that does not play fair, over Streamlit's own protocol. Thirty sessions guess the presenter key from one
address, each guessing again as soon as it is answered; the presenter's browser, at its own address, types the right key
meanwhile and is the presenter at once: the guessers never stand in its line (gan_core.runs.roles.KeyGuard). Loopback
gives each client its own address: 127.0.0.3 for the guessers, 127.0.0.2 for the presenter. And a student's tabs (one
browser: one cookie) hold one quota between them, not one each."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
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


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    log = tmp_path_factory.mktemp("room_log") / "server.log"
    runs = tmp_path_factory.mktemp("room_runs")
    with local_server(runs, log, {KEY_ENV: KEY, "GAN_MAX_RUNS": "1"}) as (url, _):
        yield url, log, runs


def _run(coroutine: object) -> object:
    with ThreadPoolExecutor(1) as pool:  # a fresh event loop (Playwright's sync API may hold this thread's)
        return pool.submit(asyncio.run, coroutine).result()


@pytest.mark.timeout(240)
def test_the_presenters_key_is_accepted_at_once_while_thirty_sessions_guess(room) -> None:
    url, server_log, _ = room
    took, answers, errors = _run(_lesson(url))
    log = server_log.read_text()
    assert not errors, errors
    assert KEY not in log and "Traceback" not in log
    wrong = sum("not the presenter key" in a for a in answers)
    busy = sum("Too many key guesses" in a for a in answers)
    # every answer drawn is one of the two; an empty one is a page read while the stop interrupted its redraw (seen
    # once in 179 guesses in CI): it says nothing either way
    said = [a for a in answers if a]
    assert wrong + busy == len(said) and wrong >= 1 and busy >= 1, (wrong, busy, said[:5])
    assert len(said) >= len(answers) - GUESSERS, "many guesses were answered with nothing"
    print(f"accepted in {took:.2f} s; guesses answered: {wrong} wrong, {busy} turned away unread")
    assert took <= ACCEPTED_WITHIN_S, f"the presenter's key took {took:.2f} s while {GUESSERS} sessions guessed"


async def _press_in_tabs(url: str) -> list[list[str]]:
    """Three tabs press Home's Train the default GAN: two of one browser (the same cookie), then one of another."""
    said = []
    for cookie in ("_streamlit_xsrf=2|aa|one-browser|1", "_streamlit_xsrf=2|aa|one-browser|1",
                   "_streamlit_xsrf=2|bb|another-browser|1"):
        tab = Session(url, "", fetch_media=False, cookie=cookie)
        await tab.open()
        try:
            await tab.wait_idle(60)
            await tab.click("Train the default GAN")
            said.append(_alerts(tab))
        finally:
            await tab.close()
    return said


def _alerts(session: Session) -> list[str]:
    return [e.alert.body.replace("\\", "") for e in session._elements.values() if e.WhichOneof("type") == "alert"]


@pytest.mark.timeout(120)
def test_a_students_tabs_hold_one_quota_between_them(room) -> None:
    url, _, _ = room
    first, second, other = _run(_press_in_tabs(url))
    refused = [[a for a in alerts if "cannot start" in a] for alerts in (first, second, other)]
    assert not refused[0] and not refused[2], refused  # each browser's first run starts (or queues: an info box)
    assert any("this browser already has 1 active run" in a for a in refused[1]), second  # its other tab is refused


TABS = 12
BROWSER = "_streamlit_xsrf=2|cc|twelve-tabs|1"
LESSON_STARTS_WITHIN_S = 15.0  # a student's running run checkpoints and gives its worker back (RELEASE: at once)


async def _twelve_tabs_then_the_lesson(url: str) -> tuple[list[list[str]], list[str], float]:
    """One browser's twelve tabs open together and each presses Home's Train the default GAN; then the presenter, on
    Batch norm, presses Train with and without batch norm."""
    tabs = [Session(url, "", fetch_media=False, cookie=BROWSER) for _ in range(TABS)]
    try:
        await asyncio.gather(*(tab.open() for tab in tabs))
        await asyncio.gather(*(tab.wait_idle(90) for tab in tabs))
        said = []
        for tab in tabs:
            await tab.click("Train the default GAN")
            said.append(_alerts(tab))
    finally:
        await asyncio.gather(*(tab.close() for tab in tabs))
    presenter = Session(url, "", fetch_media=False, local_host="127.0.0.2")
    await presenter.open()
    try:
        await presenter.wait_idle(60)
        await presenter.type_text("Presenter key", KEY)
        await presenter.goto("batch_norm")
        pressed = time.monotonic()
        await presenter.click("Train with and without batch norm")
        errors = list(presenter.errors)
    finally:
        await presenter.close()
    return said, errors, pressed


def _statuses(runs: Path) -> dict[str, dict]:
    found = {}
    for status in runs.glob("*/status.json"):
        try:
            found[status.parent.name] = json.loads(status.read_text())
        except (OSError, ValueError):
            continue  # being rewritten this instant: read again
    return found


@pytest.mark.timeout(180)
def test_a_student_with_twelve_tabs_cannot_delay_the_presenters_comparison(room) -> None:
    url, server_log, runs = room
    before = set(_statuses(runs))
    said, errors, pressed = _run(_twelve_tabs_then_the_lesson(url))
    assert not errors, errors
    refused = [[a for a in alerts if "cannot start" in a] for alerts in said]
    assert sum(not r for r in refused) == 1, said  # the browser's one run, from whichever tab pressed first
    assert all("this browser already has 1 active run" in r[0] for r in refused if r), refused

    while True:
        now = _statuses(runs)
        lesson = {i: s for i, s in now.items() if i.startswith("batchnorm-")}
        if any(s["status"] in ("running", "finished") for s in lesson.values()):
            break
        assert time.monotonic() - pressed < LESSON_STARTS_WITHIN_S, {i: s["status"] for i, s in now.items()}
        time.sleep(0.2)
    took = time.monotonic() - pressed
    assert len(lesson) == 2 and all(s.get("owner") is None for s in lesson.values())
    students = {i: s for i, s in now.items() if i not in lesson}
    assert len(students) == len(before) + 1  # the twelve tabs' one run, and the earlier test's two
    # the students' runs wait for the lesson: none dropped, none failed
    assert all(s["status"] in ("queued", "running", "paused") for s in students.values()), students
    assert "Traceback" not in server_log.read_text()
    print(f"the comparison's first run trained {took:.2f} s after the press, ahead of {len(students)} students' runs")
