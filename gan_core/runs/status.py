"""The words the manager, its workers and the pages share about a run: where it is in its life (Status) and which
slow-motion step a paused run takes (StepKind). Their values are what status.json and the worker's events carry."""

from __future__ import annotations

from enum import Enum


class Status(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    FINISHED = "finished"
    DIVERGED = "diverged"
    FAILED = "failed"

    @property
    def active(self) -> bool:
        """Holds a worker (or waits for one)."""
        return self in (Status.QUEUED, Status.RUNNING, Status.PAUSED)


class StepKind(str, Enum):
    """The slow-motion controls of a paused run."""

    D = "d"  # one discriminator update: D's view of the plane moves, the fakes stay put
    G = "g"  # one generator update: the fakes move along G's gradient
    FULL = "full"  # one training step: the configured D updates, then one G update
