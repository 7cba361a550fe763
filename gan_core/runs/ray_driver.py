"""The Ray driver: a child process of the dashboard's server that joins a Ray cluster and keeps a run's actor per slot.

Why a child process: a process that has called ray.init belongs to that cluster. When the cluster's head goes away,
Ray's core worker ends the whole process about 60 s later ("Failed to connect to GCS within 60 seconds ... The program
will terminate"), and ray.init joins one cluster once per process. So the server never imports ray: its RayPool
(gan_core.runs.ray_backend) spawns `drive` and talks to it through two queues; when this process finds the cluster
gone, or Ray ends it, the server fails its runs with one line and later spawns a new driver, which joins afresh.

Messages, plain picklable tuples:
  orders:  ("train", slot, run_id, seed, steps, device, data_dir, paused) | ("order", slot, order) | ("kill", slot)
           | ("exit",)
  events:  ("ready", cpus) | ("unavailable", reason) | ("actor", slot, pid) | ("event", slot, worker_event)
           | ("died", slot, reason, cluster_gone)
A slot is one run's actor; worker_event is what the actor's loop (gan_core.runs.worker.serve) sent, "store" events
included: the server replays those on its run folder. Every Ray call here has a timeout, so a silent cluster costs a
failed run with the reason, never a hung page.

Ray is optional: it is imported only inside the functions that run in this process or on the cluster.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
from pathlib import Path
from typing import Any

from gan_core.runs.worker import Channel, leave_unread, serve

log = logging.getLogger(__name__)
CONNECT_TIMEOUT_S = 30.0  # ray.init to a cluster that does not answer retries for minutes: give up sooner
CALL_TIMEOUT_S = 10.0  # any one call to an actor: an order, an event poll
POLL_WAIT_S = 0.5  # an actor holds a poll this long for events: live views lag by at most this, plus the network
START_TIMEOUT_S = 120.0  # a new actor's first answer: scheduling, the gan_core upload, importing torch
SILENT_LIMIT_S = 30.0  # a running actor that answers no poll for this long is taken for lost with its cluster
# an actor whose run ended waits this long for the next one (a sweep's next cell then skips starting a Ray worker
# process and importing torch, ~10 s), then gives its CPU back to the cluster's other users
IDLE_KEEP_S = 60.0
RESUMABLE = "; resume continues from the last checkpoint"


class RayUnavailable(ConnectionError):
    """The cluster cannot be used: one line saying why."""


def went_away(address: str) -> str:
    """The one line for a cluster that answered before and no longer does."""
    return f"the Ray cluster at {address} went away"


def drive(address: str, orders: Channel, events: Channel, parent_pid: int) -> None:
    """The driver process's life: join the cluster, say so, then run slots on orders until "exit" or the server is
    gone."""
    for number in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C or a service manager's stop: the server ends us itself
        signal.signal(number, signal.SIG_IGN)
    try:
        ray = _connect(address)
        events.put(("ready", cluster_cpus(ray)))
    except RayUnavailable as err:
        events.put(("unavailable", str(err)))  # the server ends this process once it has read this
        return
    slots: dict[int, _Slot] = {}
    actors = _Actors(ray)
    while os.getppid() == parent_pid:  # even after a kill -9 of the server, this process ends by itself
        try:
            order = orders.get(timeout=1.0)
        except queue.Empty:
            actors.reap()
            slots = {index: slot for index, slot in slots.items() if slot.thread.is_alive()}
            continue
        if order[0] == "exit":
            break
        if order[0] == "train":
            slots[order[1]] = _Slot(ray, address, order[1], events, actors, order[2:])
        elif order[1] in slots:  # "order" or "kill"
            slots[order[1]].outbox.put(order[2] if order[0] == "order" else None)
    if os.getppid() != parent_pid:  # a kill -9 of the server: end the actors, then the process, unheard
        # (found by tests/test_ray_backend.py's kill -9 test: the process hung at exit, its actors ended)
        leave_unread(events)
    for slot in slots.values():
        slot.outbox.put(None)
    for slot in slots.values():
        slot.thread.join(CALL_TIMEOUT_S)
    actors.reap(keep_s=0.0)


def _connect(address: str) -> Any:
    """Join the cluster at `address`, shipping gan_core to its workers; returns the ray module. Raises RayUnavailable
    within about CONNECT_TIMEOUT_S."""
    try:
        import ray  # noqa: PLC0415 - Ray is optional: only the driver process and the cluster import it
    except ImportError:
        raise RayUnavailable('Ray is not installed: pip install "ray[default]" to train on a cluster') from None
    failure: list[BaseException] = []
    done = threading.Event()

    def init() -> None:
        try:
            package = str(Path(__file__).resolve().parents[1])  # gan_core: the cluster's workers need not have it
            ray.init(address=address, runtime_env={"py_modules": [package]}, log_to_driver=False,
                     logging_level=logging.WARNING)
        except Exception as err:  # noqa: BLE001 - ray.init raises many types; each becomes the one-line reason
            failure.append(err)
        finally:
            done.set()

    threading.Thread(target=init, name="gan-ray-connect", daemon=True).start()
    if not done.wait(CONNECT_TIMEOUT_S):
        raise RayUnavailable(f"the Ray cluster at {address} did not answer within {CONNECT_TIMEOUT_S:.0f} s")
    if failure:
        first = (str(failure[0]).strip().splitlines() or [type(failure[0]).__name__])[0]
        raise RayUnavailable(f"cannot connect to the Ray cluster at {address}: {first[:200]}")
    return ray


def cluster_cpus(ray: Any) -> int:
    """The cluster's CPUs, asked with a timeout."""
    answer: list[int] = []
    thread = threading.Thread(target=lambda: answer.append(int(ray.cluster_resources().get("CPU", 1))), daemon=True)
    thread.start()
    thread.join(CALL_TIMEOUT_S)
    if not answer:
        raise RayUnavailable("the Ray cluster did not say how many CPUs it has")
    return answer[0]


class RunActor:
    """The body of a run's Ray actor: the local worker's loop (serve) between two in-memory queues, which the driver
    fills (`order`) and drains (`poll`)."""

    def __init__(self) -> None:
        self.orders: queue.Queue = queue.Queue()
        self.events: queue.Queue = queue.Queue()

    def serve(self) -> None:
        import ray  # noqa: PLC0415 - Ray is optional (this runs on a cluster node)

        serve(self.orders, self.events, 1, None, where=f"ray: {ray.util.get_node_ip_address()}")

    def order(self, orders: list[tuple]) -> int:
        """Queue the orders; returns this actor's process id (a test kills it by that, as a crash would)."""
        for order in orders:
            self.orders.put(order)
        return os.getpid()

    def poll(self, wait: float) -> list[tuple]:
        """The events sent since the last poll; waits up to `wait` seconds for the first."""
        try:
            out = [self.events.get(timeout=wait)]
        except queue.Empty:
            return []
        while True:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                return out


class _Actors:
    """Actors whose run ended, kept IDLE_KEEP_S for the next run on the same kind of device; the newest is taken
    first (the warmest, and the last to be reaped)."""

    def __init__(self, ray: Any) -> None:
        self.ray = ray
        self._idle: list[tuple[str, Any, Any, float]] = []  # (device, actor, its serve() call, idle since)
        self._lock = threading.Lock()

    def take(self, device: str) -> tuple[Any, Any]:
        """An idle actor for `device` whose loop still runs, else a new one; with its serve() call."""
        while True:
            with self._lock:
                found = next((i for i in reversed(range(len(self._idle))) if self._idle[i][0] == device), None)
                entry = self._idle.pop(found) if found is not None else None
            if entry is None:
                break
            _, actor, serving, _ = entry
            ready, _ = self.ray.wait([serving], timeout=0)
            if not ready:  # its loop still waits for a run (one that ended holds an error, or its node is gone)
                return actor, serving
            self._kill(actor)
        cls = self.ray.remote(RunActor).options(num_cpus=1, num_gpus=1 if device == "cuda" else 0, max_concurrency=3)
        actor = cls.remote()
        return actor, actor.serve.remote()

    def give(self, device: str, actor: Any, serving: Any) -> None:
        with self._lock:
            self._idle.append((device, actor, serving, time.monotonic()))

    def reap(self, keep_s: float = IDLE_KEEP_S) -> None:
        """Kill the actors idle for longer than `keep_s`."""
        now = time.monotonic()
        with self._lock:
            old = [e for e in self._idle if now - e[3] >= keep_s]
            self._idle = [e for e in self._idle if now - e[3] < keep_s]
        for _, actor, _, _ in old:
            self._kill(actor)

    def _kill(self, actor: Any) -> None:
        try:
            self.ray.kill(actor)
        except Exception:  # a cluster that is gone has killed it already
            log.debug("could not kill a Ray actor", exc_info=True)


class _Slot:
    """One run on an actor, from its "train" order to its "end" event (then the actor waits for the next run: _Actors),
    with the thread that forwards its orders and long-polls its events. A None in the outbox ends it early, killing
    its actor (its run is mid-way)."""

    def __init__(self, ray: Any, address: str, index: int, events: Channel, actors: _Actors, train: tuple) -> None:
        self.ray, self.address, self.index, self.events, self.actors = ray, address, index, events, actors
        self.outbox: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._life, args=(train,), name=f"gan-ray-slot-{index}", daemon=True)
        self.thread.start()

    def _life(self, train: tuple) -> None:
        ray = self.ray
        run_id, seed, steps, device, data_dir, paused = train
        actor = None
        try:
            actor, serving = self.actors.take(device)
            outbox: list[tuple] = [("train", run_id, seed, steps, device, data_dir, paused)]
            started = False
            last_answer = time.monotonic()
            while True:
                while not self.outbox.empty():
                    order = self.outbox.get_nowait()
                    if order is None:
                        return
                    outbox.append(order)
                if outbox:
                    pid = ray.get(actor.order.remote(outbox), timeout=CALL_TIMEOUT_S if started else START_TIMEOUT_S)
                    if not started:
                        self.events.put(("actor", self.index, pid))
                    outbox, started = [], True
                try:
                    answer = ray.get(actor.poll.remote(POLL_WAIT_S), timeout=CALL_TIMEOUT_S)
                except ray.exceptions.GetTimeoutError:
                    if time.monotonic() - last_answer > SILENT_LIMIT_S:
                        raise RayUnavailable(f"{went_away(self.address)} (no answer for {SILENT_LIMIT_S:.0f} s)") \
                            from None
                    continue
                last_answer = time.monotonic()
                for event in answer:
                    self.events.put(("event", self.index, event))
                    if event[0] == "end":  # its loop waits for the next run: the actor is kept for one
                        self.actors.give(device, actor, serving)
                        actor = None
                        return
                ready, _ = ray.wait([serving], timeout=0)
                if ready:
                    ray.get(serving, timeout=CALL_TIMEOUT_S)  # it returned: raises the actor's error
                    raise RuntimeError("the Ray actor's loop ended without ending its run")
        except Exception as err:  # noqa: BLE001 - Ray reports a lost actor, node or cluster as many types
            gone = isinstance(err, RayUnavailable) or not self._answers()
            reason = (str(err) if isinstance(err, RayUnavailable) else went_away(self.address)) if gone else _death(err)
            self.events.put(("died", self.index, reason + RESUMABLE, gone))
        finally:
            if actor is not None:
                self.actors._kill(actor)

    def _answers(self) -> bool:
        """Whether the cluster answers now (asked with a timeout)."""
        try:
            cluster_cpus(self.ray)
        except Exception:  # noqa: BLE001 - a cluster that is gone fails in many ways; each means no
            return False
        return True


def _death(err: BaseException) -> str:
    """The one-line reason a run failed when its actor or node died and the cluster still answers."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    # Ray's messages are paragraphs; the useful sentence is the one that says why the actor died
    reason = next((line for line in lines if "died" in line or "killed" in line or "lost" in line), None)
    return f"its Ray actor died: {(reason or (lines[0] if lines else type(err).__name__))[:240]}"
