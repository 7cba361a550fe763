"""The process that trains, killed mid-lesson: how long until another app process trains the room's runs, and until
the killed one's run trains again from its checkpoint.

    python -m benchmarks.takeover [--trials 3] [--store sqlite|postgresql] [--ray-address HOST:PORT]

Each trial starts a process that trains (support/trainer.py: a RunManager with worker processes,
a 3,000-step run training and a second queued), opens a second RunManager on the same runs folder in this process (it
does not train), and `kill -9`s the first once its run has passed two checkpoints. Prints, per trial: the seconds to
a new owner (the lease taken), to the run training again past its last checkpoint, and whether the finished run holds
every step exactly once. With `--store postgresql` the room lives in a PostgreSQL server started in a temporary folder
(support.postgres; its lease waits out the dead trainer's last beat: gan_core.classroom.lease.TAKEOVER_AFTER_S).
With `--ray-address` both processes train on that Ray cluster (GAN_RAY_ADDRESS; start one with `ray start --head`):
the killed process's driver ends by itself, and its actors with it.
Target (issue 28): a new owner within 10 s, no step trained twice. Exits 1 when a trial misses it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from gan_core.classroom.store import URL_ENV
from gan_core.config import get_preset
from gan_core.runs.folder import RunStore
from gan_core.runs.manager import RunManager
from gan_core.runs.ray_backend import ENV_ADDRESS as RAY_ENV
from gan_core.runs.status import Status
from support.postgres import fresh_database, local_postgres
from support.trainer import trainer_process

TARGET_S = 10.0
# a small ring GAN, checkpointed every EVERY steps: long enough to be killed mid-way
TINY = get_preset("ring-bce").config.replace(g_width=16, d_width=16, batch_size=32, probe_every=5, sample_every=10,
                                             n_samples=32)
STEPS, EVERY = 3000, 50


@contextlib.contextmanager
def room(store: str) -> Iterator[None]:
    """GAN_STATE_URL for the trials: unset (SQLite in each runs folder) or a PostgreSQL server of their own."""
    if store == "sqlite":
        os.environ.pop(URL_ENV, None)
        yield
        return
    with local_postgres() as base:
        os.environ[URL_ENV] = base
        try:
            yield
        finally:
            os.environ.pop(URL_ENV, None)


def trial() -> tuple[float, float, bool]:
    runs = Path(tempfile.mkdtemp(prefix="takeover_")) / "runs"
    config, waiting = TINY.replace(steps=STEPS, checkpoint_every=EVERY), TINY.replace(steps=40)
    other = None
    with trainer_process(runs, config, waiting, runs.parent / "owner.log") as (owner, started):
        try:
            ids = started["ids"]
            other = RunManager(runs, max_runs=1, processes=True)
            assert not other.trains
            os.kill(owner.pid, signal.SIGKILL)
            killed = time.monotonic()
            while not other.trains:
                time.sleep(0.02)
            new_owner = time.monotonic() - killed
            checkpoint = int(RunStore(runs / ids[0]).load_checkpoint()["step"])
            other.wait(ids[0], lambda s: s.status is Status.RUNNING and s.step > checkpoint, timeout=120)
            again = time.monotonic() - killed
            done = other.wait(ids[0], timeout=600)
            once = done.status is Status.FINISHED and [r.step for r in RunStore(runs / ids[0]).read_metrics()] == list(
                range(1, STEPS + 1))
            return new_owner, again, once
        finally:
            if other is not None:
                other.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--ray-address", default=None, help="train on this Ray cluster (host:port of its head)")
    args = parser.parse_args(argv)
    if args.ray_address:
        os.environ[RAY_ENV] = args.ray_address  # read by both managers, the killed one's process inheriting it
    missed = 0
    with room(args.store):
        base = os.environ.get(URL_ENV)
        backend = f"{args.store}, Ray" if args.ray_address else args.store
        print(f"| trial ({backend}) | new owner after | training again after | every step once |\n|---|---|---|---|")
        for i in range(args.trials):
            if base:  # an empty room for each trial: no beat left by the trial before
                os.environ[URL_ENV] = fresh_database(base, "takeover")
            new_owner, again, once = trial()
            missed += new_owner > TARGET_S or not once
            print(f"| {i + 1} | {new_owner:.2f} s | {again:.2f} s | {'yes' if once else 'NO'} |", flush=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
