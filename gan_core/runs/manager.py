"""RunManager: the dashboard's background runs, shared by every browser on one server.

Runs train in worker processes (gan_core.runs.processes, looping in gan_core.runs.worker.serve), at most `max_runs` at
a time; the rest queue. With a Ray address (`ray_address`, else GAN_RAY_ADDRESS) runs train as Ray actors instead
(gan_core.runs.ray_backend), and the server still writes every run folder. The manager keeps each run's bounded history
(gan_core.runs.state), fed by the workers' events, and hands viewers immutable snapshots: a viewer never waits for a
step, nor a step for a viewer. `processes=False` keeps threads (tests patch the trainer there).

The queue puts the lesson first (gan_core.runs.run_queue): the presenter's runs wait ahead of students', and runs that
hold a worker give it back (a checkpoint first) to a waiting run when paused for long, or to the lesson; a run queued
when the server stopped is queued again. Housekeeping (gan_core.runs.housekeeping) keeps the folder within its budget.

Several app processes may share one runs folder (a lecture hall): only the one holding the training lease trains; the
others read the runs from the folder and send it their starts and controls, and one of them takes over when it dies
(gan_core.runs.sharing). The queue, the workers' events and housekeeping are gan_core.runs.scheduling.

Every control takes the Actor that asks (gan_core.runs.roles) and refuses with RunRefused what it may not do: a student
session controls only the runs it started, within a quota and a bounded queue. The default, LOCAL, may do everything
(the CLI, tests, a server without a presenter key). A run's owner is kept in its status.json; none: the presenter's.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from gan_core.classroom.lease import lease_for
from gan_core.classroom.orders import Orders
from gan_core.classroom.store import open_store, state_url
from gan_core.config import ConfigError, TrainConfig
from gan_core.runs import housekeeping, ray_backend, roles, sharing
from gan_core.runs.folder import RunStore, default_runs_dir, sanitize_name
from gan_core.runs.mirror import FolderTail
from gan_core.runs.processes import WorkerPool, default_max_runs
from gan_core.runs.reload import FolderScanner, load_run
from gan_core.runs.roles import LOCAL, Actor, RunRefused
from gan_core.runs.run_queue import RunQueue
from gan_core.runs.scheduling import Scheduling
from gan_core.runs.state import RunSnapshot, RunState
from gan_core.runs.status import Status, StepKind
from gan_core.runs.worker import write_error

log = logging.getLogger(__name__)


class RunManager(Scheduling):
    """Every run in the runs folder, and up to `max_runs` of them training in workers (see the module docstring)."""

    def __init__(self, runs_dir: str | os.PathLike | None = None, *, max_runs: int | None = None, device: str = "auto",
                 data_dir: str | os.PathLike | None = None, torch_threads: int = 1, processes: bool | None = None,
                 session_runs: int | None = None, max_queued: int | None = None, session_steps: int | None = None,
                 ray_address: str | None = None) -> None:
        self.runs_dir = Path(runs_dir) if runs_dir is not None else default_runs_dir()
        self.max_runs = default_max_runs() if max_runs is None else max_runs
        # a student's active runs and their steps, and the runs waiting for a worker before a student's start is refused
        self.limits = roles.Limits.from_env(session_runs=session_runs, max_queued=max_queued, session_steps=session_steps)
        self.device = device
        self.data_dir = None if data_dir is None else str(data_dir)
        self.ray_address = ray_backend.address_from(ray_address)  # None: local worker processes
        self._lock = threading.Lock()  # guards _runs and _queue; taken before a run's cond, never after
        self._runs: dict[str, RunState] = {}
        self._queue = RunQueue()  # the lesson's runs first
        self._closed = False
        self.disk_budget = housekeeping.budget_bytes()
        self._over_budget, self._budget_lock = "", threading.Lock()  # why students may not start runs; one check at a time
        try:
            self.runs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:  # the pages still open and list nothing; start() says why it cannot create a run
            log.warning("cannot create the runs folder %s: %s", self.runs_dir, err)
        self._scanner = FolderScanner(self.runs_dir)
        self._tails: dict[str, FolderTail] = {}  # while another process trains: where each run's files were read to
        self._pool_args = (processes, torch_threads, max_runs)
        self._pool: WorkerPool | ray_backend.RayPool | None = None
        # of the app processes on this folder, the one holding the lease trains; the others read the folder and send
        # it their starts and controls (gan_core.runs.sharing)
        self.store = open_store(state_url(self.runs_dir))
        self._lease = lease_for(self.store, self.runs_dir)
        self._orders = Orders(self.store)
        self.trains = self._lease.try_acquire() or not self.runs_dir.is_dir()  # no folder: nobody else trains in it
        self.scan()  # queues again the runs that were queued when the server stopped
        if self.trains:
            self._open_pool()
            self._admit()
        threading.Thread(target=self._tick, name="gan-housekeeping", daemon=True).start()
        threading.Thread(target=sharing.serve, args=(self,), name="gan-orders", daemon=True).start()

    def _open_pool(self) -> None:
        processes, torch_threads, max_runs = self._pool_args
        self._pool = WorkerPool(
            self.max_runs, processes, torch_threads, self._apply, self._worker_died) if self.ray_address is None else \
            ray_backend.RayPool(self.ray_address, max_runs, self._apply, self._worker_died)  # slots: the cluster's CPUs
        self.max_runs = self._pool.size

    # -- what exists ---------------------------------------------------------------------------------------------------
    def scan(self) -> None:
        """Pick up run folders not yet known (after a restart, or trained by the CLI); a run that was queued when the
        server stopped is queued again."""
        with self._lock:
            known = set(self._runs)
        for folder in self._scanner.new_folders(known):
            run, tail = self._read_run(folder, mirrored=not self.trains)
            with self._lock:
                if run.id in self._runs:
                    continue
                self._runs[run.id] = run
                if tail is not None:
                    self._tails[run.id] = tail
                elif run.status is Status.QUEUED:
                    self._queue.add(run.id, lesson=run.owner is None)
        if not self.trains and self._scanner.present is not None:
            with self._lock:  # deleted by the process that trains
                for run_id in [r for r in self._runs if r not in self._scanner.present]:
                    del self._runs[run_id]
                    self._tails.pop(run_id, None)

    def _read_run(self, folder: Path, *, mirrored: bool) -> tuple[RunState, FolderTail | None]:
        """A run read from its folder: as a restart reads it (this process trains), or, `mirrored`, as another process
        trains it, with the tail that follows its files from now on."""
        run, owner = load_run(folder, self.data_dir)
        run.owner = owner
        if not mirrored:
            return run, None
        tail = FolderTail(folder)
        run.mirrored = True
        tail.refresh(run, force=True)  # the trainer's word on its status, not a restart's reading
        return run, tail

    def ids(self) -> list[str]:
        """Every run on this server, newest first."""
        self.scan()
        with self._lock:
            runs = list(self._runs.values())
        return [r.id for r in sorted(runs, key=lambda r: (r.created, r.id), reverse=True)]

    def snapshots(self) -> list[RunSnapshot]:
        return [self.snapshot(i) for i in self.ids()]

    def __contains__(self, run_id: str) -> bool:
        with self._lock:
            return run_id in self._runs

    # -- controls ------------------------------------------------------------------------------------------------------
    def start(self, config: TrainConfig, name: str | None = None, *, actor: Actor = LOCAL) -> str:
        """Create a run folder and queue the run; returns its id at once (training happens in a worker)."""
        return self.start_many([(config, name)], actor=actor)[0]

    def start_many(self, runs: Sequence[tuple[TrainConfig, str | None]], *, actor: Actor = LOCAL) -> list[str]:
        """Start several runs (a lesson's comparison) at once, or none of them: the actor's quota and the queue's bound
        are checked for all of them together. Returns their ids, in order."""
        if not self.trains:
            return sharing.ask(self, "start", {"runs": [[config.to_dict(), name] for config, name in runs]}, actor)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        started: list[RunState] = []
        with self._lock:
            if self._closed:
                raise RuntimeError("the run manager has been shut down")
            refusal = self._pool.unavailable() or self._start_refusal(actor, [config.steps for config, _ in runs])
            if refusal:
                raise RunRefused(f"cannot start: {refusal}")
            for config, name in runs:
                base = sanitize_name(name or config.dataset.value)
                run_id = f"{base}-{stamp}"[:64]
                n = 2
                while run_id in self._runs or (self.runs_dir / run_id).exists():
                    run_id = f"{base}-{stamp}-{n}"[:64]
                    n += 1
                try:
                    store = RunStore(self.runs_dir / run_id).create(config)
                except OSError as err:
                    for made in started:  # all or none: forget the ones already made
                        del self._runs[made.id]
                        shutil.rmtree(made.store.path, ignore_errors=True)
                    raise ConfigError("run", f"cannot create a run: {write_error(err, self.runs_dir / run_id)}") from None
                run = RunState(run_id, store, config, time.time())
                run.status = Status.QUEUED  # counted as active and waiting from now on, by the next start's check
                run.owner = actor.owner
                self._runs[run_id] = run
                started.append(run)
        for run in started:
            self._queue_run(run)
        return [run.id for run in started]

    def _start_refusal(self, actor: Actor, steps: Sequence[int]) -> str | None:
        """Why `actor` may not make runs of `steps` steps each active now (None: it may). Called holding _lock."""
        if actor.presenter:
            return None
        held = []
        for run in self._runs.values():
            with run.cond:
                held.append(roles.Held(run.status, run.owner, max(0, run.config.steps - run.step)))
        return roles.start_refusal(actor, held, steps, self._pool.idle_count(), self.limits) or self._over_budget or None

    def may_control(self, actor: Actor, run_id: str) -> bool:
        """Whether `actor` may pause, resume, stop, step and delete the run: the presenter, or the session that started
        it."""
        return roles.may_control(actor, self.owner(run_id))

    def owner(self, run_id: str) -> str | None:
        """The token of the student session that started the run (roles.owner_token); None for the presenter's."""
        with self._lock:
            return self._runs[run_id].owner if run_id in self._runs else None

    def _check(self, actor: Actor, run_id: str, verb: str) -> RunState:
        run = self._get(run_id)
        if not roles.may_control(actor, run.owner):  # the rule itself, whatever buttons a page drew
            raise RunRefused(f"only the presenter or the session that started {run_id} can {verb} it")
        return run

    def resume(self, run_id: str, steps: int | None = None, *, actor: Actor = LOCAL) -> None:
        """Continue a paused run; or reopen a stopped, diverged or failed run from its last checkpoint (queued again).

        `steps` raises a run's total, so a finished run can train on. Reopening a run counts against a student's quota.
        A paused run that gave its worker back is queued for the next free one.
        """
        if not self.trains:
            return sharing.ask(self, "resume", {"run_id": run_id, "steps": steps}, actor)
        run = self._check(actor, run_id, "resume")
        if not actor.presenter and not self.status(run_id).active:
            with self._lock:
                refusal = self._start_refusal(actor, [max(0, (steps or run.config.steps) - run.step)])
            if refusal:
                raise RunRefused(f"cannot resume {run_id}: {refusal}")
        if not run.resumable:
            raise ConfigError("run", f"{run_id} cannot be resumed: {run.error}")
        with run.cond:
            if run.status is Status.PAUSED and run.worker is not None:
                if run.releasing:  # its worker is checkpointing to leave: it is queued once that is done
                    run.resume_when_released = True
                else:
                    run.worker.send("resume", run_id)
                return
            if run.status is Status.QUEUED:
                run.paused = False
                return
            config = run.config.replace(steps=steps) if steps is not None else run.config
            if run.step >= config.steps and run.status is Status.FINISHED:
                raise ConfigError("steps", f"the run already reached its {config.steps:,} steps; "
                                           "give a larger total to train on")
            run.config = config
        self._queue_run(run)

    def pause(self, run_id: str, *, actor: Actor = LOCAL) -> None:
        """Pause after the current step (the worker then reports "paused"). A queued run leaves the queue, paused:
        resuming or stepping it queues it again."""
        if not self.trains:
            return sharing.ask(self, "pause", {"run_id": run_id}, actor)
        run = self._check(actor, run_id, "pause")
        with self._lock:
            if run_id in self._queue:
                self._queue.remove(run_id)
                with run.cond:
                    run.status = Status.PAUSED
                    run.write_status()
                    run.changed()
                return
        with run.cond:
            run.resume_when_released = False  # giving its worker to the lesson: it stays paused after, not queued
            if run.status is Status.RUNNING and run.worker is not None:
                run.worker.send("pause", run_id)

    def stop(self, run_id: str, *, actor: Actor = LOCAL) -> None:
        """Stop after the current step, with a checkpoint; a queued run leaves the queue."""
        if not self.trains:
            return sharing.ask(self, "stop", {"run_id": run_id}, actor)
        run = self._check(actor, run_id, "stop")
        with self._lock:
            with run.cond:
                if run.worker is not None and run.status in (Status.RUNNING, Status.PAUSED):
                    run.resume_when_released = False
                    run.worker.send("stop", run_id)
                    return
                if run_id in self._queue:
                    self._queue.remove(run_id)
                if run.status.active:  # queued, or paused without a worker: its checkpoint (if any) is on disk
                    run.status, run.pending_steps = Status.STOPPED, []
                    run.write_status()
                    run.changed()

    def step(self, run_id: str, kind: StepKind = StepKind.FULL, *, actor: Actor = LOCAL) -> None:
        """One slow-motion step of a paused run (see StepKind). A paused run without a worker is queued for one, and
        takes the step when it has it."""
        kind = StepKind(kind)
        if not self.trains:
            return sharing.ask(self, "step", {"run_id": run_id, "kind": kind.value}, actor)
        run = self._check(actor, run_id, "step")
        with run.cond:
            if run.status is not Status.PAUSED:
                raise ConfigError("step", f"{run_id} is {run.status.value}; pause it first to step through it")
            run.paused_since = time.monotonic()
            if run.worker is not None and not run.releasing:
                run.worker.send(f"step-{kind.value}", run_id)
                return
            run.pending_steps.append(kind)
            if run.worker is not None:
                return  # it is giving its worker back: queued with its steps once it has
        self._queue_run(run, paused=True)

    def delete(self, run_id: str, *, actor: Actor = LOCAL) -> None:
        """Remove a run and its folder for good. A queued, running or paused run is refused: stop it first (its worker
        writes into the folder until it has ended)."""
        if not self.trains:
            return sharing.ask(self, "delete", {"run_id": run_id}, actor)
        self._remove(self._check(actor, run_id, "delete"))

    def _remove(self, run: RunState) -> None:
        # not a run id: never listed again, even if removing it fails halfway
        trash = self.runs_dir / f"{housekeeping.DELETING_PREFIX}{run.id}-{time.time_ns()}"
        with self._lock:
            with run.cond:
                if run.status.active or run.id in self._queue:
                    raise ConfigError("run", f"{run.id} is {run.status.value}: stop it first, then delete it")
                try:
                    run.store.path.rename(trash)
                except OSError as err:
                    raise ConfigError("run", f"cannot delete {run.id}: {write_error(err, run.store.path)}") from None
                run.resumable, run.error = False, "deleted"  # a control that already holds it fails, and says why
                run.changed()
            del self._runs[run.id]
            others = [r.config.points_csv for r in self._runs.values()]
        shutil.rmtree(trash, ignore_errors=True)
        if trash.exists():
            log.warning("run %s: could not remove all of %s", run.id, trash)
        housekeeping.remove_upload_of(self.runs_dir, run.config.points_csv, others)  # it goes with its last run

    def wait(self, run_id: str, until: Callable[[RunSnapshot], bool] | None = None, timeout: float = 60.0) -> RunSnapshot:
        """Block until `until(snapshot)` holds (default: the run is no longer active); for tests and scripts."""
        run = self._get(run_id)
        done = until or (lambda s: not s.status.active)
        deadline = time.monotonic() + timeout
        while True:
            snap = self.snapshot(run_id)
            if done(snap):
                return snap
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{run_id}: still {snap.status.value} at step {snap.step} after {timeout} s")
            with run.cond:
                if run.version == snap.version:
                    run.cond.wait(min(left, 0.5))

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop every training run (each writes a checkpoint at its last step), then end the workers. Queued runs stay
        queued in their status.json: the next start queues them again."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._pool is None:  # it trained nothing: another process does
            return
        busy = self._pool.busy()
        for w in busy:
            w.send("stop", w.run_id)
        deadline = time.monotonic() + timeout
        for w in busy:  # each reports "end" after its checkpoint
            with self._lock:
                run = self._runs.get(w.run_id) if w.run_id is not None else None
            if run is not None:
                with run.cond:
                    while run.worker is w and w.alive() and time.monotonic() < deadline:
                        run.cond.wait(0.2)
        self._pool.exit(deadline)
        self._lease.release()  # after the workers: a successor must not train a run one of them still writes

    # -- what a viewer reads -------------------------------------------------------------------------------------------
    def status(self, run_id: str) -> Status:
        """The run's status now, without building a snapshot (a viewer deciding whether an older one will do)."""
        run = self._get(run_id)
        self._read_folder(run)
        with run.cond:
            return run.status

    def snapshot(self, run_id: str) -> RunSnapshot:
        run = self._get(run_id)
        self._read_folder(run)
        with self._lock:
            position = self._queue.index(run_id) + 1 if run_id in self._queue else None
        return run.snapshot(position)

    def _read_folder(self, run: RunState) -> None:
        """While another process trains: what it added to the run's folder since the last look (runs.mirror)."""
        tail = self._tails.get(run.id)
        if tail is not None:
            tail.refresh(run)

    def _get(self, run_id: str) -> RunState:
        with self._lock:
            run = self._runs.get(run_id)
        if run is None:
            raise ConfigError("run", f"no run named {run_id!r} on this server")
        return run
