"""Who may do what with the dashboard's runs: the rules RunManager enforces, and the presenter key's check.

With no presenter key (GAN_PRESENTER_KEY unset) every caller is the presenter: a teacher alone on a laptop has every
control, as before roles existed. With a key, a browser session is a student until it enters the key. A student
watches every run, may start up to GAN_SESSION_RUNS active runs of its own (0: watch only) while at most GAN_MAX_QUEUED
runs wait, and controls only the runs it started. The presenter controls and deletes every run.

Whose a run is: a run the presenter started (or anyone, with no key) is the presenter's, owner None, for every rule: the
disk budget, listing, control. A student's run is kept under an opaque token of its session (`owner_token`), never the
session id.

The manager checks these rules on every call: a page may hide a button, but a browser can send any
widget event it likes, so what a page draws decides nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

KEY_ENV = "GAN_PRESENTER_KEY"
SESSION_RUNS_ENV = "GAN_SESSION_RUNS"
MAX_QUEUED_ENV = "GAN_MAX_QUEUED"
DEFAULT_SESSION_RUNS = 1  # one run per student keeps a class of 30 from queueing 30 runs behind the lesson's
DEFAULT_MAX_QUEUED = 8  # a run waits ~10-60 s on 2 cores: 8 waiting is already minutes


def owner_token(session: str) -> str:
    """The opaque name a student session's runs are kept under on disk: a session id is the key to its runs, so it
    never reaches the disk itself (nor does anything it could be read back from)."""
    return hashlib.sha256(f"run-owner:{session}".encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Actor:
    """Who asks: a browser session's id (None for the server itself: the CLI, tests, scripts) and whether it may do
    everything."""

    session: str | None = None
    presenter: bool = True

    @property
    def owner(self) -> str | None:
        """Whose the runs this actor starts are: None, the presenter's, for the presenter (with no key set, every
        session is the presenter), whichever session pressed the button; a student session's own token otherwise."""
        return None if self.presenter or self.session is None else owner_token(self.session)


LOCAL = Actor()  # the default of every manager call: all-powerful, as the CLI and a keyless server have always been


class RunRefused(PermissionError):
    """A control the caller does not hold, or a start over a limit; the message names the rule (and the limit)."""


def presenter_key() -> str | None:
    """The key that makes a session the presenter, or None when roles are off (unset or blank)."""
    key = os.environ.get(KEY_ENV, "")
    return key if key.strip() else None


def _limit(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number ≥ 0, not {raw[:20]!r}") from None
    if value < 0:
        raise ValueError(f"{name} must be a whole number ≥ 0, not {value}")
    return value


def session_runs_limit() -> int:
    """Active runs (queued, running or paused) a student session may hold at once; 0: watch only."""
    return _limit(SESSION_RUNS_ENV, DEFAULT_SESSION_RUNS)


def max_queued_limit() -> int:
    """Runs that may wait for a worker before a student's start is refused."""
    return _limit(MAX_QUEUED_ENV, DEFAULT_MAX_QUEUED)


def may_control(actor: Actor, owner: str | None) -> bool:
    """The presenter controls every run; anyone else only the runs its own session started (`owner`: as stored)."""
    return actor.presenter or (actor.owner is not None and actor.owner == owner)


def quota_refusal(actor: Actor, active: int, wanted: int, limit: int) -> str | None:
    """Why a student session that holds `active` active runs may not start `wanted` more (None: it may)."""
    if actor.presenter or active + wanted <= limit:
        return None
    if limit == 0:
        return f"this server lets students watch only ({SESSION_RUNS_ENV}=0): ask the presenter to start a run"
    runs = "run" if limit == 1 else "runs"
    if wanted > limit:
        return f"this needs {wanted} runs at once; a session may have {limit} active {runs} ({SESSION_RUNS_ENV})"
    return (f"this session already has {active} active {'run' if active == 1 else 'runs'} (the limit is {limit}, "
            f"{SESSION_RUNS_ENV}): stop it or let it finish first")


def queue_refusal(actor: Actor, waiting: int, adding: int, limit: int) -> str | None:
    """Why a student's start may not add `adding` runs to the `waiting` ones that wait for a worker (None: it may)."""
    if actor.presenter or adding <= 0 or waiting + adding <= limit:
        return None
    return (f"the queue is full: {waiting} {'run' if waiting == 1 else 'runs'} waiting (the limit is {limit}, "
            f"{MAX_QUEUED_ENV}): try again when one has started")


class KeyGuard:
    """Checks guesses of the presenter key: in constant time, and slowly after wrong ones.

    A session's guess waits `delay_s` × its earlier wrong guesses (at most `cap_s`) before it is compared. As a new
    browser session starts at zero, a wrong guess also holds the guard for `delay_s`, so the whole server answers at
    most one wrong guess per `delay_s` however many sessions guess. Nothing here logs or keeps a guess.
    """

    def __init__(self, key: str, *, delay_s: float = 1.0, cap_s: float = 10.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._digest = hashlib.sha256(key.encode()).digest()  # equal lengths: compare_digest leaks nothing of the key's
        self.delay_s, self.cap_s = delay_s, cap_s
        self._sleep = sleep
        self._lock = threading.Lock()

    def check(self, guess: str, earlier_failures: int = 0) -> bool:
        self._sleep(min(self.cap_s, self.delay_s * max(0, earlier_failures)))
        with self._lock:
            right = hmac.compare_digest(hashlib.sha256(guess.encode(errors="replace")).digest(), self._digest)
            if not right:
                self._sleep(self.delay_s)
        return right
