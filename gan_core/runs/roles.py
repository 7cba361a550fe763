"""Who may do what with the dashboard's runs: the rules RunManager enforces, and the presenter key's check.

With no presenter key (GAN_PRESENTER_KEY unset) every caller is the presenter: a teacher alone on a laptop has every
control, as before roles existed. With a key, a browser is a student until it enters the key. A student watches every
run, may start up to GAN_SESSION_RUNS active runs of its own (0: watch only) holding at most GAN_SESSION_STEPS steps
still to train, while at most GAN_MAX_QUEUED runs wait, and controls only the runs it started. The presenter controls
and deletes every run. (An Actor's `session` is what runs belong to: the UI gives a browser's id, shared by its tabs.)

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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

from gan_core.runs.status import Status

KEY_ENV = "GAN_PRESENTER_KEY"
SESSION_RUNS_ENV = "GAN_SESSION_RUNS"
SESSION_STEPS_ENV = "GAN_SESSION_STEPS"
MAX_QUEUED_ENV = "GAN_MAX_QUEUED"
DEFAULT_SESSION_RUNS = 1  # one run per student keeps a class of 30 from queueing 30 runs behind the lesson's
DEFAULT_SESSION_STEPS = 20_000  # two default ring runs' steps: a one-cell sweep of 100,000 steps is not "one run"
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
    token: str | None = None  # the owner token itself, for an actor asking through another process (no session id)

    @property
    def owner(self) -> str | None:
        """Whose the runs this actor starts are: None, the presenter's, for the presenter (with no key set, every
        session is the presenter), whichever session pressed the button; a student session's own token otherwise."""
        if self.presenter:
            return None
        return self.token if self.token is not None else None if self.session is None else owner_token(self.session)


LOCAL = Actor()  # the default of every manager call: all-powerful, as the CLI and a keyless server have always been


class RunRefused(PermissionError):
    """A control the caller does not hold, or a start over a limit; the message names the rule (and the limit)."""


def presenter_key() -> str | None:
    """The key that makes a session the presenter, or None when roles are off (unset or blank)."""
    key = os.environ.get(KEY_ENV, "")
    return key if key.strip() else None


def env_whole_number(name: str, default: int) -> int:
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
    return env_whole_number(SESSION_RUNS_ENV, DEFAULT_SESSION_RUNS)


def max_queued_limit() -> int:
    """Runs that may wait for a worker before a student's start is refused."""
    return env_whole_number(MAX_QUEUED_ENV, DEFAULT_MAX_QUEUED)


@dataclass(frozen=True)
class Limits:
    """What a student may start: `session_runs` active runs holding at most `session_steps` steps still to train, while
    at most `max_queued` runs wait for a worker. (A student is a browser: every tab of it counts as one.)"""

    session_runs: int = DEFAULT_SESSION_RUNS
    session_steps: int = DEFAULT_SESSION_STEPS
    max_queued: int = DEFAULT_MAX_QUEUED

    @classmethod
    def from_env(cls, *, session_runs: int | None = None, session_steps: int | None = None,
                 max_queued: int | None = None) -> Limits:
        """Each limit as given, else from its environment variable, else its default."""
        return cls(session_runs_limit() if session_runs is None else session_runs,
                   env_whole_number(SESSION_STEPS_ENV, DEFAULT_SESSION_STEPS) if session_steps is None else session_steps,
                   max_queued_limit() if max_queued is None else max_queued)


@dataclass(frozen=True)
class Held:
    """What the start rules read of a run on the server."""

    status: Status
    owner: str | None
    steps_left: int


def start_refusal(actor: Actor, runs: Iterable[Held], steps: Sequence[int], idle: int, limits: Limits) -> str | None:
    """Why `actor` may not make runs of `steps` steps each active now, beside `runs` with `idle` workers free (None: it
    may). The presenter always may; a student within its runs, its steps and the queue's bound."""
    if actor.presenter:
        return None
    mine = [r for r in runs if r.status.active and r.owner == actor.owner]
    waiting = sum(1 for r in runs if r.status is Status.QUEUED)
    before, after = max(0, waiting - idle), max(0, waiting + len(steps) - idle)
    return (quota_refusal(actor, len(mine), len(steps), limits.session_runs)
            or steps_refusal(sum(r.steps_left for r in mine), sum(steps), limits.session_steps)
            or queue_refusal(actor, before, after - before, limits.max_queued))


def steps_refusal(held: int, wanted: int, limit: int) -> str | None:
    """Why a student whose active runs have `held` steps left to train may not add `wanted` more (None: it may)."""
    if held + wanted <= limit:
        return None
    return (f"this needs {wanted:,} steps of training, and a student may have {limit:,} active at once "
            f"({SESSION_STEPS_ENV}; {held:,} already): fewer steps, or let a run finish first")


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
        return f"this needs {wanted} runs at once; a student may have {limit} active {runs} ({SESSION_RUNS_ENV})"
    return (f"this browser already has {active} active {'run' if active == 1 else 'runs'} (the limit is {limit}, "
            f"{SESSION_RUNS_ENV}): stop it or let it finish first")


def queue_refusal(actor: Actor, waiting: int, adding: int, limit: int) -> str | None:
    """Why a student's start may not add `adding` runs to the `waiting` ones that wait for a worker (None: it may)."""
    if actor.presenter or adding <= 0 or waiting + adding <= limit:
        return None
    return (f"the queue is full: {waiting} {'run' if waiting == 1 else 'runs'} waiting (the limit is {limit}, "
            f"{MAX_QUEUED_ENV}): try again when one has started")


class Guess(Enum):
    """A key guess's answer: RIGHT and WRONG were compared; BUSY was not (too many guesses wait already)."""

    RIGHT = "right"
    WRONG = "wrong"
    BUSY = "busy"


class KeyGuard:
    """Checks guesses of the presenter key: in constant time, slowly after wrong ones, and never in a line the right
    key has to wait in.

    A session's guess first waits `delay_s` × its earlier wrong guesses (at most `cap_s`). Then it is admitted only if
    fewer than `waiting` guesses wait server-wide and fewer than `per_address` from its address; otherwise it is BUSY at
    once, without being compared, so a refusal tells nothing about the key. An admitted guess is compared at once: the
    right key is accepted at once. A wrong one then holds the guard for `delay_s` before it is answered, so the server
    answers at most one wrong guess per `delay_s`, and at most `waiting` keys are ever being tried at a time. Thirty
    sessions guessing from one address hold `per_address` places: the presenter's browser, at its own address, is not
    behind them. Nothing here logs or keeps a guess.
    """

    def __init__(self, key: str, *, delay_s: float = 1.0, cap_s: float = 10.0, waiting: int = 8, per_address: int = 2,
                 sleep: Callable[[float], None] = time.sleep, pace: Callable[[float], None] | None = None) -> None:
        """`pace`: waits a wrong guess's turn, given delay_s (gan_core.classroom.pace.RoomPace: the room's, across app
        processes); None: this process's own, one wrong guess answered per delay_s."""
        self._digest = hashlib.sha256(key.encode()).digest()  # equal lengths: compare_digest leaks nothing of the key's
        self.delay_s, self.cap_s, self.waiting, self.per_address = delay_s, cap_s, waiting, per_address
        self._sleep, self._pace = sleep, pace
        self._wrong = threading.Lock()  # without a pace: held by each wrong guess for delay_s before it is answered
        self._count_lock = threading.Lock()
        self._by_address: dict[str, int] = {}  # guesses admitted and not yet answered, per address

    def check(self, guess: str, earlier_failures: int = 0, address: str | None = None) -> Guess:
        """`address`: the client's (None: this machine, or unknown)."""
        self._sleep(min(self.cap_s, self.delay_s * max(0, earlier_failures)))
        place = address or "local"
        with self._count_lock:
            if sum(self._by_address.values()) >= self.waiting or self._by_address.get(place, 0) >= self.per_address:
                return Guess.BUSY
            self._by_address[place] = self._by_address.get(place, 0) + 1
        try:
            if hmac.compare_digest(hashlib.sha256(guess.encode(errors="replace")).digest(), self._digest):
                return Guess.RIGHT
            if self._pace is not None:
                self._pace(self.delay_s)
            else:
                with self._wrong:
                    self._sleep(self.delay_s)
            return Guess.WRONG
        finally:
            with self._count_lock:
                self._by_address[place] -= 1
                if not self._by_address[place]:
                    del self._by_address[place]
