"""The Ray backend (gan_core.runs.ray_backend, ray_relay) against a real cluster: one `ray start --head --block` process
on loopback for the whole module, ended by its PID (never `ray stop`: other Ray users may share the machine).

Skipped when Ray is not installed, unless GAN_REQUIRE_ALL=1.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from gan_core.runs.folder import RunStore
from gan_core.runs.manager import RunManager
from gan_core.runs.ray_relay import RelaySeed, replay
from gan_core.runs.roles import RunRefused
from gan_core.runs.status import Status
from tests.conftest import REPO_ROOT, require_ray
from tests.server import free_port
from tests.tiny import SLOW, TINY

pytestmark = pytest.mark.timeout(300)


def _files(folder: Path) -> set[str]:
    """The folder's files; a TensorBoard event file by its kind (its name holds the time and the host)."""
    names = (str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    return {"events.out.tfevents" if n.startswith("events.out.tfevents") else n for n in names}


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """The address of a 2-CPU Ray head on loopback, up for this module."""
    require_ray()
    import ray  # only where Ray is installed: require_ray skipped otherwise

    port = free_port()
    temp = tempfile.mkdtemp(prefix="gan-ray-")  # its own session folder: `auto` elsewhere never finds this cluster
    log = open(Path(temp) / "head.log", "w")  # open for the cluster's whole life, closed below
    head = subprocess.Popen(
        ["ray", "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
         "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not _listening(port):
            assert head.poll() is None, f"ray start exited: {(Path(temp) / 'head.log').read_text()[-2000:]}"
            assert time.monotonic() < deadline, "the Ray head did not listen within 120 s"
            time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        ray.shutdown()
        os.killpg(head.pid, signal.SIGTERM)  # its own session: the head and the processes it started, nothing else
        try:
            head.wait(3)  # it rarely ends by itself that soon: the kill below is the usual end
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait(3)  # it rarely ends by itself that soon: the kill below is the usual end
        log.close()


@pytest.fixture(scope="module")
def manager(cluster: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunManager]:
    m = RunManager(tmp_path_factory.mktemp("ray-runs"), ray_address=cluster, max_runs=2)
    assert not m._pool.unavailable(), m._pool.unavailable()
    yield m
    m.shutdown()


def test_a_run_trains_on_ray_and_the_server_writes_the_same_folder(manager: RunManager, tmp_path: Path) -> None:
    run_id = manager.start(TINY, "on-ray")
    snap = manager.wait(run_id, timeout=180)
    assert snap.status is Status.FINISHED, snap.message
    assert snap.step == TINY.steps and snap.where.startswith("ray: ")
    assert snap.label.endswith(f" · {snap.where}")  # the sidebar's picker says where it trained
    local = RunManager(tmp_path, processes=False, max_runs=1)  # the same run in a local worker, for comparison
    try:
        local_id = local.start(TINY, "on-ray")
        local_snap = local.wait(local_id, timeout=120)
    finally:
        local.shutdown()
    assert local_snap.where == "local"
    ray_folder, local_folder = manager.runs_dir / run_id, tmp_path / local_id
    assert _files(ray_folder) == _files(local_folder)  # the same files: metrics, probes, samples, checkpoint, events
    ray_rows, local_rows = RunStore(ray_folder).read_metrics(), RunStore(local_folder).read_metrics()
    assert [r.step for r in ray_rows] == [r.step for r in local_rows] == list(range(1, TINY.steps + 1))
    assert [p.step for p in RunStore(ray_folder).read_probes()] == [p.step for p in RunStore(local_folder).read_probes()]
    assert RunStore(ray_folder).load_checkpoint()["step"] == TINY.steps


def test_an_uploaded_csv_travels_with_the_order(manager: RunManager, tmp_path: Path) -> None:
    csv = tmp_path / "points.csv"
    csv.write_text("".join(f"{i % 7 * 0.1},{i % 5 * 0.2}\n" for i in range(50)))
    config = TINY.replace(dataset="points", points_csv=str(csv), steps=20)
    snap = manager.wait(manager.start(config, "csv"), timeout=180)
    assert snap.status is Status.FINISHED, snap.message
    assert RunStore(snap.path).read_config().points_csv == str(csv)  # the server's path, not the worker's temp copy


def test_a_killed_actor_fails_its_run_which_resumes_on_ray_and_locally(manager: RunManager) -> None:
    import ray  # the cluster fixture skipped where Ray is missing

    run_id = manager.start(SLOW.replace(checkpoint_every=20), "killed")
    running = manager.wait(run_id, lambda s: s.step >= 45, timeout=180)
    assert running.message.startswith("training on Ray node "), running.message
    worker = next(w for w in manager._pool.busy() if w.run_id == run_id)
    ray.kill(worker.actor)
    snap = manager.wait(run_id, timeout=60)
    assert snap.status is Status.FAILED and "Ray actor died" in snap.message, snap.message
    kept = RunStore(snap.path).load_checkpoint()["step"]  # the server's copy is intact and loads
    assert kept >= 40 and kept % 20 == 0

    manager.resume(run_id, steps=kept + 10)
    snap = manager.wait(run_id, timeout=180)
    assert snap.status is Status.FINISHED and snap.step == kept + 10, snap.message
    rows = RunStore(snap.path).read_metrics()
    assert [r.step for r in rows] == list(range(1, kept + 11))  # the steps after the checkpoint were trained again

    local = RunManager(manager.runs_dir, processes=False, max_runs=1)  # the same folder, resumed off the cluster
    try:
        local.resume(run_id, steps=kept + 20)
        snap = local.wait(run_id, timeout=120)
    finally:
        local.shutdown()
    assert snap.status is Status.FINISHED and snap.step == kept + 20 and snap.where == "local", snap.message


def test_an_unreachable_cluster_is_one_clear_refusal_and_runs_stay_listed(tmp_path: Path) -> None:
    require_ray()
    RunStore(tmp_path / "earlier").create(TINY)
    m = RunManager(tmp_path, ray_address=f"127.0.0.1:{free_port()}")  # nothing listens there
    try:
        assert m.ids() == ["earlier"]
        with pytest.raises(RunRefused, match=r"^cannot start: the Ray cluster at 127\.0\.0\.1:\d+ cannot be reached"):
            m.start(TINY)
    finally:
        m.shutdown()


def test_replay_writes_only_run_folder_writers(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run").create(TINY)
    seed = RelaySeed.read(store.path)
    assert seed.checkpoint is None and seed.metrics_end is None and seed.config == TINY.to_dict()
    replay(store, ("store", "run", "save_checkpoint_bytes", (b"not a checkpoint",)))
    assert RelaySeed.read(store.path).checkpoint == b"not a checkpoint"
    with pytest.raises(ValueError, match="not a run folder write: 'create'"):
        replay(store, ("store", "run", "create", (TINY,)))


def test_the_default_install_never_imports_ray(tmp_path: Path) -> None:
    code = ("import sys, dashboard\n"
            "from gan_core.runs.manager import RunManager\n"
            f"RunManager({str(tmp_path)!r}, processes=False).shutdown()\n"
            "assert 'ray' not in sys.modules, sorted(m for m in sys.modules if m.startswith('ray'))\n")
    env = {k: v for k, v in os.environ.items() if k != "GAN_RAY_ADDRESS"} | {"GAN_RUNS_DIR": str(tmp_path),
                                                                         "GAN_WORKERS": "threads"}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_relayed_checkpoint_loads_like_a_written_one(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run").create(TINY)
    events: list[tuple] = []

    class Sink:
        def put(self, item: tuple) -> None:
            events.append(item)

    relay = RelaySeed.read(store.path).store(Sink(), "run")
    relay.save_checkpoint({"step": 7, "generator": {"w": torch.ones(2)}})
    assert relay.has_checkpoint() and relay.load_checkpoint()["step"] == 7
    for event in events:
        replay(store, event)
    assert store.load_checkpoint()["step"] == 7
