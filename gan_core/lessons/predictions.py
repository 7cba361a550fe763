"""Predict, then observe: the question the presenter asks the room before a lesson's comparison runs, and the answers.

One question per comparison at a time (its Prediction, gan_core.lessons.comparisons). Only the presenter opens or closes
it, a rule this store checks on every call whatever buttons a page draws; every browser may answer while it is open, one
answer per browser, not per tab (a second replaces the first). New answers are rate-limited per client address (a burst
a lecture hall behind one NAT fits in, then one a second), and the presenter sees the answers beside the browsers on the
page, so a tally stuffed by a script shows. Answers are anonymous: the store keeps a hash of the browser's id, never the
id, and shows only counts. Everything is kept in `<runs_dir>/predictions.json`, rewritten atomically after each
change, so a restart keeps the question and its answers; a damaged file is no question, never an error for a page.
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

from gan_core.config import ConfigError
from gan_core.lessons.comparisons import COMPARISONS, Comparison
from gan_core.runs.folder import DAMAGED, atomic_write_bytes, read_json_section
from gan_core.runs.roles import Actor, RunRefused, env_whole_number

log = logging.getLogger(__name__)

PREDICTIONS_FILE = "predictions.json"
MAX_ANSWERS = 20_000  # per question: bounds the file; a lecture hall is a few hundred, and NEW_PER_ADDRESS_S slows a script
NEW_BURST = 200  # new answers one address may give at once: a lecture hall behind one NAT answers together
BURST_ENV = "GAN_POLL_BURST"  # a larger hall behind one NAT raises it
NEW_PER_ADDRESS_S = 1.0  # then one more new answer per this many seconds from that address (changed answers are free)
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

    def tally(self) -> dict[str, int]:
        """Answers per choice, in the choices' order (0 for a choice nobody picked)."""
        counts = dict.fromkeys(self.choices, 0)
        for choice in self.answers.values():
            counts[choice] += 1
        return counts

    def answer_of(self, session: str | None) -> str | None:
        return None if session is None else self.answers.get(voter(session))

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "question": self.question, "choices": list(self.choices), "open": self.is_open,
                "opened": self.opened, "answers": dict(self.answers)}


def _poll(name: str, raw: Any) -> Poll:
    """A poll read back from the file, checked: every answer must be one of its choices."""
    choices = tuple(str(c) for c in raw["choices"])
    answers = {str(k): str(v) for k, v in dict(raw["answers"]).items()}
    if not choices or any(v not in choices for v in answers.values()):
        raise ValueError("an answer is not one of the choices")
    return Poll(name, int(raw["id"]), str(raw["question"]), choices, bool(raw["open"]), float(raw["opened"]), answers)


class Predictions:
    """Every comparison's question and answers on this server; thread-safe (every browser session calls it)."""

    def __init__(self, folder: str | Path, comparisons: Mapping[str, Comparison] | None = None, *,
                 clock: Callable[[], float] = time.monotonic, burst: int | None = None) -> None:
        """`burst`: new answers one address may give at once (else GAN_POLL_BURST, else NEW_BURST)."""
        self.path = Path(folder) / PREDICTIONS_FILE
        self.comparisons = COMPARISONS if comparisons is None else comparisons
        self._lock = threading.Lock()
        self._polls: dict[str, Poll] = {}
        self._clock = clock
        burst = env_whole_number(BURST_ENV, NEW_BURST) if burst is None else burst
        if burst < 1:
            raise ValueError(f"{BURST_ENV} must be at least 1 (0 would turn away every new answer), not {burst}")
        self._new_answers = RateLimit(burst, NEW_PER_ADDRESS_S, clock)
        self._present: dict[str, dict[str, float]] = {}  # comparison -> voter -> when its panel last polled
        self._load()

    def _load(self) -> None:
        polls = read_json_section(self.path, "polls", "no question is open until the presenter opens one")
        if polls is None:
            return
        for name, raw in polls.items():
            try:
                self._polls[str(name)] = _poll(str(name), raw)
            except DAMAGED as err:
                log.warning("%s: the %r question cannot be read (%s): skipped", self.path, name, err)

    def _save(self) -> None:
        """Rewrite the file (holding _lock); a failed write keeps the answers for this server's life, and says so."""
        data = {"polls": {name: poll.to_json() for name, poll in self._polls.items()}}
        try:
            atomic_write_bytes(self.path, json.dumps(data, indent=1).encode())
        except OSError as err:
            log.warning("cannot save the predictions: %s", err)

    def _comparison(self, name: str) -> Comparison:
        if name not in self.comparisons:
            raise ConfigError("comparison", f"unknown comparison {name!r}; choose one of: {', '.join(self.comparisons)}")
        return self.comparisons[name]

    # -- reading -------------------------------------------------------------------------------------------------------
    def poll(self, name: str) -> Poll | None:
        """The comparison's latest question (open or closed), None if none was ever opened."""
        self._comparison(name)
        with self._lock:
            return self._polls.get(name)

    # -- the presenter -------------------------------------------------------------------------------------------------
    def open(self, name: str, *, actor: Actor) -> Poll:
        """Ask the comparison's question anew: a fresh tally (the previous question's answers are dropped)."""
        comparison = self._comparison(name)
        if not actor.presenter:
            raise RunRefused("only the presenter can open a question to the room")
        with self._lock:
            before = self._polls.get(name)
            poll = Poll(name, (before.id + 1) if before else 1, comparison.prediction.question, comparison.choices(),
                        True, time.time(), {})
            self._polls[name] = poll
            self._save()
            return poll

    def close(self, name: str, *, actor: Actor) -> Poll | None:
        """Stop taking answers (the tally stays, to set beside the outcome). None when no question was opened."""
        self._comparison(name)
        if not actor.presenter:
            raise RunRefused("only the presenter can close a question to the room")
        with self._lock:
            poll = self._polls.get(name)
            if poll is None or not poll.is_open:
                return poll
            poll = Poll(poll.name, poll.id, poll.question, poll.choices, False, poll.opened, poll.answers)
            self._polls[name] = poll
            self._save()
            return poll

    # -- everyone ------------------------------------------------------------------------------------------------------
    def answer(self, name: str, poll_id: int, choice: str, *, actor: Actor, address: str | None = None) -> Poll:
        """This browser's answer to question `poll_id` (actor.session: the browser's id, one answer per browser),
        replacing its earlier one. Refused (ConfigError, one line) when the question is closed or was replaced, the
        choice is not one of its choices, or `address` (the client's) gave too many new answers just now."""
        self._comparison(name)
        if actor.session is None:
            raise ConfigError("answer", "only a browser session can answer (it needs a session id)")
        key = voter(actor.session)
        with self._lock:
            poll = self._polls.get(name)
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
                if not self._new_answers.take(address or "local"):
                    raise ConfigError("answer", "too many new answers from your network just now: try again in a few "
                                                "seconds")
            poll = Poll(poll.name, poll.id, poll.question, poll.choices, True, poll.opened, {**poll.answers, key: choice})
            self._polls[name] = poll
            self._save()
            return poll

    # -- who is on the page --------------------------------------------------------------------------------------------
    def seen(self, name: str, session: str) -> None:
        """A browser (its id) shows the comparison's question panel now (its panel polls every few seconds)."""
        now = self._clock()
        with self._lock:
            present = self._present.setdefault(name, {})
            present[voter(session)] = now
            for gone in [v for v, at in present.items() if now - at > PRESENT_S]:
                del present[gone]

    def present(self, name: str, *, besides: str | None = None) -> int:
        """How many browsers showed the comparison's question panel in the last PRESENT_S, the browser `besides` (the
        presenter's, which polled as a student's until it typed the key) left out: set beside the answers, so a tally
        stuffed by scripts shows."""
        now, left_out = self._clock(), None if besides is None else voter(besides)
        with self._lock:
            return sum(1 for v, at in self._present.get(name, {}).items() if now - at <= PRESENT_S and v != left_out)


class RateLimit:
    """At most `burst` at once per key, then one more every `per_s` seconds (a token bucket per key); thread-unsafe:
    Predictions calls it holding its lock."""

    def __init__(self, burst: int, per_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.burst, self.per_s, self._clock = burst, per_s, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when counted)

    def take(self, key: str) -> bool:
        now = self._clock()
        tokens, then = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) / self.per_s)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return False
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > 10_000:  # full buckets hold nothing worth keeping
            full = [k for k, (t, at) in self._buckets.items() if t + (now - at) / self.per_s >= self.burst]
            for k in full:
                del self._buckets[k]
        return True
