"""Predict, then observe: the question the presenter asks the room before a lesson's comparison runs, and the answers.

One question per comparison at a time (its Prediction, gan_core.lessons.comparisons). Only the presenter opens or closes
it, a rule this store checks on every call whatever buttons a page draws; every browser may answer while it is open, one
answer per browser, not per tab (a second replaces the first). New answers are rate-limited per client address (a burst
a lecture hall behind one NAT fits in, then one a second), and the presenter sees the answers beside the browsers on the
page, so a tally stuffed by a script shows. Answers are anonymous: the store keeps a hash of the browser's id, never the
id, and shows only counts. Questions, answers (a row each) and who is on the page live in the room's classroom store,
shared by every app process on the runs folder, so a restart keeps them; a `predictions.json` from before the store is
read into it once (a damaged one is no question, never an error for a page). The presenter clears every question for
the next class (clear); a question asked after that counts its id on from the cleared one, so a browser still showing
an old question cannot answer the new one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gan_core.classroom.recent import Recent
from gan_core.classroom.store import Cursor, Store, open_store, state_url
from gan_core.config import ConfigError
from gan_core.lessons.comparisons import COMPARISONS, Comparison
from gan_core.runs.folder import DAMAGED, read_json_section
from gan_core.runs.roles import Actor, RunRefused, env_whole_number

log = logging.getLogger(__name__)

PREDICTIONS_FILE = "predictions.json"
MAX_ANSWERS = 20_000  # per question: bounds the store; a lecture hall is a few hundred, and NEW_PER_ADDRESS_S slows a script
NEW_BURST = 200  # new answers one address may give at once: a lecture hall behind one NAT answers together
BURST_ENV = "GAN_POLL_BURST"  # a larger hall behind one NAT raises it
NEW_PER_ADDRESS_S = 1.0  # then one more new answer per this many seconds from that address (changed answers are free)
FRESH_S = 0.25  # a question read this recently is shown again (another process's answer shows this much later)
SEEN_WRITE_S = 1.0  # a process writes the browsers it saw on a question's page at most this often
PRESENT_S = 10.0  # a browser whose question panel polled (every few seconds) within this long is on the page


def voter(session: str) -> str:
    """The anonymous key of a session's answer (a session id is the key to its runs: it never reaches the disk)."""
    return hashlib.sha256(f"prediction:{session}".encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Poll:
    """One question to the room, as it stands (an immutable copy)."""

    name: str  # the comparison's
    id: int  # rises each time a question is opened: an answer sent to an older one is refused
    question: str
    choices: tuple[str, ...]
    is_open: bool
    opened: float  # seconds since the epoch
    answers: Mapping[str, str] = field(default_factory=dict)  # voter(session) -> choice
    closed: float | None = None  # when it stopped taking answers (seconds since the epoch); None while open

    def tally(self) -> dict[str, int]:
        """Answers per choice, in the choices' order (0 for a choice nobody picked)."""
        counts = dict.fromkeys(self.choices, 0)
        for choice in self.answers.values():
            counts[choice] += 1
        return counts

    def answer_of(self, session: str | None) -> str | None:
        return None if session is None else self.answers.get(voter(session))


def _poll(name: str, raw: Any) -> Poll:
    """A poll read back from the file, checked: every answer must be one of its choices."""
    choices = tuple(str(c) for c in raw["choices"])
    answers = {str(k): str(v) for k, v in dict(raw["answers"]).items()}
    if not choices or any(v not in choices for v in answers.values()):
        raise ValueError("an answer is not one of the choices")
    return Poll(name, int(raw["id"]), str(raw["question"]), choices, bool(raw["open"]), float(raw["opened"]), answers)


SCHEMA = (
    "CREATE TABLE IF NOT EXISTS polls (name TEXT PRIMARY KEY, id INTEGER NOT NULL, question TEXT NOT NULL, "
    "choices TEXT NOT NULL, is_open INTEGER NOT NULL, opened DOUBLE PRECISION NOT NULL)",
    # one row per browser and question, replaced on change: answers through different app processes are never lost
    "CREATE TABLE IF NOT EXISTS votes (name TEXT NOT NULL, poll_id INTEGER NOT NULL, voter TEXT NOT NULL, "
    "choice TEXT NOT NULL, PRIMARY KEY (name, poll_id, voter))",
    "CREATE TABLE IF NOT EXISTS presence (name TEXT NOT NULL, voter TEXT NOT NULL, seen DOUBLE PRECISION NOT NULL, "
    "PRIMARY KEY (name, voter))",
    # tables of their own, not columns of polls: a room's store from before them gains them with IF NOT EXISTS
    "CREATE TABLE IF NOT EXISTS poll_closed (name TEXT PRIMARY KEY, poll_id INTEGER NOT NULL, "
    "closed DOUBLE PRECISION NOT NULL)",  # when the comparison's question `poll_id` was closed
    "CREATE TABLE IF NOT EXISTS poll_cleared (name TEXT PRIMARY KEY, last_id INTEGER NOT NULL)",  # the id cleared last
    # new answers from one client address: a token bucket the whole room shares, whichever app process an answer reached
    "CREATE TABLE IF NOT EXISTS answer_pace (address TEXT PRIMARY KEY, tokens DOUBLE PRECISION NOT NULL, "
    "counted DOUBLE PRECISION NOT NULL)",
)


class Predictions:
    """Every comparison's question and answers in the room: rows of the classroom store (gan_core.classroom.store), so
    every app process on the runs folder asks the same question and counts every answer. Thread-safe."""

    def __init__(self, folder: str | Path, comparisons: Mapping[str, Comparison] | None = None, *,
                 clock: Callable[[], float] = time.time, burst: int | None = None, store: Store | None = None) -> None:
        """`burst`: new answers one address may give at once (else GAN_POLL_BURST, else NEW_BURST). `store`: the
        room's (else the runs folder's: GAN_STATE_URL or its SQLite file). `clock`: wall-clock seconds, as every
        process of the room reads the same rows."""
        self.path = Path(folder) / PREDICTIONS_FILE  # read once, into the store, on the room's first start
        self.comparisons = COMPARISONS if comparisons is None else comparisons
        self.store = open_store(state_url(folder)) if store is None else store
        self._clock = clock
        self._swept = float("-inf")  # when `seen` last dropped long-gone browsers
        self._seen_lock = threading.Lock()
        self._seen_waiting: dict[tuple[str, str], float] = {}  # (question, voter) -> when seen, not yet written
        self._seen_written = float("-inf")
        burst = env_whole_number(BURST_ENV, NEW_BURST) if burst is None else burst
        if burst < 1:
            raise ValueError(f"{BURST_ENV} must be at least 1 (0 would turn away every new answer), not {burst}")
        self._burst = burst
        # every browser's question panel reads the question on each run: one read per process per FRESH_S serves them
        self._recent: Recent[object] = Recent(FRESH_S)
        self.store.ensure("predictions", SCHEMA)
        self.store.import_once(PREDICTIONS_FILE, self._read_file)

    def _read_file(self, cursor: Cursor) -> None:
        """predictions.json, from before the room had a store: read once (the first process to start), then kept."""
        polls = read_json_section(self.path, "polls", "no question is open until the presenter opens one")
        for name, raw in (polls or {}).items():
            try:
                poll = _poll(str(name), raw)
            except DAMAGED as err:
                log.warning("%s: the %r question cannot be read (%s): skipped", self.path, name, err)
                continue
            _write_poll(cursor, poll)
            for key, choice in poll.answers.items():
                cursor.execute("INSERT INTO votes (name, poll_id, voter, choice) VALUES (?, ?, ?, ?)",
                               (poll.name, poll.id, key, choice))

    def _comparison(self, name: str) -> Comparison:
        if name not in self.comparisons:
            raise ConfigError("comparison", f"unknown comparison {name!r}; choose one of: {', '.join(self.comparisons)}")
        return self.comparisons[name]

    # -- reading -------------------------------------------------------------------------------------------------------
    def poll(self, name: str) -> Poll | None:
        """The comparison's latest question (open or closed), None if none was ever opened."""
        self._comparison(name)
        return self._recent.get(name, lambda: self._read_polls((name,))[name])

    def polls(self) -> dict[str, Poll]:
        """Every comparison's latest question (those ever opened since the last clear), as of one moment."""
        polls = self._recent.get(None, lambda: self._read_polls(tuple(self.comparisons)))
        return {name: poll for name, poll in polls.items() if poll is not None}

    def _read_polls(self, names: tuple[str, ...]) -> dict[str, Poll | None]:
        with self.store.transaction(write=False) as cursor:  # the questions and their answers as of one moment
            return {name: _read_poll(cursor, name) for name in names}

    # -- the presenter -------------------------------------------------------------------------------------------------
    def open(self, name: str, *, actor: Actor) -> Poll:
        """Ask the comparison's question anew: a fresh tally (the previous question's answers are dropped)."""
        comparison = self._comparison(name)
        if not actor.presenter:
            raise RunRefused("only the presenter can open a question to the room")
        with self._recent.writing(self.store.transaction()) as cursor:
            before = _read_poll(cursor, name, answers=False)
            cursor.execute("SELECT last_id FROM poll_cleared WHERE name = ?", (name,))
            cleared = cursor.fetchall()
            last = max(before.id if before else 0, int(cleared[0][0]) if cleared else 0)
            poll = Poll(name, last + 1, comparison.prediction.question, comparison.choices(), True, time.time(), {})
            cursor.execute("DELETE FROM votes WHERE name = ?", (name,))
            cursor.execute("DELETE FROM poll_closed WHERE name = ?", (name,))
            # the addresses whose buckets have filled up again hold nothing worth keeping
            cursor.execute("DELETE FROM answer_pace WHERE tokens + (? - counted) / ? >= ?",
                           (self._clock(), NEW_PER_ADDRESS_S, float(self._burst)))
            _write_poll(cursor, poll)
            return poll

    def close(self, name: str, *, actor: Actor) -> Poll | None:
        """Stop taking answers (the tally stays, to set beside the outcome). None when no question was opened."""
        self._comparison(name)
        if not actor.presenter:
            raise RunRefused("only the presenter can close a question to the room")
        with self._recent.writing(self.store.transaction()) as cursor:
            before = _read_poll(cursor, name, answers=False)
            if before is not None and before.is_open:  # closed twice: the first close is when answers stopped
                cursor.execute("UPDATE polls SET is_open = 0 WHERE name = ?", (name,))
                cursor.execute("INSERT INTO poll_closed (name, poll_id, closed) VALUES (?, ?, ?) ON CONFLICT (name) "
                               "DO UPDATE SET poll_id = excluded.poll_id, closed = excluded.closed",
                               (name, before.id, time.time()))
            return _read_poll(cursor, name)

    def clear(self, *, actor: Actor) -> int:
        """Forget every question and its answers, for the next class (download them first: this cannot be undone).
        Returns how many questions were cleared. Only the presenter may (with no presenter key, everyone is)."""
        if not actor.presenter:
            raise RunRefused("only the presenter can clear the questions")
        with self._recent.writing(self.store.transaction()) as cursor:
            cursor.execute("SELECT name, id FROM polls")
            polls = cursor.fetchall()
            for name, poll_id in polls:
                cursor.execute("INSERT INTO poll_cleared (name, last_id) VALUES (?, ?) ON CONFLICT (name) DO UPDATE "
                               "SET last_id = excluded.last_id", (name, int(poll_id)))
            for sql in ("DELETE FROM votes", "DELETE FROM presence", "DELETE FROM poll_closed", "DELETE FROM polls"):
                cursor.execute(sql)
            return len(polls)

    # -- everyone ------------------------------------------------------------------------------------------------------
    def answer(self, name: str, poll_id: int, choice: str, *, actor: Actor, address: str | None = None) -> Poll:
        """This browser's answer to question `poll_id` (actor.session: the browser's id, one answer per browser),
        replacing its earlier one. Refused (ConfigError, one line) when the question is closed or was replaced, the
        choice is not one of its choices, or `address` (the client's) gave too many new answers just now."""
        self._comparison(name)
        if actor.session is None:
            raise ConfigError("answer", "only a browser session can answer (it needs a session id)")
        key = voter(actor.session)
        with self._recent.writing(self.store.transaction()) as cursor:
            poll = _read_poll(cursor, name)
            if poll is None or poll.id != poll_id:
                raise ConfigError("answer", "that question is no longer asked: answer the one shown now")
            if not poll.is_open:
                raise ConfigError("answer", "the presenter has closed this question: answers are no longer taken")
            if choice not in poll.choices:
                raise ConfigError("answer", f"{str(choice)[:40]!r} is not a choice; choose one of: "
                                            f"{', '.join(poll.choices)}")
            if key not in poll.answers:
                if len(poll.answers) >= MAX_ANSWERS:
                    raise ConfigError("answer", f"this question has its {MAX_ANSWERS:,} answers already")
                if not _take_token(cursor, address or "local", self._clock(), self._burst):
                    raise ConfigError("answer", "too many new answers from your network just now: try again in a few "
                                                "seconds")
            cursor.execute("INSERT INTO votes (name, poll_id, voter, choice) VALUES (?, ?, ?, ?) ON CONFLICT "
                           "(name, poll_id, voter) DO UPDATE SET choice = excluded.choice", (name, poll.id, key, choice))
            return Poll(poll.name, poll.id, poll.question, poll.choices, True, poll.opened, {**poll.answers, key: choice})

    # -- who is on the page --------------------------------------------------------------------------------------------
    def seen(self, name: str, session: str) -> None:
        """A browser (its id) shows the comparison's question panel now (its panel polls every few seconds). Written to
        the store with the others this process saw, at most every SEEN_WRITE_S: one write, not one per page run."""
        now = self._clock()
        with self._seen_lock:
            self._seen_waiting[(name, voter(session))] = now
            if 0 <= now - self._seen_written < SEEN_WRITE_S:
                return
            self._seen_written = now
        self._write_seen(now)

    def _write_seen(self, now: float) -> None:
        with self._seen_lock:
            waiting, self._seen_waiting = self._seen_waiting, {}
        if waiting:
            with self.store.transaction() as cursor:
                for (name, key), when in waiting.items():
                    cursor.execute("INSERT INTO presence (name, voter, seen) VALUES (?, ?, ?) ON CONFLICT (name, voter) "
                                   "DO UPDATE SET seen = excluded.seen", (name, key, when))
        if now - self._swept > 10 * PRESENT_S:  # now and then, not on every poll: the browsers gone a while ago
            self._swept = now
            self.store.run("DELETE FROM presence WHERE seen < ?", (now - 10 * PRESENT_S,))

    def present(self, name: str, *, besides: str | None = None) -> int:
        """How many browsers showed the comparison's question panel in the last PRESENT_S, the browser `besides` (the
        presenter's, which polled as a student's until it typed the key) left out: set beside the answers, so a tally
        stuffed by scripts shows."""
        self._write_seen(self._clock())  # this process's own browsers, counted now
        left_out = "" if besides is None else voter(besides)
        rows = self.store.rows("SELECT COUNT(*) FROM presence WHERE name = ? AND seen >= ? AND voter <> ?",
                               (name, self._clock() - PRESENT_S, left_out))
        return int(rows[0][0])


def _read_poll(cursor: Cursor, name: str, *, answers: bool = True) -> Poll | None:
    # one query for the question and when it closed: every browser's panel reads it every few seconds
    cursor.execute("SELECT p.id, p.question, p.choices, p.is_open, p.opened, c.closed FROM polls p LEFT JOIN poll_closed "
                   "c ON c.name = p.name AND c.poll_id = p.id WHERE p.name = ?", (name,))
    row = cursor.fetchall()
    if not row:
        return None
    poll_id, question, choices, is_open, opened, closed = row[0]
    votes = {}
    if answers:
        cursor.execute("SELECT voter, choice FROM votes WHERE name = ? AND poll_id = ?", (name, poll_id))
        votes = dict(cursor.fetchall())
    return Poll(name, int(poll_id), question, tuple(json.loads(choices)), bool(is_open), float(opened), votes,
                None if closed is None or is_open else float(closed))


def _write_poll(cursor: Cursor, poll: Poll) -> None:
    cursor.execute("INSERT INTO polls (name, id, question, choices, is_open, opened) VALUES (?, ?, ?, ?, ?, ?) "
                   "ON CONFLICT (name) DO UPDATE SET id = excluded.id, question = excluded.question, "
                   "choices = excluded.choices, is_open = excluded.is_open, opened = excluded.opened",
                   (poll.name, poll.id, poll.question, json.dumps(list(poll.choices)), int(poll.is_open), poll.opened))


def _take_token(cursor: Cursor, address: str, now: float, burst: int) -> bool:
    """A new answer from `address`: at most `burst` at once, then one more every NEW_PER_ADDRESS_S (a token bucket, a
    row of the room's store, read and written inside the answer's transaction: a script spread over the hall's app
    processes gets no more than against one)."""
    cursor.execute("SELECT tokens, counted FROM answer_pace WHERE address = ?", (address,))
    row = cursor.fetchall()
    tokens = float(burst)
    if row:
        tokens = min(tokens, float(row[0][0]) + max(0.0, now - float(row[0][1])) / NEW_PER_ADDRESS_S)
    allowed = tokens >= 1.0
    cursor.execute("INSERT INTO answer_pace (address, tokens, counted) VALUES (?, ?, ?) ON CONFLICT (address) DO UPDATE "
                   "SET tokens = excluded.tokens, counted = excluded.counted",
                   (address, tokens - 1.0 if allowed else tokens, now))
    return allowed
