"""Runs on a Ray cluster: the RunManager's second backend, beside the local worker processes (gan_core.runs.processes).

Each run that gets a slot trains in its own Ray actor (one CPU; one GPU when the manager's device is cuda), which runs
the same loop as a local worker (gan_core.runs.worker.serve) and sends the same events. The cluster shares no files with
the server: the "train" order carries a ray_relay.RelaySeed, and the actor's writes come back as "store" events that the
server replays on the run folder (gan_core.runs.ray_relay).

The server never imports ray. A RayPool spawns one driver process (gan_core.runs.ray_driver) that joins the cluster and
keeps the actors, and talks to it through queues, as the local pool talks to its workers. When the driver finds the
cluster gone, or Ray ends the driver (it does, ~60 s after the cluster's head goes away), the pool fails the runs it
had with one line ("the Ray cluster at ADDR went away"), refuses Ray starts with that line, and keeps asking: a quick
TCP connect every PROBE_S, and a new driver once the address answers (at most every RETRY_S), so a cluster that comes
back is used again without a restart. An actor (or its node) that dies fails its run; Resume starts a new actor from the
last checkpoint the server holds.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing.connection
import os
import queue
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gan_core.config import ConfigError
from gan_core.runs.folder import RunStore
from gan_core.runs.processes import SPAWN, receive, spawn
from gan_core.runs.ray_driver import CONNECT_TIMEOUT_S, RESUMABLE, RayUnavailable, drive, went_away
from gan_core.runs.ray_relay import RelaySeed, replay
from gan_core.runs.status import Status
from gan_core.runs.worker import write_error
from gan_core.train.records import CheckpointError

__all__ = ["ENV_ADDRESS", "RayPool", "RayUnavailable", "RayWorker", "address_from"]
log = logging.getLogger(__name__)
ENV_ADDRESS = "GAN_RAY_ADDRESS"
PROBE_S = 5.0  # while the cluster is away, how often its address is knocked on (a TCP connect: cheap)
GONE_KNOCKS = 2  # a joined cluster whose address refuses this many knocks in a row (PROBE_S apart) has gone away
RETRY_S = 30.0  # at most this often a new driver process is spawned to join it (importing ray: seconds of CPU)
DRAIN_S = 5.0  # after a driver ended, how long its last events may take to read before its runs end regardless
FIRST_WAIT_S = CONNECT_TIMEOUT_S + 60.0  # the first driver: spawning, importing ray and torch, joining


def address_from(value: str | None) -> str | None:
    """The Ray address to use: `value`, else GAN_RAY_ADDRESS; None (local worker processes) when both are empty."""
    text = (os.environ.get(ENV_ADDRESS, "") if value is None else value).strip()
    return text or None


def _check_reachable(address: str, timeout: float = 3.0) -> None:
    """A quick TCP connect to host:port, so a wrong address fails in seconds ("auto" is found by ray.init itself)."""
    if address == "auto" or address.startswith("local"):
        return
    parts = urlsplit(address if "://" in address else f"ray://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if not host or not port:
        raise RayUnavailable(f"{address!r} is not a Ray address: use auto, host:port or ray://host:port")
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as err:
        raise RayUnavailable(f"the Ray cluster at {address} cannot be reached: {err.strerror or err}") from None


class _Driver:
    """One driver process and its queues; `ready` is set once it has joined the cluster or said why it cannot."""

    def __init__(self, address: str) -> None:
        self.orders: Any = SPAWN.Queue()
        self.events: Any = SPAWN.Queue()
        self.process = spawn(drive, (address, self.orders, self.events, os.getpid()), "gan-ray-driver")
        self.ready = threading.Event()
        self.joined = False  # it joined the cluster: its end means the cluster went away

    def end(self, wait: float) -> None:
        """Ask it to exit, then end it if it has not within `wait` seconds."""
        if self.process.is_alive():
            self.orders.put(("exit",))
            self.process.join(wait)
        if self.process.is_alive():
            self.process.kill()  # a driver whose cluster is gone can hang in Ray's own exit
            self.process.join(5.0)


class RayWorker:
    """A run slot on the cluster: one run, from its "train" order to its "end" event, trained by an actor the driver
    keeps. Quacks like processes.Worker for the RunManager."""

    def __init__(self, pool: RayPool, slot: int) -> None:
        self.pool, self.slot = pool, slot
        self.run_id: str | None = None
        self.finished = False  # its run ended or its actor died: the pool forgets it
        self.actor_pid: int | None = None  # its actor's process, once it has answered
        self.driver: _Driver | None = None  # the driver that trains it, once it has its "train" order
        self._outbox: queue.Queue = queue.Queue()
        self._dead = ""  # why its actor is gone
        self._checkpoint_step = 0  # the newest checkpoint written to the folder
        self._store: RunStore | None = None
        self._thread: threading.Thread | None = None

    def send(self, *order: Any) -> None:
        """Never blocks: the worker's thread forwards it (the manager sends holding its locks)."""
        self._outbox.put(order)
        if self._thread is None:
            self._thread = threading.Thread(target=self._forward, name="gan-ray-worker", daemon=True)
            self._thread.start()

    def alive(self) -> bool:
        return not self._dead

    def death_reason(self) -> str:
        return self._dead

    def _forward(self) -> None:
        """Read the run's seed (off the manager's locks), then hand the driver this run's orders until it ends."""
        order = self._outbox.get()
        if order[0] != "train":
            self.finished = True
            return
        _, run_id, path, steps, device, data_dir, paused = order
        try:
            self.pool.check()
            seed = RelaySeed.read(path)
        except (RayUnavailable, ConfigError, CheckpointError) as err:
            return self._end_early(run_id, str(err))
        except OSError as err:
            return self._end_early(run_id, f"cannot read the run folder: {write_error(err, Path(path))}")
        self._store = RunStore(path)
        self.pool.order(self, ("train", self.slot, run_id, seed, steps, device, data_dir, paused))
        while not self.finished:
            order = self._outbox.get()
            if order is not None and not self.finished:
                self.pool.order(self, ("order", self.slot, order))

    def on_message(self, message: tuple) -> None:
        """What the driver said about this slot (from the pool's receiver thread)."""
        if self.finished:
            return  # late words of a run that has ended here
        if message[0] == "actor":
            self.actor_pid = message[2]
        elif message[0] == "died":
            self._die(message[2])
        elif message[0] == "event":
            self._apply(message[2])

    def _apply(self, event: tuple) -> None:
        """Replay a "store" event on the folder, or pass any other to the manager."""
        store = self._store
        assert store is not None, "events before the train order"
        if event[0] == "store":
            try:
                replay(store, event)
            except OSError as err:  # as a local worker's own write would: the run fails, its last checkpoint kept
                self.pool.order(self, ("kill", self.slot))
                self._end_early(event[1], f"{write_error(err, store.path)}; resuming continues from the last "
                                          f"checkpoint (step {self._checkpoint_step:,}) once that is fixed",
                                self._checkpoint_step)
            return
        if event[0] == "progress":
            self._checkpoint_step = event[5]  # replayed before this event: the folder holds it
        if event[0] == "end":
            store.close()  # its pending rows and newest probe reach the folder before the manager reads it
        self.pool.on_event(event, self)
        if event[0] == "end":
            self._finish()

    def _end_early(self, run_id: str, message: str, checkpoint_step: int = 0) -> None:
        self.pool.on_event(("end", run_id, Status.FAILED, message, checkpoint_step), self)
        self._finish()

    def _die(self, reason: str) -> None:
        if self.finished:
            return
        self._dead = reason
        self._finish()
        self.pool.on_death(self)

    def _finish(self) -> None:
        self.finished = True
        self._outbox.put(None)  # wakes _forward, which then ends
        if self._store is not None:
            self._store.close()


class RayPool:
    """Run slots on a Ray cluster (as many as its CPUs, or `size`), through a driver process (see the module
    docstring); quacks like processes.WorkerPool."""

    def __init__(self, address: str, size: int | None, on_event: Callable[[tuple, Any], None],
                 on_death: Callable[[Any], None]) -> None:
        self.address = address
        self.on_event, self.on_death = on_event, on_death
        self._lock = threading.Lock()
        self.workers: list[RayWorker] = []
        self._slots = itertools.count()
        self._fixed_size = size
        self.size = size if size is not None else 1  # the cluster's CPUs, once the driver has joined it
        self.problem = ""  # why runs cannot start on the cluster now ("" when they can)
        self.closed = False
        self._driver: _Driver | None = None
        self._probed = self._spawned = -RETRY_S  # time.monotonic() of the last knock and the last driver
        self._refused = 0  # knocks in a row the address of a joined cluster refused
        self._knocking = threading.Lock()  # one knock (and so one new driver) at a time
        driver = self._connect()
        if driver is not None:  # the first page, or the CLI, hears at once whether the cluster is there
            if not driver.ready.wait(FIRST_WAIT_S):
                self.problem = f"the Ray cluster at {address} did not answer within {FIRST_WAIT_S:.0f} s"
        threading.Thread(target=self._keep, name="gan-ray-keep", daemon=True).start()

    # -- the driver process --------------------------------------------------------------------------------------------
    def _connect(self) -> _Driver | None:
        """Knock on the address; if it answers, spawn a driver to join it (which says "ready" when it has)."""
        self._probed = time.monotonic()
        try:
            _check_reachable(self.address)
        except RayUnavailable as err:
            if not self.problem:  # keep "went away": the knock failing is the same news
                self.problem = str(err)
            return None
        self._spawned = time.monotonic()
        driver = self._driver = _Driver(self.address)
        threading.Thread(target=self._receive, args=(driver,), name="gan-ray-events", daemon=True).start()
        return driver

    def _keep(self) -> None:
        """While the cluster is away: knock every PROBE_S, and spawn a new driver (at most every RETRY_S) once its
        address answers."""
        while not self.closed:
            time.sleep(1.0)
            self._knock(soon=False)
            self._watch()

    def _watch(self) -> None:
        """While a driver has joined the cluster, knock every PROBE_S too: an address that refuses GONE_KNOCKS in a row
        has gone away. Ray's own news of a dead head reaches the driver within a minute, or, on a loaded machine, not
        at all: once in CI a run still read "running" 90 s after its head's kill -9. A head that is only slow still
        accepts a connection (the kernel does), so load alone never trips this."""
        driver, now = self._driver, time.monotonic()
        if driver is None or not driver.joined or self.problem or self.closed or now - self._probed < PROBE_S:
            return
        self._probed = now
        try:
            _check_reachable(self.address)
        except RayUnavailable:
            self._refused += 1
            if self._refused >= GONE_KNOCKS:
                self._refused = 0
                self.lost(driver, went_away(self.address))
        else:
            self._refused = 0

    def _knock(self, soon: bool) -> None:
        """Knock if the cluster is away and no driver is joining it; `soon`: a start asked, so RETRY_S is not waited."""
        if not self._knocking.acquire(blocking=False):
            return
        try:
            now = time.monotonic()
            if (self.problem and self._driver is None and not self.closed and now - self._probed >= PROBE_S
                    and (soon or now - self._spawned >= RETRY_S)):
                self._connect()
        finally:
            self._knocking.release()

    def _receive(self, driver: _Driver) -> None:
        """Apply the driver's events until it has ended and what it sent is read, then end its runs (_ended)."""
        reader = threading.Thread(target=receive, args=(driver.events, driver.process.is_alive,
                                                        lambda message: self._message(driver, message)),
                                  name="gan-ray-events-read", daemon=True)
        reader.start()
        # Waiting on the process's sentinel, not joining it: a second join races end()'s for its exit status. A driver
        # killed mid-write leaves half a message in its events pipe, and the read then waits for the rest forever (CI:
        # a run still "running" 90 s after its cluster went away): its runs end DRAIN_S after it did, read or not.
        multiprocessing.connection.wait([driver.process.sentinel])
        reader.join(DRAIN_S)
        self._ended(driver)

    def _message(self, driver: _Driver, message: tuple) -> None:
        kind = message[0]
        if kind == "ready":
            driver.joined = True
            if self._fixed_size is None:
                self.size = max(1, message[1])
            self.problem = ""
            driver.ready.set()
        elif kind == "unavailable":
            self.problem = message[1]
            driver.ready.set()
            threading.Thread(target=driver.end, args=(5.0,), daemon=True).start()  # the receiver then sees it end
        else:
            with self._lock:
                worker = next((w for w in self.workers if w.slot == message[1]), None)
            if worker is not None:
                worker.on_message(message)
            if kind == "died" and message[3]:  # the cluster is gone: this driver's other runs with it
                self.lost(driver, message[2].removesuffix(RESUMABLE))

    def lost(self, driver: _Driver, reason: str) -> None:
        """The cluster is gone: refuse new runs with `reason` and end the driver (its runs fail as it ends)."""
        self.problem = reason
        threading.Thread(target=driver.end, args=(2.0,), daemon=True).start()

    def _ended(self, driver: _Driver) -> None:
        """A driver process has ended and all it sent is read: its unfinished runs fail, and a new one is tried later
        (_keep)."""
        driver.ready.set()
        if self.closed:  # ended by exit(): its runs were told to stop, as a local worker's are at shutdown
            return
        if not self.problem:  # Ray ended it, or it crashed, before it said why
            self.problem = went_away(self.address) if driver.joined else (
                f"the process joining the Ray cluster at {self.address} ended (exit code {driver.process.exitcode})")
        with self._lock:
            if self._driver is driver:
                self._driver = None
            orphans = [w for w in self.workers if w.driver is driver and not w.finished]
        for worker in orphans:
            worker._die((self.problem or went_away(self.address)) + RESUMABLE)

    def order(self, worker: RayWorker, order: tuple) -> None:
        """Hand the driver an order for `worker`'s slot; with no driver, the worker's run fails with the reason."""
        with self._lock:
            driver = self._driver
            if driver is not None and driver.process.is_alive() and order[0] == "train":
                worker.driver = driver
        if driver is None or worker.driver is not driver or not driver.process.is_alive():
            if order[0] != "kill":  # the run is ending anyway
                worker._die((self.problem or went_away(self.address)) + RESUMABLE)
            return
        driver.orders.put(order)

    # -- what the RunManager asks ----------------------------------------------------------------------------------------
    def unavailable(self) -> str:
        """Why runs cannot train on the cluster now ("" when they can). While it is away, a start also knocks on its
        address (at most every PROBE_S, in the background: the manager asks holding its lock), so a cluster that is
        back is joined without waiting for the next RETRY_S."""
        if self.problem and self._driver is None and not self.closed:
            threading.Thread(target=self._knock, args=(True,), name="gan-ray-knock", daemon=True).start()
        return self.problem

    def check(self) -> None:
        """Raise RayUnavailable if runs cannot train on the cluster now."""
        problem = self.unavailable()
        if problem:
            raise RayUnavailable(problem)

    def idle(self) -> RayWorker | None:
        with self._lock:
            self.workers = [w for w in self.workers if not (w.finished and w.run_id is None)]
            if sum(1 for w in self.workers if w.run_id is not None) >= self.size:
                return None
            worker = RayWorker(self, next(self._slots))
            self.workers.append(worker)
            return worker

    def idle_count(self) -> int:
        return max(0, self.size - len(self.busy()))

    def busy(self) -> list[RayWorker]:
        with self._lock:
            return [w for w in self.workers if w.run_id is not None]

    def abandon(self) -> None:
        """End the driver now, and with it the actors training on the cluster (this process no longer trains)."""
        self.closed = True
        driver = self._driver
        if driver is not None:
            driver.end(1.0)

    def exit(self, deadline: float) -> None:
        """Every run has been told to stop: wait for their last events until `deadline`, then end the driver (Ray ends
        the actors it still had with it)."""
        while any(not w.finished for w in self.busy()) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.closed = True
        driver = self._driver
        if driver is not None:
            driver.end(max(1.0, deadline - time.monotonic()))
