"""Runs on a Ray cluster: the RunManager's second backend, beside the local worker processes (gan_core.runs.processes).

Each run that gets a slot trains in its own Ray actor (one CPU; one GPU when the manager's device is cuda), which runs
the same loop as a local worker (gan_core.runs.worker.serve) and sends the same events. The cluster shares no files with
the server: the "train" order carries a ray_relay.RelaySeed, and the actor's writes come back as "store" events that the
server replays on the run folder (gan_core.runs.ray_relay). A RayWorker on the server keeps one thread per actor that
forwards orders and long-polls events; every Ray call it makes has a timeout, so a cluster that goes away costs a
failed run with the reason, never a hung page. An actor (or its node) that dies fails its run; Resume starts a new
actor from the last checkpoint the server holds.

Ray is optional: it is imported only inside the functions that talk to a cluster.
"""

from __future__ import annotations

import logging
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
from gan_core.runs.ray_relay import RelaySeed, replay
from gan_core.runs.status import Status
from gan_core.runs.worker import serve, write_error
from gan_core.train.records import CheckpointError

log = logging.getLogger(__name__)
ENV_ADDRESS = "GAN_RAY_ADDRESS"
CONNECT_TIMEOUT_S = 30.0  # ray.init to a cluster that does not answer retries for minutes: give up sooner
CALL_TIMEOUT_S = 10.0  # any one call to an actor: an order, an event poll
POLL_WAIT_S = 0.5  # an actor holds a poll this long for events: live views lag by at most this, plus the network
START_TIMEOUT_S = 120.0  # a new actor's first answer: scheduling, the gan_core upload, importing torch
SILENT_LIMIT_S = 30.0  # a running actor that answers no poll for this long is taken for lost with its cluster
RETRY_S = 10.0  # after the cluster failed, how often a start asks it again


_joined: list[str] = []  # the address this process joined (ray.init is once per process)


class RayUnavailable(ConnectionError):
    """The cluster cannot be used: one line saying why."""


def address_from(value: str | None) -> str | None:
    """The Ray address to use: `value`, else GAN_RAY_ADDRESS; None (local worker processes) when both are empty."""
    text = (os.environ.get(ENV_ADDRESS, "") if value is None else value).strip()
    return text or None


def connect(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Join the cluster at `address` ("auto", "host:port", "ray://host:port"), shipping gan_core to its workers;
    raises RayUnavailable within about `timeout` seconds."""
    try:
        import ray  # noqa: PLC0415 - Ray is optional
    except ImportError:
        raise RayUnavailable('Ray is not installed: pip install "ray[default]" to train on a cluster') from None
    _check_reachable(address)
    if ray.is_initialized():  # one cluster per process: Ray's connection is global
        if _joined and _joined[0] != address:
            raise RayUnavailable(f"this server is connected to the Ray cluster at {_joined[0]}, not {address}")
        return
    failure: list[BaseException] = []
    done = threading.Event()

    def init() -> None:
        try:
            package = str(Path(__file__).resolve().parents[1])  # gan_core: the cluster's workers need not have it
            ray.init(address=address, runtime_env={"py_modules": [package]}, log_to_driver=False,
                     logging_level=logging.WARNING)
            _joined[:] = [address]
        except Exception as err:  # noqa: BLE001 - ray.init raises many types; each becomes the one-line reason
            failure.append(err)
        finally:
            done.set()

    threading.Thread(target=init, name="gan-ray-connect", daemon=True).start()
    if not done.wait(timeout):
        raise RayUnavailable(f"the Ray cluster at {address} did not answer within {timeout:.0f} s")
    if failure:
        first = (str(failure[0]).strip().splitlines() or [type(failure[0]).__name__])[0]
        raise RayUnavailable(f"cannot connect to the Ray cluster at {address}: {first[:200]}")


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


class RunActor:
    """The body of a run's Ray actor: the local worker's loop (serve) between two in-memory queues, which the server
    fills (`order`) and drains (`poll`) from its RayWorker thread."""

    def __init__(self) -> None:
        self.orders: queue.Queue = queue.Queue()
        self.events: queue.Queue = queue.Queue()

    def serve(self) -> None:
        import ray  # noqa: PLC0415 - Ray is optional (this runs on a cluster node)

        serve(self.orders, self.events, 1, None, where=f"ray: {ray.util.get_node_ip_address()}")

    def order(self, orders: list[tuple]) -> None:
        for order in orders:
            self.orders.put(order)

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


class RayWorker:
    """A run slot on the cluster: an actor for one run, from its "train" order to its "end" event (then killed).
    Quacks like processes.Worker for the RunManager."""

    def __init__(self, pool: RayPool) -> None:
        self.pool = pool
        self.run_id: str | None = None
        self.finished = False  # its run ended or its actor died: the pool forgets it
        self._outbox: queue.Queue = queue.Queue()
        self._dead = ""  # why its actor is gone
        self._checkpoint_step = 0  # the newest checkpoint written to the folder
        self._thread: threading.Thread | None = None
        self.actor: Any = None  # the actor's handle while it trains

    def send(self, *order: Any) -> None:
        """Never blocks: the worker's thread forwards it (the manager sends holding its locks)."""
        self._outbox.put(order)
        if self._thread is None:
            self._thread = threading.Thread(target=self._life, name="gan-ray-worker", daemon=True)
            self._thread.start()

    def alive(self) -> bool:
        return not self._dead

    def death_reason(self) -> str:
        return self._dead

    def _life(self) -> None:
        import ray  # noqa: PLC0415 - Ray is optional

        order = self._outbox.get()
        if order[0] != "train":
            self.finished = True
            return
        _, run_id, path, steps, device, data_dir, paused = order
        store = RunStore(path)
        try:
            self.pool.check()
            seed = RelaySeed.read(path)
        except (RayUnavailable, ConfigError, CheckpointError) as err:
            return self._end_early(run_id, str(err))
        except OSError as err:
            return self._end_early(run_id, f"cannot read the run folder: {write_error(err, Path(path))}")
        actor = None
        try:
            cls = ray.remote(RunActor).options(num_cpus=1, num_gpus=1 if device == "cuda" else 0, max_concurrency=3)
            actor = self.actor = cls.remote()
            serving = actor.serve.remote()
            outbox = [("train", run_id, seed, steps, device, data_dir, paused)]
            started = False
            last_answer = time.monotonic()
            while True:
                while not self._outbox.empty():
                    outbox.append(self._outbox.get_nowait())
                if outbox:
                    ray.get(actor.order.remote(outbox), timeout=START_TIMEOUT_S if not started else CALL_TIMEOUT_S)
                    outbox = []
                    started = True
                try:
                    events = ray.get(actor.poll.remote(POLL_WAIT_S), timeout=CALL_TIMEOUT_S)
                except ray.exceptions.GetTimeoutError:
                    if time.monotonic() - last_answer > SILENT_LIMIT_S:
                        reason = (f"the Ray cluster at {self.pool.address} has not answered for {SILENT_LIMIT_S:.0f} s")
                        self.pool.lost(reason)
                        raise RayUnavailable(reason) from None
                    continue
                last_answer = time.monotonic()
                for event in events:
                    if not self._apply(event, store):
                        return
                ready, _ = ray.wait([serving], timeout=0)
                if ready:
                    ray.get(serving, timeout=CALL_TIMEOUT_S)  # it returned: raises the actor's error
                    raise RayUnavailable("the Ray actor's loop ended without ending its run")
        except Exception as err:  # noqa: BLE001 - Ray reports a lost actor, node or cluster as many types
            reason = _death(err)
            if not isinstance(err, RayUnavailable) and not self.pool.answers():
                reason = self.pool.lost(f"the Ray cluster at {self.pool.address} went away") + (
                    "; resume continues from the last checkpoint")
            self._die(reason)
        finally:
            store.close()
            if actor is not None:
                self._kill(actor)

    def _apply(self, event: tuple, store: RunStore) -> bool:
        """Replay a "store" event or pass any other to the manager; False once the run has ended."""
        if event[0] == "store":
            try:
                replay(store, event)
            except OSError as err:  # as a local worker's own write would: the run fails, its last checkpoint kept
                self._end_early(event[1], f"{write_error(err, store.path)}; resuming continues from the last "
                                          f"checkpoint (step {self._checkpoint_step:,}) once that is fixed",
                                self._checkpoint_step)
                return False
            return True
        if event[0] == "progress":
            self._checkpoint_step = event[5]  # replayed before this event: the folder holds it
        if event[0] == "end":
            store.close()  # its pending rows and newest probe reach the folder before the manager reads it
        self.pool.on_event(event, self)
        if event[0] == "end":
            self.finished = True
            return False
        return True

    def _end_early(self, run_id: str, message: str, checkpoint_step: int = 0) -> None:
        self.pool.on_event(("end", run_id, Status.FAILED, message, checkpoint_step), self)
        self.finished = True

    def _die(self, reason: str) -> None:
        self._dead = reason
        self.finished = True
        self.pool.on_death(self)

    def _kill(self, actor: Any) -> None:
        import ray  # noqa: PLC0415 - Ray is optional

        try:
            ray.kill(actor)
        except Exception:  # a cluster that is gone has killed it already
            log.debug("could not kill a Ray actor", exc_info=True)


def _death(err: BaseException) -> str:
    """The one-line reason a run failed when its actor, node or cluster went away."""
    if isinstance(err, RayUnavailable):
        why = str(err)
    else:
        text = str(err).strip()
        # Ray's messages are paragraphs; the useful sentence is the one that says why the actor died
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        reason = next((line for line in lines if "died" in line or "killed" in line or "lost" in line), None)
        why = f"its Ray actor died: {(reason or (lines[0] if lines else type(err).__name__))[:240]}"
    return f"{why}; resume continues from the last checkpoint"


class RayPool:
    """Run slots on a Ray cluster (as many as its CPUs, or `size`); quacks like processes.WorkerPool."""

    def __init__(self, address: str, size: int | None, on_event: Callable[[tuple, Any], None],
                 on_death: Callable[[Any], None]) -> None:
        self.address = address
        self.on_event, self.on_death = on_event, on_death
        self._lock = threading.Lock()
        self.workers: list[RayWorker] = []
        self.problem = ""  # why runs cannot start on the cluster now ("" when they can)
        self._tried = 0.0
        cpus = 1
        try:
            connect(address)
            cpus = _cluster_cpus()
        except RayUnavailable as err:
            self.problem, self._tried = str(err), time.monotonic()
        self.size = size if size is not None else max(1, cpus)

    def unavailable(self) -> str:
        """Why runs cannot train on the cluster now ("" when they can). After a failure it asks the cluster again, at
        most every RETRY_S, so a cluster that comes back is used again without a restart."""
        if self.problem and time.monotonic() - self._tried >= RETRY_S:
            self._tried = time.monotonic()
            try:
                connect(self.address)
                _cluster_cpus()
                self.problem = ""
            except RayUnavailable as err:
                self.problem = str(err)
        return self.problem

    def check(self) -> None:
        """Raise RayUnavailable if runs cannot train on the cluster now."""
        if self.unavailable():
            raise RayUnavailable(self.problem)

    def lost(self, reason: str) -> str:
        """A worker found the cluster gone: refuse new runs (with the reason) until it answers again."""
        self.problem, self._tried = reason, time.monotonic()
        return reason

    def answers(self) -> bool:
        """Whether the cluster answers now (asked with a timeout)."""
        try:
            _cluster_cpus()
        except Exception:  # noqa: BLE001 - a cluster that is gone fails in many ways; each means no
            return False
        return True

    def idle(self) -> RayWorker | None:
        with self._lock:
            self.workers = [w for w in self.workers if not (w.finished and w.run_id is None)]
            if sum(1 for w in self.workers if w.run_id is not None) >= self.size:
                return None
            worker = RayWorker(self)
            self.workers.append(worker)
            return worker

    def idle_count(self) -> int:
        return max(0, self.size - len(self.busy()))

    def busy(self) -> list[RayWorker]:
        with self._lock:
            return [w for w in self.workers if w.run_id is not None]

    def exit(self, deadline: float) -> None:
        """Every run has been told to stop: wait for their actors' last events until `deadline`, then leave the
        cluster alone (the actors are killed as their runs end; Ray ends the rest with this process)."""
        for w in list(self.workers):
            if w._thread is not None:
                w._thread.join(max(0.0, deadline - time.monotonic()))


def _cluster_cpus() -> int:
    """The cluster's CPUs, asked with a timeout."""
    import ray  # noqa: PLC0415 - Ray is optional

    answer: list[int] = []
    thread = threading.Thread(target=lambda: answer.append(int(ray.cluster_resources().get("CPU", 1))), daemon=True)
    thread.start()
    thread.join(CALL_TIMEOUT_S)
    if not answer:
        raise RayUnavailable("the Ray cluster did not say how many CPUs it has")
    return answer[0]
