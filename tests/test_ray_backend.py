"""The Ray backend (gan_core.runs.ray_backend, ray_relay) against a real cluster: one `ray start --head --block` process
on loopback for the whole module, ended by its PID (never `ray stop`: other Ray users may share the machine).

Skipped when Ray is not installed, unless GAN_REQUIRE_ALL=1.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
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
from gan_core.sweeps import outcomes, record
from gan_core.sweeps.spec import SweepSpec
from support.server import free_port
from support.trainer import trainer_process
from tests.conftest import REPO_ROOT, require_ray
from tests.tiny import SLOW, TINY

# each test starts a Ray head or a subprocess; one worker runs them all (two heads on one machine share /tmp/ray): a
# module is one xdist scope (tests/conftest.py: pytest_xdist_make_scheduler)
pytestmark = [pytest.mark.timeout(300), pytest.mark.server]


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


@contextlib.contextmanager
def ray_head(port: int) -> Iterator[subprocess.Popen]:
    """A 2-CPU Ray head on 127.0.0.1:`port`, as its own process group, ended by its PID after (never `ray stop`: other
    Ray users may share the machine). A test may kill it first."""
    temp = tempfile.mkdtemp(prefix="gan-ray-")  # its own session folder: `auto` elsewhere never finds this cluster
    with open(Path(temp) / "head.log", "w") as log:  # open for the cluster's whole life
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
            yield head
        finally:
            _end_group(head)
            shutil.rmtree(temp, ignore_errors=True)


def _end_group(head: subprocess.Popen) -> None:
    """End the head and the processes it started (its own session: nothing else)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(head.pid, sig)
        except ProcessLookupError:
            pass
        try:
            head.wait(3)  # it rarely ends by itself that soon after SIGTERM: the SIGKILL is the usual end
            if sig == signal.SIGKILL:
                return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """The address of a 2-CPU Ray head on loopback, up for this module."""
    require_ray()
    port = free_port()
    with ray_head(port):
        yield f"127.0.0.1:{port}"


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


def test_a_four_cell_sweep_runs_end_to_end_on_the_cluster(manager: RunManager, tmp_path: Path) -> None:
    """Issue 17's target: a 4-cell sweep (2 values × 2 seeds) launched through a manager pointed at the cluster: every
    cell trains on Ray, its folder is written by the server, and the outcomes and the summary follow."""
    fixed = {"steps": 40, "g_width": 16, "d_width": 16, "batch_size": 32, "checkpoint_every": 20, "sample_every": 20}
    sweep = record.launch(manager, SweepSpec.of("ring-bce", {"lr_g": [2e-4, 1e-3]}, seeds=[0, 1], fixed=fixed))
    rows = outcomes.follow(manager, sweep, timeout=300)
    assert [r.status for r in rows] == [Status.FINISHED] * 4, [r.message for r in rows]
    assert all(manager.snapshot(i).where.startswith("ray: ") for i in sweep.run_ids)
    assert all(r.outcomes is not None and r.outcomes["modes_total"] == 8 for r in rows)
    assert record.list_sweeps(manager.runs_dir)[0].id == sweep.id  # listed again, as after a restart
    csv_path, _ = outcomes.write_summary(tmp_path, sweep, rows)
    assert len(csv_path.read_text().splitlines()) == 5  # the header and one row per cell


def test_an_uploaded_csv_travels_with_the_order(manager: RunManager, tmp_path: Path) -> None:
    csv = tmp_path / "points.csv"
    csv.write_text("".join(f"{i % 7 * 0.1},{i % 5 * 0.2}\n" for i in range(50)))
    config = TINY.replace(dataset="points", points_csv=str(csv), steps=20)
    snap = manager.wait(manager.start(config, "csv"), timeout=180)
    assert snap.status is Status.FINISHED, snap.message
    assert RunStore(snap.path).read_config().points_csv == str(csv)  # the server's path, not the worker's temp copy


def test_a_killed_actor_fails_its_run_which_resumes_on_ray_and_locally(manager: RunManager, tmp_path: Path) -> None:
    run_id = manager.start(SLOW.replace(checkpoint_every=20), "killed")
    running = manager.wait(run_id, lambda s: s.step >= 45, timeout=180)
    assert running.message.startswith("training on Ray node "), running.message
    worker = next(w for w in manager._pool.busy() if w.run_id == run_id)
    assert worker.actor_pid is not None
    os.kill(worker.actor_pid, signal.SIGKILL)  # the actor's process crashes, as out of memory would end it
    snap = manager.wait(run_id, timeout=60)
    assert snap.status is Status.FAILED and "Ray actor died" in snap.message, snap.message
    kept = RunStore(snap.path).load_checkpoint()["step"]  # the server's copy is intact and loads
    assert kept >= 40 and kept % 20 == 0

    manager.resume(run_id, steps=kept + 10)
    snap = manager.wait(run_id, timeout=180)
    assert snap.status is Status.FINISHED and snap.step == kept + 10, snap.message
    rows = RunStore(snap.path).read_metrics()
    assert [r.step for r in rows] == list(range(1, kept + 11))  # the steps after the checkpoint were trained again

    # the folder, resumed off the cluster by another server (a second one on the same folder would send it the resume)
    shutil.copytree(snap.path, tmp_path / "off-ray" / run_id)
    local = RunManager(tmp_path / "off-ray", processes=False, max_runs=1)
    try:
        local.resume(run_id, steps=kept + 20)
        snap = local.wait(run_id, timeout=120)
    finally:
        local.shutdown()
    assert snap.status is Status.FINISHED and snap.step == kept + 20 and snap.where == "local", snap.message


def test_the_next_run_trains_on_the_actor_the_last_one_ended_on(manager: RunManager) -> None:
    pids = []
    for name in ("first", "next"):
        run_id = manager.start(SLOW, name)
        manager.wait(run_id, lambda s: s.step >= 1, timeout=180)
        pids.append(next(w.actor_pid for w in manager._pool.busy() if w.run_id == run_id))
        manager.stop(run_id)
        assert manager.wait(run_id, timeout=60).status is Status.STOPPED
    assert pids[0] is not None and pids[1] == pids[0]  # no new Ray worker process (nor torch imported again)


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
    code = ("import os, sys, dashboard\n"
            "from gan_core.runs.manager import RunManager\n"
            f"RunManager({str(tmp_path)!r}, processes=False).shutdown()\n"
            "assert 'ray' not in sys.modules, sorted(m for m in sys.modules if m.startswith('ray'))\n"
            # the answer is in: leave without the interpreter's teardown, which can abort while the page modules'
            # warm-up thread is still inside torch ('terminate called without an active exception', seen under load)
            "os._exit(0)\n")
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


# How long a Ray driver tries to reach a cluster that went away before Ray ends its process: 60 s by default; the test
# below shortens it (Ray reads RAY_<setting> from the environment) so that outliving it takes seconds, not minutes.
RECONNECT_S = 5


def head_loss(runs: str) -> None:
    """The cluster's head dies mid-run and comes back at the same address, with the RunManager in this process: run
    by the test below in a process of its own, so a regression (Ray ending the server's process RECONNECT_S after its
    head went away) fails that test rather than ending pytest. Beside it, a plain Ray driver shows what the server escapes:
    Ray ends that one. Prints its timings as one JSON line."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    gone = f"the Ray cluster at {address} went away"
    RunStore(Path(runs) / "earlier").create(TINY)
    times: dict[str, float] = {}
    with ray_head(port) as head:
        plain = subprocess.Popen(  # what the server was before: a process that called ray.init itself (it joins while
            # the run below starts: both take seconds)
            [sys.executable, "-c", "import ray, sys, time; ray.init(address=sys.argv[1], log_to_driver=False); "
                                   "print('joined', flush=True); time.sleep(600)", address],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        m = RunManager(runs, ray_address=address, max_runs=1)
        run_id = m.start(SLOW.replace(checkpoint_every=10), "doomed")
        m.wait(run_id, lambda s: s.step >= 15, timeout=180)
        assert "ray" not in sys.modules  # the server's process is no Ray driver: its driver is a child process
        assert plain.stdout is not None and plain.stdout.readline().strip() == "joined"
        os.killpg(head.pid, signal.SIGKILL)  # the head and all it started, at once, as a crashed machine would
        head.wait(10)
        killed = time.monotonic()
        try:
            snap = m.wait(run_id, timeout=90)
        except TimeoutError as err:  # what the pool knew, for the next reader of a CI log
            pool, driver = m._pool, m._pool._driver
            raise TimeoutError(f"{err}; the head's port listening: {_listening(port)}; the pool's problem: "
                               f"{pool.problem!r}; knocks refused in a row: {pool._refused}; driver: "
                               f"{driver and (driver.joined, driver.process.is_alive())}") from None
        times["failed_after_s"] = time.monotonic() - killed
        assert snap.status is Status.FAILED and snap.message.startswith(gone), snap.message
        assert "\n" not in snap.message and snap.message.endswith("resume continues from the last checkpoint")
        assert RunStore(snap.path).load_checkpoint()["step"] >= 10  # the server's copy is intact
        # Ray ends a plain driver RECONNECT_S after the head went: ours lives on past that (checked until the plain one
        # has ended and 5 s more, or at most RECONNECT_S + 25 s)
        while time.monotonic() - killed < RECONNECT_S + 25 and (plain.poll() is None or
                                                                time.monotonic() - killed < RECONNECT_S + 5):
            with pytest.raises(RunRefused) as refused:
                m.start(TINY)
            assert str(refused.value) == f"cannot start: {gone}", refused.value
            assert set(m.ids()) == {"earlier", run_id}  # the runs on disk stay listed (no folder for a refused start)
            time.sleep(1)
        times["alive_after_s"] = time.monotonic() - killed
        ended = plain.poll()
        plain.kill()
        assert ended is not None, (f"a plain Ray driver outlived its cluster by {RECONNECT_S + 25} s: this test no "
                                   "longer shows a thing")
        assert "Failed to connect to GCS" in plain.communicate()[1]
    with ray_head(port):  # a new head at the same address: joined again by a new driver, without a restart
        back = time.monotonic()
        while m._pool.unavailable():
            assert time.monotonic() - back < 150, m._pool.unavailable()
            time.sleep(1)
        times["joined_again_after_s"] = time.monotonic() - back
        snap = m.wait(m.start(TINY, "after"), timeout=180)
        assert snap.status is Status.FINISHED and snap.where.startswith("ray: "), snap.message
        times["trained_again_after_s"] = time.monotonic() - back
        m.shutdown()
    print(json.dumps({k: round(v, 1) for k, v in times.items()}))


@pytest.mark.timeout(600)
def test_a_cluster_that_goes_away_fails_its_run_and_the_server_lives_on_then_uses_it_again(tmp_path: Path) -> None:
    require_ray()
    code = f"from tests.test_ray_backend import head_loss; head_loss({str(tmp_path)!r})"
    env = {**os.environ, "RAY_gcs_rpc_server_reconnect_timeout_s": str(RECONNECT_S)}  # every driver it starts
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=540)
    assert done.returncode == 0, (
        f"exit code {done.returncode} (a negative code or Ray's 'Failed to connect to GCS' below: Ray ended the "
        f"server's process)\n{done.stdout[-1500:]}\n{done.stderr[-3000:]}")
    print(done.stdout.strip().splitlines()[-1])  # the timings, for the report (pytest -s)


def _gone(pid: int) -> bool:
    """Whether a process has ended (a zombie nobody has reaped yet counts as ended: it runs nothing)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return True


def test_kill_9_of_the_process_that_trains_on_ray_hands_the_runs_to_another(tmp_path: Path) -> None:
    """One owner of training on the Ray backend (issue 28): `kill -9` of the app process that trains, its runs on a
    cluster. Its driver process ends by itself, and the actors with it, so the killed process trains nothing more;
    another app process on the same runs folder takes the lease within 10 s and carries both runs on from the folder
    on the cluster, every step recorded once."""
    require_ray()
    runs, every = tmp_path / "runs", 10
    config, waiting = TINY.replace(steps=600, checkpoint_every=every), TINY.replace(steps=40)
    port = free_port()
    address = f"127.0.0.1:{port}"
    # a head of its own: the module's manager keeps its ended runs' actors a while (IDLE_KEEP_S), holding that one's CPUs
    with ray_head(port), trainer_process(runs, config, waiting, tmp_path / "owner.log",
                                         {"GAN_RAY_ADDRESS": address}) as (trainer, started):
        follower = None
        try:
            ids, (driver,) = started["ids"], started["workers"]
            follower = RunManager(runs, max_runs=1, ray_address=address)
            assert not follower.trains and follower.snapshot(ids[0]).status is Status.RUNNING

            os.kill(trainer.pid, signal.SIGKILL)
            killed = time.monotonic()
            while not follower.trains and time.monotonic() - killed < 10:
                time.sleep(0.1)
            assert follower.trains, "no process took the runs over within 10 s of the kill"
            while not _gone(driver):  # it sees its server gone within a second, then ends its actors' slots
                assert time.monotonic() - killed < 30, "the killed server's Ray driver lives on"
                time.sleep(0.2)

            for run_id, total in zip(ids, (600, 40), strict=True):
                done = follower.wait(run_id, timeout=180)
                assert done.status is Status.FINISHED and done.step == total, done.message
                assert done.where.startswith("ray: "), done.where
                steps = [r.step for r in RunStore(runs / run_id).read_metrics()]
                assert steps == list(range(1, total + 1))  # no step twice, none missing
        finally:
            if follower is not None:
                follower.shutdown()


def test_a_trainer_on_ray_that_lost_its_lease_steps_down_and_ends_its_actors(tmp_path: Path, monkeypatch,
                                                                            postgres_url: str) -> None:
    """Never two trainers on the Ray backend (issue 28): the room on PostgreSQL, two managers on one runs folder, runs on
    a cluster. The trainer's lease is taken away (tests/test_sharing.py does the same with local workers): it steps
    down, ending its driver and so its actors; the other takes over and finishes the run, every step recorded once."""
    from gan_core.classroom.lease import STEP_DOWN_S
    from gan_core.classroom.store import URL_ENV
    from support.postgres import fresh_database, lease_taken_away

    require_ray()
    monkeypatch.setenv(URL_ENV, fresh_database(postgres_url))
    runs, total = tmp_path / "runs", 600
    port = free_port()
    address = f"127.0.0.1:{port}"
    with ray_head(port):  # of its own, as the kill test's
        first = RunManager(runs, max_runs=1, ray_address=address)
        second = RunManager(runs, max_runs=1, ray_address=address)
        try:
            assert first.trains and not second.trains
            run_id = first.start(TINY.replace(steps=total, checkpoint_every=10), "blip")
            first.wait(run_id, lambda s: s.step >= 30, timeout=180)
            driver = first._pool._driver.process.pid
            with lease_taken_away(os.environ[URL_ENV]):
                lost = time.monotonic()
                while first.trains and time.monotonic() - lost < 10:
                    time.sleep(0.05)
                assert not first.trains, "the trainer that lost its lease still trains"
                assert time.monotonic() - lost <= STEP_DOWN_S + 1
                # stepping down ends the driver (asked, then killed after 1 s), and Ray the actors it owned. Read from /proc:
                # joining the process here too would race the manager's own join for its exit status (one of two waitpid
                # calls gets ECHILD, and multiprocessing then reports a dead process alive)
                while not _gone(driver):
                    assert time.monotonic() - lost < 20, "the driver of a trainer that stepped down lives on"
                    time.sleep(0.1)
            while not second.trains:  # the lock is free, its last beat old: the second process takes it
                assert time.monotonic() - lost < 30, "no process took the runs over"
                time.sleep(0.05)
            done = second.wait(run_id, timeout=180)
            assert done.status is Status.FINISHED and done.step == total, done.message
            assert done.where.startswith("ray: "), done.where
            assert [r.step for r in RunStore(runs / run_id).read_metrics()] == list(range(1, total + 1))
            assert first.snapshot(run_id).status is Status.FINISHED  # read from the folder by the one that stepped down
        finally:
            first.shutdown()
            second.shutdown()
