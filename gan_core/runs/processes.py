"""The processes (or threads) that train the dashboard's runs: one per run slot, each with its own queues.

gan_core.runs.manager.RunManager owns them: it sends orders ("train", "pause", "step", …) and applies the events each sends
back. The training loop itself is gan_core.runs.worker.serve.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import sys
import threading
import types
from collections.abc import Iterator
from typing import Any

from gan_core.config import ConfigError
from gan_core.runs.worker import serve

_MAIN_LOCK = threading.Lock()


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


class Worker:
    """A worker process (or thread) and the run it is training, if any.

    Each worker has its own orders and events queues: a process killed while writing to a queue can leave that queue's
    lock held (or half a message in it), which must cost only the dead worker's queues, never the other workers'.
    """

    def __init__(self, index: int, processes: bool, torch_threads: int) -> None:
        self.index = index
        self.run_id: str | None = None
        if processes:
            ctx = multiprocessing.get_context("spawn")  # never fork a server that has threads
            self.orders: Any = ctx.Queue()
            self.events: Any = ctx.Queue()
            self.handle: Any = ctx.Process(target=serve, args=(self.orders, self.events, torch_threads, os.getpid()),
                                           name=f"gan-worker-{index}", daemon=True)
            with _bare_main():
                self.handle.start()
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
