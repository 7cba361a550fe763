"""The sweep bench: the same 8 digits runs (a 4 learning rates × 2 seeds grid) through local workers and, given a Ray
address, through that cluster: wall time for all 8, and per run the seconds from the moment a worker (or actor) is
given the run to its first step arriving at the server, the overhead a backend adds to every run.

    python -m benchmarks sweep [--ray-address ADDR]
    python -m benchmarks.sweep [--ray-address ADDR] [--steps N] [--workers N]

Both halves run the same code: gan_core.sweeps.record.launch through a RunManager whose only difference is
`ray_address` ("" for local worker processes, so GAN_RAY_ADDRESS cannot move the local half onto a cluster).
Outcomes are not evaluated here: the wall time is training's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

from benchmarks.common import Row, machine, markdown
from gan_core.config import ConfigError
from gan_core.runs.manager import RunManager
from gan_core.runs.status import Status
from gan_core.sweeps.record import launch
from gan_core.sweeps.spec import SweepSpec

LEARNING_RATES = (2.5e-4, 5e-4, 1e-3, 2e-3)
SEEDS = (0, 1)
STEPS = 500  # ~4 s a run at a worker's ~130 steps/s: start-up costs stay visible beside training
TIMEOUT_S = 900.0
POLL_S = 0.005  # the marks' resolution; the server process is otherwise idle (training is in the workers)


@dataclass(frozen=True)
class Timing:
    wall_s: float  # launch to the last run's end
    slots: int  # runs training at once: the local workers, or the Ray cluster's CPUs
    to_first_step_s: list[float]  # per run, in grid order: given to a worker → its first step at the server
    finished: int
    statuses: list[str]


def spec(steps: int = STEPS) -> SweepSpec:
    return SweepSpec.of("digits", {"lr_g": LEARNING_RATES}, SEEDS, {"steps": steps})


def measure(ray_address: str = "", workers: int | None = 1, steps: int = STEPS) -> Timing:
    """The 8 runs through a RunManager with `workers` slots (None: one per CPU of the Ray cluster); ray_address ""
    trains them in local worker processes."""
    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as runs:
        manager = RunManager(runs, max_runs=workers, processes=True, ray_address=ray_address)
        given: dict[str, float] = {}
        stepped: dict[str, float] = {}
        done = threading.Event()
        # started before the launch: the first runs are given a worker inside launch() itself
        poller = threading.Thread(target=_poll, args=(manager, given, stepped, done), daemon=True)
        try:
            poller.start()
            began = time.perf_counter()
            sweep = launch(manager, spec(steps))
            snaps = [manager.wait(run_id, timeout=TIMEOUT_S) for run_id in sweep.run_ids]
            wall = time.perf_counter() - began
        finally:
            done.set()
            poller.join()
            manager.shutdown()
    return Timing(wall, manager.max_runs, [stepped[r] - given[r] for r in sweep.run_ids if r in stepped and r in given],
                  sum(s.status is Status.FINISHED for s in snaps), [s.status.value for s in snaps])


def _poll(manager: RunManager, given: dict[str, float], stepped: dict[str, float], done: threading.Event) -> None:
    """Marks when each run left the queue (was given a worker or actor) and when its first step reached the server,
    to within POLL_S. Polling, not waiting on one run: a run can be given its worker before anyone holds its id."""
    while not done.is_set():
        now = time.perf_counter()
        for run_id in manager.ids():
            if run_id in stepped:
                continue
            snap = manager.snapshot(run_id)
            if snap.status is not Status.QUEUED:
                given.setdefault(run_id, now)
            if snap.step > 0:
                stepped[run_id] = now
        time.sleep(POLL_S)


def rows(ray_address: str | None = None, workers: int = 1, steps: int = STEPS) -> list[Row]:
    """The local half always; the Ray half beside it when an address is given."""
    # Ray's half fans out over the cluster's CPUs (what a sweep on a cluster does), the local half uses `workers`
    halves: list[tuple[str, str, int | None]] = [("local", "", workers)] + (
        [("ray", ray_address, None)] if ray_address else [])
    out: list[Row] = []
    for label, address, slots in halves:
        try:
            t = measure(address, slots, steps)
        except (ConfigError, OSError) as err:  # a cluster that is unreachable: say so beside the local half's figures
            out.append(Row("sweep", f"{label}: failed", "-", note=str(err).splitlines()[0][:200]))
            continue
        first = t.to_first_step_s
        where = (f"{t.slots} local worker process(es)" if label == "local"
                 else f"Ray at {address}, {t.slots} actors at once (its CPUs)")
        out += [
            Row("sweep", f"{label}: 8 digits runs, wall time", f"{t.wall_s:.1f} s",
                note=f"{where}; {len(LEARNING_RATES)} lr_g × {len(SEEDS)} seeds, {steps} steps each; "
                     f"{t.finished}/8 finished"),
            Row("sweep", f"{label}: runs per hour", f"{8 * 3600 / t.wall_s:,.0f}"),
            Row("sweep", f"{label}: given a worker → first step, first run / the others' median",
                f"{first[0]:.2f} / {statistics.median(first[1:]):.2f} s" if len(first) > 1 else "-",
                note="per run in grid order: " + ", ".join(f"{s:.2f}" for s in first)
                     + ("; the first waits for its worker process to import torch" if label == "local" else "")),
        ]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sweep", description=__doc__.splitlines()[0])
    parser.add_argument("--ray-address", help="also run the 8 runs on this Ray cluster")
    parser.add_argument("--workers", type=int, default=1, help="local worker processes (default 1)")
    parser.add_argument("--steps", type=int, default=STEPS, help=f"steps per run (default {STEPS})")
    args = parser.parse_args(argv)
    command = " ".join(["python -m benchmarks.sweep", *(argv if argv is not None else sys.argv[1:])])
    print(f"- Machine: {machine()}\n- Command: `{command}`\n- Date: {time.strftime('%Y-%m-%d %H:%M %Z')}\n")
    print(markdown(rows(args.ray_address, args.workers, args.steps)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
