"""The scheduling half of RunManager: queued runs given to idle workers (the lesson's first, gan_core.runs.run_queue),
the workers' events applied to their runs, a dead worker's run failed with a message, and the housekeeping tick that
keeps the folder within its disk budget. Only the process that trains runs any of it (gan_core.runs.sharing)."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from gan_core.config import ConfigError
from gan_core.runs import housekeeping
from gan_core.runs.processes import Worker, WorkerPool
from gan_core.runs.run_queue import RunQueue, to_release
from gan_core.runs.state import RunState
from gan_core.runs.status import Status

if TYPE_CHECKING:
    from gan_core.runs.ray_backend import RayPool

log = logging.getLogger(__name__)


class Scheduling:
    """RunManager's queue, workers and housekeeping (a base class: the manager's state is set in its __init__)."""

    runs_dir: Path
    device: str
    data_dir: str | None
    trains: bool
    disk_budget: int | None
    _lock: threading.Lock
    _budget_lock: threading.Lock
    _runs: dict[str, RunState]
    _queue: RunQueue
    _closed: bool
    _over_budget: str
    _pool: WorkerPool | RayPool | None

    # what RunManager defines
    def __contains__(self, run_id: str) -> bool:
        raise NotImplementedError

    def _get(self, run_id: str) -> RunState:
        raise NotImplementedError

    def _remove(self, run: RunState) -> None:
        raise NotImplementedError

    # -- scheduling ----------------------------------------------------------------------------------------------------
    def _queue_run(self, run: RunState, *, paused: bool = False) -> None:
        """Queue a run for the next free worker; `paused`: it starts paused (to take a slow-motion step)."""
        if run.id not in self:
            raise ConfigError("run", f"no run named {run.id!r} on this server")  # deleted meanwhile
        with run.cond:
            run.status, run.error, run.paused = Status.QUEUED, "", paused
            run.write_status()  # queued again after a restart, and its owner kept, if the server stops before it starts
            run.changed()
        with self._lock:
            self._queue.add(run.id, lesson=run.owner is None)
        self._admit()

    def _admit(self) -> None:
        """Give queued runs to idle workers; if some still wait, ask runs paused for long to give theirs back."""
        if self._pool is None:
            return
        with self._lock:
            while self._queue and not self._closed:
                idle = self._pool.idle()
                if idle is None:
                    break
                run = self._runs[self._queue.popleft()]
                idle.run_id = run.id
                with run.cond:
                    run.worker = idle
                    run.status = Status.PAUSED if run.paused else Status.RUNNING
                    run.paused_since = time.monotonic()
                    idle.send("train", run.id, str(run.store.path), run.config.steps, self.device, self.data_dir,
                              run.paused)
                    for kind in run.pending_steps:  # asked while it waited: taken in order once it has loaded
                        idle.send(f"step-{kind.value}", run.id)
                    run.pending_steps = []
                    run.write_status()
                    run.changed()
            holding = [r for r in self._runs.values() if r.worker is not None]
            release = to_release(holding, self._queue, time.monotonic())
        for run in release:
            with run.cond:
                if run.worker is not None and run.status in (Status.PAUSED, Status.RUNNING) and not run.releasing:
                    # it checkpoints and ends "paused"; _apply gives the worker away (and queues a running one again)
                    run.releasing, run.resume_when_released = True, run.status is Status.RUNNING
                    run.worker.send("release", run.id)

    def _apply(self, event: tuple, worker: Worker) -> None:
        """A worker's event, applied to its run (the WorkerPool calls this from the worker's receiver thread)."""
        kind, run_id = event[0], event[1]
        with self._lock:
            run = self._runs.get(run_id)
        if run is None:
            return
        queue_again = False
        with run.cond:
            if run.worker is not worker:
                return  # late word from a worker that has since ended this run (it died, and the run moved on)
            queue_again = kind == "end" and run.resume_when_released and event[2] is Status.PAUSED
            run.apply(event)
            if kind == "end":
                worker.run_id = None
                run.worker, run.resume_when_released = None, False
                if run.pending_steps:  # stepped while it gave its worker back: it takes them on the next worker
                    queue_again = True
            if kind in ("end", "status"):
                run.write_status()  # before anyone is told: a reader that reacts finds it on disk too
            run.changed()
        if queue_again:
            self._queue_run(run, paused=bool(run.pending_steps))
        elif kind == "end":
            self._admit()
            self._keep_budget()

    def _worker_died(self, worker: Worker) -> None:
        """A worker process that died (out of memory, killed) fails its run with a message (the pool replaces it)."""
        run_id = worker.run_id
        if run_id is not None and run_id in self:
            self._apply(("end", run_id, Status.FAILED, worker.death_reason(), self._runs[run_id].checkpoint_step),
                        worker)
        self._admit()

    # -- housekeeping --------------------------------------------------------------------------------------------------
    def _tick(self) -> None:
        """Every second: paused runs give their workers back to waiting ones; every HOUSEKEEPING_S: the disk."""
        last = -housekeeping.HOUSEKEEPING_S
        while not self._closed:
            if not self.trains:  # the process that trains keeps the folder
                time.sleep(1.0)
                continue
            if time.monotonic() - last >= housekeeping.HOUSEKEEPING_S:
                last = time.monotonic()
                self.housekeeping()
            time.sleep(1.0)
            self._admit()

    def housekeeping(self) -> None:
        """Remove what interrupted writes and unused uploads left, then keep the folder within its budget (logged)."""
        try:
            housekeeping.remove_leftovers(self.runs_dir)
            with self._lock:
                used = [r.config.points_csv for r in self._runs.values()]
            housekeeping.remove_unused_uploads(self.runs_dir, used)
            self._keep_budget()
        except Exception:  # housekeeping must never take the manager down; the next tick tries again
            log.exception("housekeeping of %s failed", self.runs_dir)

    def _keep_budget(self) -> None:
        """Past the disk budget, remove the oldest ended student runs (logged); if that is not enough, students' new
        runs are refused (with the reason) until it is."""
        if self.disk_budget is None or self._closed:  # never while shutting down: its runs are ending, not done
            return
        with self._budget_lock:  # a run's end and the tick may both get here: two would pick and remove the same runs
            with self._lock:
                runs = list(self._runs.values())
            disk = [housekeeping.RunDisk(r.id, r.owner, r.status.active, r.created,
                                         housekeeping.folder_bytes(r.store.path)) for r in runs]
            self._over_budget = housekeeping.keep_budget(self.runs_dir, disk, self.disk_budget,
                                                         lambda run_id: self._remove(self._get(run_id)))
