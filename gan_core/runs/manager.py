"""RunManager: the dashboard's background runs, shared by every browser on one server.

Runs train in worker processes (gan_core.runs.processes, looping in gan_core.runs.worker.serve), at most `max_runs` at
a time; the rest queue. The manager keeps each run's bounded history (gan_core.runs.state), fed by the workers' events,
and hands viewers immutable snapshots: a viewer never waits for a step, nor a step for a viewer. Processes, not threads,
by measurement on 2 CPU cores: a training thread in the Streamlit server queued for the GIL behind the pages (one open
Training page cut digits from ~130 to ~30 steps/s), and a crash in a process cannot take the server down.
`processes=False` keeps threads (tests patch the trainer there).

Every control takes the Actor that asks (gan_core.runs.roles) and refuses with RunRefused what it may not do: a student
session controls only the runs it started, within a quota and a bounded queue. The default, LOCAL, may do everything
(the CLI, tests, a server without a presenter key). A run's owner is kept in its status.json; none: the presenter's.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from gan_core.config import ConfigError, TrainConfig
from gan_core.runs import roles
from gan_core.runs.folder import CONFIG_FILE, RunStore, default_runs_dir, is_run_id, sanitize_name
from gan_core.runs.history import steps_per_second
from gan_core.runs.processes import Worker, default_max_runs
from gan_core.runs.reload import load_run
from gan_core.runs.roles import LOCAL, Actor, RunRefused
from gan_core.runs.state import RunSnapshot, RunState, status_message
from gan_core.runs.status import Status, StepKind
from gan_core.runs.worker import write_error

log = logging.getLogger(__name__)


class RunManager:
    """Every run in the runs folder, and up to `max_runs` of them training in workers (see the module docstring)."""

    def __init__(self, runs_dir: str | os.PathLike | None = None, *, max_runs: int | None = None, device: str = "auto",
                 data_dir: str | os.PathLike | None = None, torch_threads: int = 1, processes: bool | None = None,
                 session_runs: int | None = None, max_queued: int | None = None) -> None:
        self.runs_dir = Path(runs_dir) if runs_dir is not None else default_runs_dir()
        self.max_runs = default_max_runs() if max_runs is None else max_runs
        # a student session's active runs, and the runs waiting for a worker before a student's start is refused
        self.session_runs = roles.session_runs_limit() if session_runs is None else session_runs
        self.max_queued = roles.max_queued_limit() if max_queued is None else max_queued
        self.device = device
        self.data_dir = None if data_dir is None else str(data_dir)
        self._lock = threading.Lock()  # guards _runs, _queue and _workers; taken before a run's cond, never after
        self._runs: dict[str, RunState] = {}
        self._queue: deque[str] = deque()
        self._closed = False
        self._scanned_mtime: float | None = None
        self._skipped: set[str] = set()  # folders not listed, each logged once
        try:
            self.runs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:  # the pages still open and list nothing; start() says why it cannot create a run
            log.warning("cannot create the runs folder %s: %s", self.runs_dir, err)
        self.scan()
        if processes is None:
            processes = os.environ.get("GAN_WORKERS", "processes").strip().lower() != "threads"
        self._processes = processes
        self._torch_threads = torch_threads
        # started now, so they have imported torch before anyone presses Start
        self._workers = [self._new_worker(i) for i in range(self.max_runs)]
        threading.Thread(target=self._watch, name="gan-watch", daemon=True).start()

    # -- what exists ---------------------------------------------------------------------------------------------------
    def scan(self) -> None:
        """Pick up run folders not yet known (after a restart, or trained by the CLI)."""
        try:
            mtime = self.runs_dir.stat().st_mtime
        except OSError:
            return
        if mtime == self._scanned_mtime:
            return
        try:
            folders = sorted(self.runs_dir.iterdir())
        except OSError as err:  # not a folder (any more): nothing new to list
            log.warning("cannot list the runs folder %s: %s", self.runs_dir, err)
            return
        self._scanned_mtime = mtime
        for folder in folders:
            if folder.name in self._runs or not (folder / CONFIG_FILE).is_file():
                continue
            if folder.is_symlink() or folder.resolve().parent != self.runs_dir.resolve():
                # a link would list (and serve the files of) a folder anywhere on the machine
                self._skip_once(folder, "it is a symbolic link, or resolves outside the runs folder")
                continue
            if not is_run_id(folder.name):
                # a folder renamed or made by hand: its name would be shown (as Markdown) on every page
                self._skip_once(folder, "its name is not a run id (lower-case letters, digits, - and _; at most 64)")
                continue
            run, owner = load_run(folder, self.data_dir)
            with self._lock:
                if run.id not in self._runs:
                    run.owner = owner
                    self._runs[run.id] = run

    def _skip_once(self, folder: Path, why: str) -> None:
        if folder.name not in self._skipped:
            self._skipped.add(folder.name)
            log.warning("not listing the run folder %s: %s", folder, why)

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
        stamp = time.strftime("%Y%m%d-%H%M%S")
        started: list[RunState] = []
        with self._lock:
            if self._closed:
                raise RuntimeError("the run manager has been shut down")
            refusal = self._start_refusal(actor, len(runs))
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
                self._runs[run_id] = run
                run.owner = actor.session
                if actor.session is not None:
                    self._write_status(run)  # its owner, kept even if the server stops before it leaves the queue
                started.append(run)
        for run in started:
            self._queue_run(run)
        return [run.id for run in started]

    def _start_refusal(self, actor: Actor, wanted: int) -> str | None:
        """Why `actor` may not make `wanted` more runs active now (None: it may). Called holding _lock."""
        if actor.presenter:
            return None
        active = waiting = 0
        for run in self._runs.values():
            with run.cond:
                if run.status.active and run.owner == actor.session:
                    active += 1
                if run.status is Status.QUEUED:
                    waiting += 1
        idle = sum(1 for w in self._workers if w.run_id is None and w.alive())
        before, after = max(0, waiting - idle), max(0, waiting + wanted - idle)
        return (roles.quota_refusal(actor, active, wanted, self.session_runs)
                or roles.queue_refusal(actor, before, after - before, self.max_queued))

    def may_control(self, actor: Actor, run_id: str) -> bool:
        """Whether `actor` may pause, resume, stop, step and delete the run: the presenter, or the session that started
        it."""
        return roles.may_control(actor, self.owner(run_id))

    def owner(self, run_id: str) -> str | None:
        """The session that started the run; None for the presenter's alone (trained by the CLI, or before roles)."""
        with self._lock:
            run = self._runs.get(run_id)
        return run.owner if run is not None else None

    def _check(self, actor: Actor, run_id: str, verb: str) -> RunState:
        run = self._get(run_id)
        if not roles.may_control(actor, run.owner):  # the rule itself, whatever buttons a page drew
            raise RunRefused(f"only the presenter or the session that started {run_id} can {verb} it")
        return run

    def resume(self, run_id: str, steps: int | None = None, *, actor: Actor = LOCAL) -> None:
        """Continue a paused run; or reopen a stopped, diverged or failed run from its last checkpoint (queued again).

        `steps` raises a run's total, so a finished run can train on. Reopening a run counts against a student's quota.
        """
        run = self._check(actor, run_id, "resume")
        if not actor.presenter and not self.status(run_id).active:
            with self._lock:
                refusal = self._start_refusal(actor, 1)
            if refusal:
                raise RunRefused(f"cannot resume {run_id}: {refusal}")
        if not run.resumable:
            raise ConfigError("run", f"{run_id} cannot be resumed: {run.error}")
        with run.cond:
            if run.status is Status.PAUSED and run.worker is not None:
                run.worker.send("resume", run_id)
                return
            if run.status.active:
                run.paused = False
                return
            config = run.config.replace(steps=steps) if steps is not None else run.config
            if run.step >= config.steps and run.status is Status.FINISHED:
                raise ConfigError("steps", f"the run already reached its {config.steps:,} steps; "
                                           "give a larger total to train on")
            run.config = config
        self._queue_run(run)

    def pause(self, run_id: str, *, actor: Actor = LOCAL) -> None:
        """Pause after the current step (the worker then reports "paused"); a queued run will start paused."""
        run = self._check(actor, run_id, "pause")
        with run.cond:
            if run.status is Status.RUNNING and run.worker is not None:
                run.worker.send("pause", run_id)
            elif run.status is Status.QUEUED:
                run.paused = True
                run.changed()

    def stop(self, run_id: str, *, actor: Actor = LOCAL) -> None:
        """Stop after the current step, with a checkpoint; a queued run leaves the queue."""
        run = self._check(actor, run_id, "stop")
        with self._lock:
            if run_id in self._queue:
                self._queue.remove(run_id)
                with run.cond:
                    run.status = Status.STOPPED
                    run.changed()
                return
        with run.cond:
            if run.status in (Status.RUNNING, Status.PAUSED) and run.worker is not None:
                run.worker.send("stop", run_id)

    def step(self, run_id: str, kind: StepKind = StepKind.FULL, *, actor: Actor = LOCAL) -> None:
        """One slow-motion step of a paused run (see StepKind)."""
        run = self._check(actor, run_id, "step")
        with run.cond:
            if run.status is not Status.PAUSED or run.worker is None:
                raise ConfigError("step", f"{run_id} is {run.status.value}; pause it first to step through it")
            run.worker.send(f"step-{StepKind(kind).value}", run_id)

    def delete(self, run_id: str, *, actor: Actor = LOCAL) -> None:
        """Remove a run and its folder for good. A queued, running or paused run is refused: stop it first (its worker
        writes into the folder until it has ended)."""
        run = self._check(actor, run_id, "delete")
        # not a run id: never listed again, even if removing it fails halfway
        trash = self.runs_dir / f".deleting-{run_id}-{time.time_ns()}"
        with self._lock:
            with run.cond:
                if run.status.active or run_id in self._queue:
                    raise ConfigError("run", f"{run_id} is {run.status.value}: stop it first, then delete it")
                try:
                    run.store.path.rename(trash)
                except OSError as err:
                    raise ConfigError("run", f"cannot delete {run_id}: {write_error(err, run.store.path)}") from None
                run.resumable, run.error = False, "deleted"  # a control that already holds it fails, and says why
                run.changed()
            del self._runs[run_id]
        shutil.rmtree(trash, ignore_errors=True)
        if trash.exists():
            log.warning("run %s: could not remove all of %s", run_id, trash)

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
        """Stop every run (each writes a checkpoint), then end the workers."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            queued = list(self._queue)
        for run_id in queued:
            self.stop(run_id)
        busy = [w for w in self._workers if w.run_id is not None]
        for w in busy:
            w.send("stop", w.run_id)
        deadline = time.monotonic() + timeout
        for w in busy:  # each reports "end" after its checkpoint
            run = self._runs[w.run_id] if w.run_id in self._runs else None
            if run is not None:
                with run.cond:
                    while run.status.active and w.alive() and time.monotonic() < deadline:
                        run.cond.wait(0.2)
        for w in self._workers:
            w.send("exit")
        # the runs have ended (or the time is up): an idle worker reads "exit" within a second, and one still starting
        # up (a replacement importing torch) holds nothing worth waiting for
        exit_by = min(deadline, time.monotonic() + 2.0)
        for w in self._workers:
            w.handle.join(max(0.1, exit_by - time.monotonic()))
            if w.alive() and self._processes:
                w.handle.terminate()

    # -- what a viewer reads -------------------------------------------------------------------------------------------
    def status(self, run_id: str) -> Status:
        """The run's status now, without building a snapshot (a viewer deciding whether an older one will do)."""
        run = self._get(run_id)
        with run.cond:
            return run.status

    def snapshot(self, run_id: str) -> RunSnapshot:
        run = self._get(run_id)
        with self._lock:
            position = self._queue.index(run_id) + 1 if run_id in self._queue else None
        with run.cond:
            cached = run._snapshot
            if cached is not None and cached.version == run.version and cached.queue_position == position:
                return cached
            snap = RunSnapshot(
                id=run.id, path=run.store.path, config=run.config, status=run.status,
                message=status_message(run, position), step=run.step, created=run.created, version=run.version,
                steps_per_s=steps_per_second(list(run.recent)), queue_position=position,
                metrics=run.metrics.columns(), probes=tuple(run.probes.items()), samples=tuple(run.samples.items()),
                real=run.real, modes=run.modes, resumable=run.resumable,
            )
            run._snapshot = snap
            return snap

    # -- scheduling ----------------------------------------------------------------------------------------------------
    def _get(self, run_id: str) -> RunState:
        with self._lock:
            run = self._runs.get(run_id)
        if run is None:
            raise ConfigError("run", f"no run named {run_id!r} on this server")
        return run

    def _queue_run(self, run: RunState) -> None:
        if run.id not in self:
            raise ConfigError("run", f"no run named {run.id!r} on this server")  # deleted meanwhile
        with run.cond:
            run.status, run.error, run.paused = Status.QUEUED, "", False
            run.changed()
        with self._lock:
            self._queue.append(run.id)
        self._admit()

    def _admit(self) -> None:
        """Give queued runs to idle workers."""
        with self._lock:
            while self._queue and not self._closed:
                idle = next((w for w in self._workers if w.run_id is None and w.alive()), None)
                if idle is None:
                    return
                run = self._runs[self._queue.popleft()]
                idle.run_id = run.id
                with run.cond:
                    run.worker = idle
                    run.status = Status.PAUSED if run.paused else Status.RUNNING
                    run.changed()
                    idle.send("train", run.id, str(run.store.path), run.config.steps, self.device, self.data_dir,
                              run.paused)
                self._write_status(run)

    def _new_worker(self, index: int) -> Worker:
        worker = Worker(index, self._processes, self._torch_threads)
        threading.Thread(target=self._receive, args=(worker,), name=f"gan-events-{index}", daemon=True).start()
        return worker

    def _receive(self, worker: Worker) -> None:
        """Apply one worker's events to the runs' state, until that worker has ended and all it sent is read."""
        while True:
            alive = worker.alive()  # before the read: once it is dead, an empty queue means nothing more will come
            try:
                event = worker.events.get(timeout=0.5)
            except queue.Empty:
                if alive:
                    continue
                return
            except (EOFError, OSError):
                return
            try:
                self._apply(event, worker)
            except Exception:  # a bad event must not stop the receiver: the worker's runs depend on it
                log.exception("could not apply event %r", event[:2])

    def _watch(self) -> None:
        """Notice a worker that died and replace it."""
        while not self._closed:
            time.sleep(0.5)
            self._check_workers()

    def _apply(self, event: tuple, worker: Worker) -> None:
        kind, run_id = event[0], event[1]
        run = self._runs.get(run_id)
        if run is None:
            return
        with run.cond:
            if run.worker is not worker:
                return  # late word from a worker that has since ended this run (it died, and the run moved on)
            run.apply(event)
            if kind == "end":
                if run.worker is not None:
                    run.worker.run_id = None
                run.worker = None
            if kind in ("end", "status"):
                self._write_status(run)  # before anyone is told: a reader that reacts finds it on disk too
            run.changed()
        if kind == "end":
            self._admit()

    def _check_workers(self) -> None:
        """A worker process that died (out of memory, killed) fails its run with a message, and is replaced."""
        for i, w in enumerate(self._workers):
            if w.alive() or self._closed:
                continue
            run_id = w.run_id
            if run_id is not None:
                self._apply(("end", run_id, Status.FAILED,
                             f"the training process stopped unexpectedly (exit code {w.exit_code()}); "
                             "resume continues from the last checkpoint", self._runs[run_id].checkpoint_step), w)
            with self._lock:
                self._workers[i] = self._new_worker(i)
            self._admit()

    def _write_status(self, run: RunState) -> None:
        try:
            run.store.write_status({"status": run.status.value, "message": run.error, "step": run.step,
                                    "checkpoint_step": run.checkpoint_step, "created": run.created,
                                    "owner": run.owner})
        except OSError:
            log.warning("run %s: could not write its status file", run.id)
