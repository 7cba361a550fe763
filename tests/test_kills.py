"""kill -9, end to end: of the server while two runs train in worker processes (each run resumes from its last
checkpoint, no step twice), and of a worker while it sends an event (the other runs are still heard from). Real
processes: the server tier (tests/conftest.py). Damaged files, NaN and failed writes: test_faults.py.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gan_core.runs.folder import METRICS_FILE, RunStore
from gan_core.runs.manager import RunManager
from gan_core.runs.status import Status
from tests.tiny import SLOW

REPO_ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.server  # each test starts and kills processes


def _steps(path: Path) -> list[int]:
    return [r.step for r in RunStore(path).read_metrics()]


def _checkpoint_step(path: Path) -> int:
    return int(RunStore(path).load_checkpoint()["step"])


# -- kill -9 of the server -----------------------------------------------------------------------------------------------
SERVER = """
import json, sys, time
from gan_core.config import TrainConfig
from gan_core.runs.manager import RunManager
runs, config = sys.argv[1], TrainConfig.from_dict(json.loads(sys.argv[2]))
m = RunManager(runs, max_runs=2, processes=True)
ids = [m.start(config, name) for name in ("left", "right")]
for run_id in ids:  # past two checkpoints each
    m.wait(run_id, lambda s: s.step >= 2 * config.checkpoint_every + 5, timeout=120)
print(json.dumps({"ids": ids, "workers": [w.handle.pid for w in m._pool.workers]}), flush=True)
time.sleep(600)
"""


def _exited(pid: int) -> bool:
    """Gone, or a zombie waiting for whoever inherited it to reap it: either way it runs no more."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _read_line(proc: subprocess.Popen, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([proc.stdout], [], [], 0.5)[0]:
            return proc.stdout.readline()
        if proc.poll() is not None:
            break
    return ""


def test_kill_9_of_the_server_while_two_runs_train(tmp_path, one_thread):
    runs, every = tmp_path / "runs", 10
    config = SLOW.replace(checkpoint_every=every)
    log = tmp_path / "server.log"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    with open(log, "w") as err:
        server = subprocess.Popen([sys.executable, "-c", SERVER, str(runs), json.dumps(config.to_dict())],
                                  stdout=subprocess.PIPE, stderr=err, text=True, cwd=REPO_ROOT, env=env)
    workers: list[int] = []
    try:
        line = _read_line(server, timeout=120)
        assert line, f"the server never reported its runs:\n{log.read_text()[-3000:]}"
        started = json.loads(line)
        ids, workers = started["ids"], started["workers"]
        os.kill(server.pid, signal.SIGKILL)
        server.wait(10)

        # the workers notice their server is gone and exit: no orphan keeps writing
        deadline = time.monotonic() + 15
        while not all(_exited(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert all(_exited(pid) for pid in workers), "a worker outlived its server"
        sizes = [(runs / i / METRICS_FILE).stat().st_size for i in ids]
        time.sleep(1.0)
        assert [(runs / i / METRICS_FILE).stat().st_size for i in ids] == sizes

        # what the kill left on disk: rows 1..last with no gap or repeat, a checkpoint at most one interval behind
        before = {}
        for run_id in ids:
            steps, ckpt = _steps(runs / run_id), _checkpoint_step(runs / run_id)
            assert steps == list(range(1, len(steps) + 1)) and steps[-1] >= 2 * every + 5
            assert steps[-1] - every <= ckpt <= steps[-1]
            before[run_id] = (steps[-1], ckpt, RunStore(runs / run_id).read_metrics())
    finally:
        for pid in [server.pid, *workers]:  # only if the test failed before they ended
            if not _exited(pid):
                os.kill(pid, signal.SIGKILL)
        server.stdout.close()
        server.wait(10)

    m = RunManager(runs, max_runs=2, processes=False)  # the restarted server
    try:
        assert set(m.ids()) == set(ids)
        for run_id in ids:
            last, ckpt, _ = before[run_id]
            snap = m.snapshot(run_id)
            assert snap.status is Status.STOPPED and snap.resumable
            assert snap.message == (f"interrupted when the server stopped at step {last:,} of 100,000; resuming continues "
                                    f"from the checkpoint at step {ckpt:,}")
            assert snap.step == last and snap.metrics["step"][-1] == last
        for run_id in ids:
            m.resume(run_id, steps=before[run_id][0] + 10)
        for run_id in ids:
            last, ckpt, rows = before[run_id]
            done = m.wait(run_id, timeout=60)
            assert done.status is Status.FINISHED and done.step == last + 10
            after = RunStore(runs / run_id).read_metrics()
            assert [r.step for r in after] == list(range(1, last + 11))  # no step twice, none missing
            assert after[:ckpt] == rows[:ckpt]  # the history up to the checkpoint it resumed from is untouched
            assert list(done.metrics["step"]) == list(range(1, last + 11))
    finally:
        m.shutdown()


def test_a_worker_killed_while_sending_an_event_does_not_silence_the_others(tmp_path, one_thread):
    """A process killed while it writes to a multiprocessing queue leaves the queue's lock held (and maybe half a
    message in it): that must cost only the dead worker's own queue, never the events of the runs still training."""
    m = RunManager(tmp_path / "runs", max_runs=2)
    try:
        victim, other = m.start(SLOW, "victim"), m.start(SLOW, "other")
        for run_id in (victim, other):
            m.wait(run_id, lambda s: s.step >= 5, timeout=90)  # the first start includes the workers importing torch
        worker = next(w for w in m._pool.workers if w.run_id == victim)
        worker.events._wlock.acquire()  # held, as by a worker killed mid-write, until the queue is thrown away
        os.kill(worker.handle.pid, signal.SIGKILL)
        assert m.wait(victim, timeout=30).status is Status.FAILED
        step = m.snapshot(other).step
        assert m.wait(other, lambda s: s.step >= step + 20, timeout=30).status is Status.RUNNING  # still heard from
    finally:
        m.shutdown()
