"""The processes (or threads) that train the dashboard's runs: one per run slot, each with its own queues.

gan_core.runs.manager.RunManager owns a WorkerPool: it sends orders ("train", "pause", "step", …) to a worker, and the
pool hands every event a worker sends back, and every worker that died, to the manager's callbacks. The training loop
itself is gan_core.runs.worker.serve.

Processes, not threads, by measurement on 2 CPU cores: a training thread in the Streamlit server queued for the GIL
behind the pages (one open Training page cut digits from ~130 to ~30 steps/s), and a crash in a process cannot take the
server down.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from typing import Any

from gan_core.config import ConfigError
from gan_core.runs.worker import serve

log = logging.getLogger(__name__)
_MAIN_LOCK = threading.Lock()
SPAWN = multiprocessing.get_context("spawn")  # never fork a server that has threads


@contextlib.contextmanager
def _bare_main() -> Iterator[None]:
    """Start a spawned process without it re-running our __main__.

    A spawned child imports the parent's __main__ file to find its target. Under `streamlit run`, __main__ is the page
    script being run (dashboard.py), which would build a RunManager in the child; the target lives in gan_core, so the
    child needs no main module at all.
    """
    with _MAIN_LOCK:
        saved = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            if saved is not None:
                sys.modules["__main__"] = saved


def spawn(target: Callable[..., None], args: tuple, name: str) -> multiprocessing.process.BaseProcess:
    """Start `target(*args)` in a new daemon process (spawned, without our __main__: see _bare_main)."""
    handle = SPAWN.Process(target=target, args=args, name=name, daemon=True)
    with _bare_main():
        handle.start()
    return handle


def receive(events: Any, alive: Callable[[], bool], apply: Callable[[tuple], None]) -> None:
    """Apply what a process sends on `events`, in order, until it has ended (`alive()` false) and all it sent is read.
    A message that cannot be applied is logged and skipped: the runs behind the rest depend on them."""
    while True:
        running = alive()  # before the read: once it is dead, an empty queue means nothing more will come
        try:
            message = events.get(timeout=0.5)
        except queue.Empty:
            if running:
                continue
            return
        except (EOFError, OSError):
            return
        try:
            apply(message)
        except Exception:
            log.exception("could not apply %r", message[:2])


class Worker:
    """A worker process (or thread) and the run it is training, if any.

    Each worker has its own orders and events queues: a process killed while writing to a queue can leave that queue's
    lock held (or half a message in it), which must cost only the dead worker's queues, never the other workers'.
    """

    def __init__(self, index: int, processes: bool, torch_threads: int) -> None:
        self.index = index
        self.run_id: str | None = None
        if processes:
            self.orders: Any = SPAWN.Queue()
            self.events: Any = SPAWN.Queue()
            self.handle: Any = spawn(serve, (self.orders, self.events, torch_threads, os.getpid()),
                                     f"gan-worker-{index}")
        else:
            self.orders, self.events = queue.Queue(), queue.Queue()
            self.handle = threading.Thread(target=serve, args=(self.orders, self.events, torch_threads), daemon=True,
                                           name=f"gan-worker-{index}")
            self.handle.start()

    def send(self, *order: Any) -> None:
        self.orders.put(order)

    def alive(self) -> bool:
        return self.handle.is_alive()

    def exit_code(self) -> int | None:
        return getattr(self.handle, "exitcode", None)

    def death_reason(self) -> str:
        """Why its run failed, once it has died."""
        return (f"the training process stopped unexpectedly (exit code {self.exit_code()}); "
                "resume continues from the last checkpoint")


class WorkerPool:
    """`size` workers, kept that many: a receiver thread per worker applies its events (`on_event(event, worker)`), and a
    watcher replaces a worker that died, then calls `on_death(dead_worker)` to deal with its run."""

    def __init__(self, size: int, processes: bool | None, torch_threads: int, on_event: Callable[[tuple, Worker], None],
                 on_death: Callable[[Worker], None]) -> None:
        if processes is None:  # threads only where asked: see the module docstring
            processes = os.environ.get("GAN_WORKERS", "processes").strip().lower() != "threads"
        self.size, self.processes, self._torch_threads = size, processes, torch_threads
        self._on_event, self._on_death = on_event, on_death
        self._lock = threading.Lock()
        self.closed = False
        # started now, so they have imported torch before anyone presses Start
        self.workers = [self._new(i) for i in range(size)]
        threading.Thread(target=self._watch, name="gan-watch", daemon=True).start()

    def idle(self) -> Worker | None:
        """A live worker that trains nothing, if any."""
        with self._lock:
            return next((w for w in self.workers if w.run_id is None and w.alive()), None)

    def idle_count(self) -> int:
        with self._lock:
            return sum(1 for w in self.workers if w.run_id is None and w.alive())

    def unavailable(self) -> str:
        """Why runs cannot start ("" when they can): local processes always can (the Ray pool's may not)."""
        return ""

    def busy(self) -> list[Worker]:
        with self._lock:
            return [w for w in self.workers if w.run_id is not None]

    def exit(self, deadline: float) -> None:
        """Tell every worker to exit and wait for them until `deadline` (time.monotonic()); terminate what is left."""
        self.closed = True
        with self._lock:
            workers = list(self.workers)
        for w in workers:
            w.send("exit")
        # the runs have ended (or the time is up): an idle worker reads "exit" within a second, and one still starting
        # up (a replacement importing torch) holds nothing worth waiting for
        exit_by = min(deadline, time.monotonic() + 2.0)
        for w in workers:
            w.handle.join(max(0.1, exit_by - time.monotonic()))
            if w.alive() and self.processes:
                w.handle.kill()  # SIGKILL: a worker ignores SIGTERM (the group's stop signal, see worker.serve)

    def abandon(self) -> None:
        """End every worker now, saying nothing to the runs' folders (this process no longer trains: another carries
        the runs on from their checkpoints). A process is killed; a thread is told to exit (it ends its run at its next
        step, and its last word is not applied: gan_core.runs.sharing.step_down)."""
        self.closed = True  # no replacements, no run failed for a death
        with self._lock:
            workers = list(self.workers)
        for w in workers:
            if self.processes:
                w.handle.kill()
            else:
                w.send("exit")
        for w in workers:
            w.handle.join(2.0)

    def _new(self, index: int) -> Worker:
        worker = Worker(index, self.processes, self._torch_threads)
        threading.Thread(target=self._receive, args=(worker,), name=f"gan-events-{index}", daemon=True).start()
        return worker

    def _receive(self, worker: Worker) -> None:
        """Apply one worker's events, until that worker has ended and all it sent is read."""
        receive(worker.events, worker.alive, lambda event: self._on_event(event, worker))

    def _watch(self) -> None:
        """Notice a worker that died (out of memory, killed) and replace it."""
        while not self.closed:
            time.sleep(0.5)
            for i, w in enumerate(list(self.workers)):
                if w.alive() or self.closed:
                    continue
                with self._lock:
                    self.workers[i] = self._new(i)
                self._on_death(w)  # after the replacement: the dead worker's run ends, and the queue can move on


def default_max_runs() -> int:
    """GAN_MAX_RUNS, else one run per core beyond the one the server keeps for itself (at least one)."""
    text = os.environ.get("GAN_MAX_RUNS", "").strip()
    if text:
        try:
            value = int(text)
        except ValueError:
            raise ConfigError("GAN_MAX_RUNS", f"{text!r} is not a whole number") from None
        if value < 1:
            raise ConfigError("GAN_MAX_RUNS", f"{value} is below 1")
        return value
    return max(1, (os.cpu_count() or 2) - 1)
