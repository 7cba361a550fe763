"""A process that trains a room's runs, as an app server's RunManager does, for the tests and benchmarks that kill it
(tests/test_sharing.py, benchmarks/takeover.py).

    python -m support.trainer RUNS_DIR CONFIG_JSON WAITING_JSON

Starts a RunManager with worker processes on RUNS_DIR (it must get the training lease; with GAN_RAY_ADDRESS its runs
train on that Ray cluster), starts one run of each config (named "training" and "waiting"), and once the first has
passed two checkpoints prints one JSON line, {"ids": [...], "workers": [pids]} (on Ray: its driver process's), then
sleeps until it is killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gan_core.config import TrainConfig
from gan_core.runs.manager import RunManager

REPO_ROOT = Path(__file__).resolve().parents[1]


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


@contextlib.contextmanager
def trainer_process(runs: Path, config: TrainConfig, waiting: TrainConfig, log: Path,
                    env: dict[str, str] | None = None) -> Iterator[tuple[subprocess.Popen, dict[str, Any]]]:
    """Start this module as a process of its own (its stderr into `log`, `env` added to this process's environment),
    wait for its report, and yield (the process, the report); on leaving, kill it if it still runs."""
    with open(log, "w") as err:
        process = subprocess.Popen([sys.executable, "-m", "support.trainer", str(runs), json.dumps(config.to_dict()),
                                    json.dumps(waiting.to_dict())], stdout=subprocess.PIPE, stderr=err, text=True,
                                   cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})})
    try:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"the trainer never reported its runs:\n{log.read_text()[-3000:]}")
        yield process, json.loads(line)
    finally:
        if process.poll() is None:
            process.kill()
        process.stdout.close()
        process.wait(10)


if __name__ == "__main__":
    main(sys.argv[1:])
