"""A dashboard worker: `serve` trains one run folder at a time on orders from the RunManager and reports back in events.
It trains through the one training loop (gan_core.runs.train_run.train_loop), as the CLI does; `_Job` is that loop's
hooks: orders read before each step (pause, slow-motion steps, stop, release), the server-gone check, events after.

The worker usually lives in its own process, so a training step never waits for the web server's Python (one GIL per
process) and the server never waits for a step. Orders and events are plain picklable tuples:
  orders:  ("train", run_id, path, steps, device, data_dir, paused) | (kind, run_id) for kind in pause, resume, stop,
           release (checkpoint and end "paused": the worker goes to another run), step-d, step-g, step-full | ("exit",)
  events:  ("started", run_id, info) | ("progress", run_id, records, probes, samples, checkpoint_step)
           | ("status", run_id, status) | ("end", run_id, status, message, checkpoint_step)
  info:    step (where it starts), real and modes (2D data), where ("local", "ray: <node ip>"), steps (what runs the
           steps: the stepper's `acceleration`, "cuda graphs (...)" or "eager: why")
On a Ray cluster (gan_core.runs.ray_backend) `path` is a ray_relay.RelaySeed instead, which carries what the worker
reads of the folder; the worker then writes nothing itself but sends ("store", run_id, method, args) events that the
server replays on the folder.
"""

from __future__ import annotations

import fcntl
import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from gan_core.config import ConfigError
from gan_core.data import load_digits
from gan_core.runs.folder import RunStore
from gan_core.runs.ray_relay import RelaySeed, RelayStore
from gan_core.runs.status import Status, StepKind
from gan_core.runs.tensorboard_log import summary_writer_class
from gan_core.runs.train_run import Hooks, Next, open_run, train_loop
from gan_core.train.cuda_graphs import EagerSteps
from gan_core.train.records import CheckpointError, Diverged, SampleRecord, StepResult
from gan_core.train.trainer import Trainer

log = logging.getLogger(__name__)
REAL_POINTS = 1000  # real 2D points a viewer draws behind the fakes
BATCH_SECONDS = 0.1  # a worker sends what it has at least this often: live views lag by at most this


class Channel(Protocol):
    """What a worker needs of a queue: multiprocessing.Queue in a worker process, queue.Queue in a worker thread."""

    def put(self, item: Any) -> None: ...
    def get(self, block: bool = True, timeout: float | None = None) -> Any: ...


def prewarm() -> None:
    """Pay the one-time costs of a first run before anyone presses Start: importing scikit-learn (the digits) and
    torch's compiler module (which torch.optim imports on first use) takes ~3 s on a 2-core laptop, TensorBoard's
    writer (the run folder's event files) ~0.5 s more."""
    try:
        load_digits()
        torch.optim.Adam([torch.zeros(1, requires_grad=True)])
        summary_writer_class()
    except Exception:  # only a speed-up: the run itself reports any real problem
        log.debug("prewarm failed", exc_info=True)


def real_points(trainer: Trainer) -> tuple[np.ndarray | None, np.ndarray | None]:
    """2D data: a fixed sample of real points and the mixture's modes (None for images)."""
    data = trainer.data
    if data.shape != (2,):
        return None, None
    real, _ = data.sample(REAL_POINTS, torch.Generator().manual_seed(trainer.config.seed))
    return real.numpy(), (data.modes.numpy() if data.modes is not None else None)


def serve(orders: Channel, events: Channel, torch_threads: int = 1, parent_pid: int | None = None,
          where: str = "local") -> None:
    """A worker's life: wait for a "train" order, train that run until it ends, report, wait again. `where` names the
    machine for the sidebar ("local", "ray: <node ip>")."""
    if threading.current_thread() is threading.main_thread():
        # A worker process: Ctrl-C in the server's terminal, or a service manager's SIGTERM, reaches the whole process
        # group. The server stops its workers itself (each run checkpointed at its last step), so a worker must not
        # die of the same signal. (The server ends a worker that does not exit with SIGKILL; one whose server is gone
        # exits by itself: _parent_check.)
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, signal.SIG_IGN)
    torch.set_num_threads(torch_threads)
    prewarm()
    alive = _parent_check(parent_pid)
    while alive():
        try:
            order = orders.get(timeout=1.0)
        except queue.Empty:
            continue
        if order[0] == "exit":
            return
        if order[0] == "train":
            _, run_id, path, steps, device, data_dir, paused = order
            store = path.store(events, run_id) if isinstance(path, RelaySeed) else RunStore(path)
            _Job(run_id, store, orders, events, alive, where).run(steps, device, data_dir, paused)
        # anything else is an order for a run that has already ended: nothing to do
    leave_unread(events)  # the server is gone


def leave_unread(events: Channel) -> None:
    """The server is gone, so nobody reads these events: let this process exit now rather than wait to push them into
    a full pipe (a multiprocessing queue's exit waits for its feeder thread, which waits for a reader, forever)."""
    cancel = getattr(events, "cancel_join_thread", None)
    if cancel is not None:
        cancel()


def write_error(err: OSError, folder: Path) -> str:
    """'could not write FILE: No space left on device' from a write's OSError."""
    where = err.filename or folder
    return f"could not write {where}: {err.strerror or err}"


FOLDER_WAIT_S = 30.0  # a dead server's orphaned worker checkpoints and lets go within a step or two


def hold_folder(store: RunStore, wait_s: float = FOLDER_WAIT_S) -> int | None:
    """Take the run folder's lock before training it, so two workers never train one run at once (a server that died a
    moment ago may have left one writing its last checkpoint: see gan_core.runs.sharing). Returns the descriptor that
    holds it (None for a folder another machine writes: a Ray run's relay); ConfigError if it stays held."""
    if isinstance(store, RelayStore):
        return None
    fd = os.open(store.path, os.O_RDONLY | os.O_DIRECTORY)  # the folder itself: no lock file among the run's files
    os.set_inheritable(fd, False)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except OSError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise ConfigError("run", f"another worker still trains this run after {wait_s:.0f} s; "
                                         "resume it again in a moment") from None
            time.sleep(0.1)


def _parent_check(parent_pid: int | None) -> Callable[[], bool]:
    """A worker process ends by itself when the server that started it is gone (even after a kill -9)."""
    if parent_pid is None:
        return lambda: True
    return lambda: os.getppid() == parent_pid


class _Job(Hooks):
    """One run on one worker, from its "train" order to its "end" event: the hooks of the one training loop
    (train_run.train_loop) that a dashboard run needs."""

    def __init__(self, run_id: str, store: RunStore, orders: Channel, events: Channel, alive: Callable[[], bool],
                 where: str = "local") -> None:
        self.id, self.store, self.orders, self.events, self.alive = run_id, store, orders, events, alive
        self.where = where
        self.paused = False
        self.stop = False
        self.release = False  # stop, but end "paused": the run goes on when it gets a worker again
        self.manual: list[StepKind] = []
        self.checkpoint_step = 0
        self.trainer: Trainer | None = None
        self._records: list = []
        self._probes: list = []
        self._samples: list = []
        self._sent = time.monotonic()
        self._status: Status | None = None

    def run(self, steps: int, device: str, data_dir: str | None, paused: bool) -> None:
        self.paused = paused
        held: int | None = None
        try:
            held = hold_folder(self.store)
            self._train(steps, device, data_dir)
        except Diverged as err:
            self._end(Status.DIVERGED, f"{err}; the last good checkpoint (step {self.checkpoint_step:,}) is kept")
        except (ConfigError, CheckpointError) as err:
            self._end(Status.FAILED, str(err))
        except OSError as err:
            self._end(Status.FAILED, f"{write_error(err, self.store.path)}; resuming continues from the last checkpoint "
                                     f"(step {self.checkpoint_step:,}) once that is fixed")
        except Exception as err:  # a bug: say so on the page, and keep the traceback for the server's log
            log.exception("run %s failed", self.id)
            self._end(Status.FAILED, f"unexpected error: {type(err).__name__}: {err}")
        finally:
            try:
                self.store.close()
            except OSError:  # only rows past the last checkpoint were pending: lost, but the worker lives on
                log.warning("run %s: could not write its last metrics rows", self.id, exc_info=True)
            if held is not None:
                os.close(held)  # the folder's lock goes with it

    def _train(self, steps: int, device: str, data_dir: str | None) -> None:
        store = self.store
        if not store.has_checkpoint():
            store.truncate_metrics(0)  # interrupted before its first checkpoint: start again from step 0
            store.drop_samples_after(-1)
        _, self.trainer = open_run(store, steps=steps, device=device, data_dir=data_dir)
        self.checkpoint_step = self.trainer.step_count
        train_loop(store, self.trainer, hooks=self)
        if self.stop:  # the hooks said STOP: the loop wrote a checkpoint
            self._end(Status.PAUSED if self.release else Status.STOPPED)
        else:
            self._end(Status.FINISHED)

    # -- the loop's hooks ---------------------------------------------------------------------------------------------
    def started(self, stepper: EagerSteps) -> None:
        real, modes = real_points(stepper.trainer)
        self.events.put(("started", self.id, {"step": stepper.trainer.step_count, "real": real, "modes": modes,
                                              "where": self.where, "steps": stepper.acceleration}))

    def sampled(self, samples: SampleRecord) -> None:
        self._samples.append(samples)

    def next(self, left: int) -> Next | StepKind:
        self._read_orders(block=False)
        if not self.alive():
            self.stop = True  # the server is gone (even by kill -9): checkpoint and end, rather than train for nobody
        if self.stop:
            return Next.STOP
        if self.manual:
            return self.manual.pop(0)
        if self.paused:
            self._send(force=True)
            self.store.flush()  # a paused run's rows are all on disk
            self._set_status(Status.PAUSED)
            self._read_orders(block=True)
            return Next.WAIT
        if left:  # with none left the loop ends now: no "running" between "paused" and "finished"
            self._set_status(Status.RUNNING)
        return Next.STEP

    def stepped(self, result: StepResult | None, manual: StepKind | None) -> bool | None:
        if result is not None:
            self._records.append(result.record)
            if result.probe is not None:
                self._probes.append(result.probe)
            if result.samples is not None:
                self._samples.append(result.samples)
        if manual is None:
            self._send()
            return None
        # a slow-motion step: its effect is shown at once, with a fresh snapshot of G's samples and D's field
        trainer = self.trainer
        assert trainer is not None
        if not self._samples or self._samples[-1].step != trainer.step_count or manual is StepKind.D:
            self._samples.append(trainer.snapshot())
            self.store.save_samples(self._samples[-1])  # for the app processes that read the run from its folder
        self.store.flush()
        self._send(force=True)
        return None

    def checkpointed(self, step: int) -> None:
        self.checkpoint_step = step

    def _send(self, force: bool = False) -> None:
        now = time.monotonic()
        if not (force or self._samples or now - self._sent >= BATCH_SECONDS):
            return
        if self._records or self._probes or self._samples or force:
            self.events.put(("progress", self.id, self._records, self._probes, self._samples, self.checkpoint_step))
            self._records, self._probes, self._samples = [], [], []
        self._sent = now

    def _set_status(self, status: Status) -> None:
        if status is not self._status:
            self._status = status
            self.events.put(("status", self.id, status))

    def _end(self, status: Status, message: str = "") -> None:
        self._send(force=True)
        self.events.put(("end", self.id, status, message, self.checkpoint_step))

    def _read_orders(self, block: bool) -> None:
        """Apply every waiting order for this run; with `block`, wait (checking the server is alive) for at least one."""
        while True:
            try:
                order = self.orders.get(block=block, timeout=1.0 if block else None)
            except queue.Empty:
                if block and self.alive():
                    continue
                return
            block = False
            kind, run_id = order[0], order[1] if len(order) > 1 else None
            if kind == "exit":
                self.stop = True
            elif run_id != self.id:
                continue  # an order for a run this worker no longer trains
            elif kind == "pause":
                self.paused = True
            elif kind == "resume":
                self.paused = False
            elif kind == "stop":
                self.stop, self.release = True, False
            elif kind == "release":
                self.stop, self.release = True, not self.stop
            elif kind.startswith("step-"):
                self.manual.append(StepKind(kind.removeprefix("step-")))
