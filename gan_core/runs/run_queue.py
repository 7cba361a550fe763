"""The runs waiting for a worker, the lesson's first.

A classroom shares a few workers. When the presenter starts a run (a comparison for the lesson), the room is waiting
for it, so a run of the presenter's (owner None) goes ahead of every student's waiting run, behind the presenter's own
earlier ones; students' runs wait in the order they came. A student's waiting run is never dropped, only passed.

Runs that hold a worker give it back (`to_release`): a run paused for long, to any waiting run; and a student's running
run, when the lesson's run still finds no free worker. Each checkpoints first; a student's running run then waits at the
back of the queue and goes on from its checkpoint when a worker is free again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import Protocol

from gan_core.runs.status import Status


class RunQueue:
    """Run ids in the order they get workers; not thread-safe (the RunManager holds its lock around every call)."""

    def __init__(self) -> None:
        self._ids: deque[str] = deque()
        self._lesson: set[str] = set()  # the ids of the presenter's runs among them

    def add(self, run_id: str, *, lesson: bool) -> None:
        """Queue a run; `lesson`: the presenter's, which goes ahead of every student's."""
        if lesson:
            at = next((i for i, queued in enumerate(self._ids) if queued not in self._lesson), len(self._ids))
            self._ids.insert(at, run_id)
            self._lesson.add(run_id)
        else:
            self._ids.append(run_id)

    def popleft(self) -> str:
        run_id = self._ids.popleft()
        self._lesson.discard(run_id)
        return run_id

    def remove(self, run_id: str) -> None:
        self._ids.remove(run_id)
        self._lesson.discard(run_id)

    def index(self, run_id: str) -> int:
        return self._ids.index(run_id)

    def lesson_waiting(self) -> int:
        """How many of the presenter's runs wait for a worker."""
        return len(self._lesson)

    def __contains__(self, run_id: object) -> bool:
        return run_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)


RELEASE_AFTER_S = 10.0  # long enough for a teacher's slow-motion steps; short enough that a forgotten pause costs little


class Holding(Protocol):
    """What `to_release` reads of a run that holds a worker."""

    id: str
    owner: str | None
    status: Status
    releasing: bool
    resume_when_released: bool
    paused_since: float  # when it was last given its worker or paused (time.monotonic())


def to_release(holding: Iterable[Holding], queue: RunQueue, now: float) -> list[Holding]:
    """The runs that should checkpoint and give their workers back now, for the runs in `queue`:

    - a run paused for RELEASE_AFTER_S or more, the longest paused first, one per waiting run (it stays paused);
    - a student's running run, one per presenter's run still waiting (counting those already giving theirs), the most
      recently started first: it has the least to lose. It goes on from its checkpoint when a worker is free again.
    """
    paused = sorted((r for r in holding if r.status is Status.PAUSED and not r.releasing
                     and now - r.paused_since >= RELEASE_AFTER_S), key=lambda r: r.paused_since)
    students = [r for r in holding if r.owner is not None and r.status is Status.RUNNING]
    already = sum(1 for r in students if r.releasing and r.resume_when_released)
    running = sorted((r for r in students if not r.releasing), key=lambda r: r.paused_since, reverse=True)
    return paused[:len(queue)] + running[:max(0, queue.lesson_waiting() - already)]
