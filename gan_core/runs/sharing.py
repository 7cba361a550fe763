"""Several app processes on one runs folder, exactly one of which trains (a lecture hall behind a load balancer).

Every RunManager asks for the training lease (gan_core.classroom.lease) when it starts. The one holding it trains as a
lone server always has, and carries out the orders the others send (gan_core.classroom.orders). The others read each
run from its folder (gan_core.runs.mirror), send their starts and controls to it, and keep asking for the lease: when
the trainer dies, even by kill -9, one of them gets it within LEASE_RETRY_S, reads every run again as a restart would,
queues again what was queued and what was training (from its checkpoint), and trains from then on. A worker holds its
run folder's lock while it trains (worker.hold_folder), so a run is never trained by two workers at once, even while a
dead trainer's orphaned worker is still writing its last checkpoint.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from gan_core.classroom.lease import BEAT_S, LEASE_RETRY_S, STEP_DOWN_S
from gan_core.classroom.orders import Order
from gan_core.config import ConfigError, TrainConfig
from gan_core.runs.roles import Actor, RunRefused
from gan_core.runs.run_queue import RunQueue
from gan_core.runs.status import Status, StepKind

log = logging.getLogger(__name__)
# `manager` below is the RunManager these functions serve (typed Any: gan_core.runs.manager imports this module)
ORDER_POLL_S = 0.1  # how often the trainer looks for orders: a start from another process waits about this much more


def serve(manager: Any) -> None:
    """The manager's order thread: while it trains, confirm the lease every BEAT_S (stepping down when it is lost) and
    carry out the others' orders; until then, ask for the lease."""
    last_try = last_beat = confirmed = time.monotonic()
    while not manager._closed:
        time.sleep(ORDER_POLL_S)
        try:
            now = time.monotonic()
            if manager.trains and now - last_beat >= BEAT_S:
                last_beat = now
                held = manager._lease.holds()
                if held:
                    confirmed = now
                elif held is False or now - confirmed >= STEP_DOWN_S:
                    step_down(manager, "another process holds the training lease now" if held is False else
                              f"the room's database could not confirm this process's training lease for {STEP_DOWN_S:.0f} s")
                    last_try = time.monotonic()
                    continue
            if manager.trains:
                for order in manager._orders.take():
                    manager._orders.answer(order, answer(manager, order))
            elif now - last_try >= LEASE_RETRY_S:
                last_try = now
                if manager._lease.try_acquire() and not manager._closed:
                    take_over(manager)
                    last_beat = confirmed = time.monotonic()
        except Exception:  # the store unreachable for a moment: the next look tries again
            log.exception("the run orders of %s", manager.runs_dir)
            time.sleep(1.0)


def ask(manager: Any, verb: str, args: dict[str, Any], actor: Actor) -> Any:
    """Send an order to the process that trains and wait for its answer; then read what it did from the folder."""
    try:
        said = manager._orders.ask(verb, args, actor.owner, actor.presenter)
    except TimeoutError as err:
        raise RunRefused(str(err)) from None
    except Exception as err:  # noqa: BLE001 - sqlite3 or psycopg: the store itself cannot be used
        raise RunRefused(f"cannot reach the room's store to send this to the process that trains: {err}") from None
    if "refused" in said:
        raise RunRefused(said["refused"])
    if "config" in said:
        raise ConfigError(*said["config"])
    manager._scanner.rescan()
    manager.scan()  # a new run listed (or a deleted one gone) before the page draws again
    if verb != "start" and args["run_id"] in manager:
        run = manager._get(args["run_id"])
        tail = manager._tails.get(run.id)
        if tail is not None:
            tail.refresh(run, force=True)
    return said["value"]


def answer(manager: Any, order: Order) -> dict[str, Any]:
    """Carry out another process's order here, as if asked here, and say how it went: its value, or why not."""
    try:
        return {"value": carry_out(manager, order)}
    except RunRefused as err:
        return {"refused": str(err)}
    except ConfigError as err:
        return {"config": [err.field, str(err).partition(": ")[2]]}
    except Exception as err:  # the asker must hear of it rather than wait for nothing
        log.exception("order %s failed", order.verb)
        return {"config": ["run", f"{order.verb} failed in the process that trains: {type(err).__name__}: {err}"]}


def carry_out(manager: Any, order: Order) -> Any:
    """Do what another process was asked, here, with the same rules (the order carries who asked)."""
    args, actor = order.args, Actor(presenter=order.presenter, token=order.token)
    match order.verb:
        case "start":
            runs = [(TrainConfig.from_dict(config), name) for config, name in args["runs"]]
            return manager.start_many(runs, actor=actor)
        case "resume":
            return manager.resume(args["run_id"], args.get("steps"), actor=actor)
        case "step":
            return manager.step(args["run_id"], StepKind(args["kind"]), actor=actor)
        case "pause" | "stop" | "delete":
            return getattr(manager, order.verb)(args["run_id"], actor=actor)
    raise ConfigError("order", f"unknown order {order.verb!r}")


def take_over(manager: Any) -> None:
    """The process that trained is gone: train from now on, as a restarted server would, and carry on its runs."""
    log.warning("this process now trains the runs in %s: the one that did is gone", manager.runs_dir)
    manager.scan()  # a run started since this process last looked is carried on too
    with manager._lock:
        known = [run.store.path for run in manager._runs.values()]
    fresh = []
    for folder in known:  # read as a restart reads them: the queued ones queued again
        fresh.append(manager._read_run(folder, mirrored=False)[0])
    training = [run for run in fresh
                if run.resumable and run.store.read_status().get("status") == Status.RUNNING.value]
    manager._open_pool()  # before anyone may start a run here
    with manager._lock:
        for run in fresh:
            if run.id in manager._runs:
                manager._runs[run.id] = run
                if run.status is Status.QUEUED:
                    manager._queue.add(run.id, lesson=run.owner is None)
        manager._tails.clear()
        manager.trains = True
    for run in training:  # it goes on from its checkpoint, once the dead trainer's worker has let its folder go
        manager._queue_run(run)
    manager._admit()


def step_down(manager: Any, why: str) -> None:
    """This process lost the training lease it held (a database blip outlasted it, and another process may train now):
    stop training at once, as a trainer that died would, and read the runs from their folders from now on. Its workers
    are ended without a word to the folders, which still say "running" and "queued": the new trainer carries each run
    on from its last checkpoint (the promise of a kill -9), and queues again what was queued."""
    log.error("this process no longer trains the runs in %s: %s", manager.runs_dir, why)
    with manager._lock:
        manager.trains = False  # from now on its starts and controls are orders to the trainer
        pool, manager._pool = manager._pool, None
        manager._queue = RunQueue()
        known = [run.store.path for run in manager._runs.values()]
    # fresh states, read as a viewer reads them, before the workers end: an ended worker's last word finds a run with no
    # worker and is dropped, rather than written into a folder another process trains in now
    for folder in known:
        run, tail = manager._read_run(folder, mirrored=True)
        with manager._lock:
            if run.id in manager._runs:
                manager._runs[run.id] = run
                manager._tails[run.id] = tail
    if pool is not None:
        pool.abandon()
    manager._lease.release()  # (a lost lease: nothing left to let go; taken again: handed to whoever asks next)
