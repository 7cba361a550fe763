"""A process that trains a room's runs, as an app server's RunManager does, for the tests and benchmarks that kill it
(tests/test_sharing.py, benchmarks/takeover.py).

    python -m support.trainer RUNS_DIR CONFIG_JSON WAITING_JSON

Starts a RunManager with worker processes on RUNS_DIR (it must get the training lease; with GAN_RAY_ADDRESS its runs
train on that Ray cluster), starts one run of each config (named "training" and "waiting"), and once the first has
passed two checkpoints prints one JSON line, {"ids": [...], "workers": [pids]} (on Ray: its driver process's), then
sleeps until it is killed.
"""

from __future__ import annotations

import json
import sys
import time

from gan_core.config import TrainConfig
from gan_core.runs.manager import RunManager


def main(argv: list[str]) -> None:
    runs = argv[0]
    config, waiting = (TrainConfig.from_dict(json.loads(a)) for a in argv[1:3])
    manager = RunManager(runs, max_runs=1, processes=True)
    assert manager.trains, "another process holds the training lease"
    ids = [manager.start(config, "training"), manager.start(waiting, "waiting")]
    manager.wait(ids[0], lambda s: s.step >= 2 * config.checkpoint_every + 5, timeout=120)
    driver = getattr(manager._pool, "_driver", None)  # on Ray (GAN_RAY_ADDRESS): the process that drives the actors
    workers = [driver.process.pid] if driver is not None else [w.handle.pid for w in manager._pool.workers]
    print(json.dumps({"ids": ids, "workers": workers}), flush=True)
    time.sleep(600)


if __name__ == "__main__":
    main(sys.argv[1:])
