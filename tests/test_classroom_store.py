"""The classroom store's contract, run against both of its databases: SQLite (a file, as in a runs folder) and a real
PostgreSQL server this session starts in a temporary folder (tests/conftest.py postgres_url). Two Store objects on one
URL stand for two app processes; one test uses a second process for real."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gan_core.classroom.stage import Stage
from gan_core.classroom.store import SQLITE_FILE, URL_ENV, open_store, state_url
from support.server import REPO_ROOT
from tests.conftest import require_postgres


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.server)])  # a server: not --quick
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / SQLITE_FILE}"
    from support.postgres import fresh_database

    # a database of this test's own on the session's server: each test starts from an empty room
    return fresh_database(request.getfixturevalue("postgres_url"))


def test_a_stage_versions_each_change_and_empties_when_no_presenter_is_seen(url):
    clock = Clock()
    stage = Stage(open_store(url), active_s=10.0, clock=clock)
    assert stage.current() is None
    stage.heartbeat()  # a heartbeat with nothing published sets no scene
    assert stage.current() is None
    first = stage.publish("training", "run-a")
    assert stage.current() == first and first.version == 1
    assert stage.publish("training", "run-a") == first  # a rerun of the same page and run: the same version
    second = stage.publish("training", "run-b")
    third = stage.publish("", None)
    assert (second.version, third.version) == (2, 3) and stage.current().page == "" and stage.current().run is None

    clock.now += 9.0
    stage.heartbeat()
    clock.now += 9.0
    assert stage.current() == third  # kept alive by the heartbeat
    clock.now += 1.5
    assert stage.current() is None  # the presenter's tab went quiet
    back = stage.publish("", None)  # the same scene again: a new version, so followers who wandered rejoin
    assert back.version == 4 and stage.current() == back
    stage.clear()
    assert stage.current() is None
    assert stage.publish("training", "run-a").version == 5  # versions never go back, whoever reads them
    with pytest.raises(ValueError, match="active_s must be above 0"):
        Stage(open_store(url), active_s=0)


def test_two_processes_see_one_stage_and_concurrent_changes_each_get_their_own_version(url):
    presenter, student = Stage(open_store(url)), Stage(open_store(url))  # two app processes' stores
    scene = presenter.publish("batch_norm", "run-1")
    assert student.current() == scene
    seen: list[int] = []
    lock = threading.Lock()

    def publish(n: int) -> None:
        for i in range(10):
            version = (presenter if n % 2 else student).publish(f"page-{n}-{i}", None).version
            with lock:
                seen.append(version)

    threads = [threading.Thread(target=publish, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # every change a new version, none lost or given twice: the read and the write of each are one transaction
    assert sorted(seen) == list(range(scene.version + 1, scene.version + 61))
    assert student.current().version == scene.version + 60


@pytest.mark.server
def test_a_scene_published_by_another_process_is_read_here(url):
    code = ("import sys; from gan_core.classroom.stage import Stage; from gan_core.classroom.store import open_store; "
            "print(Stage(open_store(sys.argv[1])).publish('mode_collapse', 'run-7').version)")
    done = subprocess.run([sys.executable, "-c", code, url], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    scene = Stage(open_store(url)).current()
    assert scene is not None and (scene.page, scene.run, scene.version) == ("mode_collapse", "run-7", int(done.stdout))


def test_the_store_is_a_file_in_the_runs_folder_unless_gan_state_url_names_one(tmp_path, monkeypatch):
    monkeypatch.delenv(URL_ENV, raising=False)
    url = state_url(tmp_path / "runs")
    assert url == f"sqlite:///{(tmp_path / 'runs' / SQLITE_FILE).resolve()}"
    store = open_store(url)
    assert store.rows("PRAGMA journal_mode") == [("wal",)]  # readers never wait for a writer
    assert (tmp_path / "runs" / SQLITE_FILE).is_file()
    monkeypatch.setenv(URL_ENV, "postgresql://room@db.example/classroom")
    assert state_url(tmp_path / "runs") == "postgresql://room@db.example/classroom"
    for bad in ("mysql://x", "classroom.db"):
        with pytest.raises(ValueError, match=f"{URL_ENV} must be sqlite:///path or postgresql://"):
            open_store(bad)


@pytest.mark.server
def test_an_unreachable_postgresql_server_is_one_line_naming_gan_state_url(postgres_url):
    from support.server import free_port

    store = open_store(f"postgresql://gan@127.0.0.1:{free_port()}/postgres")
    with pytest.raises(ValueError, match=f"^{URL_ENV}: cannot connect to PostgreSQL: ") as refused:
        store.rows("SELECT 1")
    assert "\n" not in str(refused.value)


def test_one_lease_holder_at_a_time_and_the_lease_goes_with_its_holder(url, tmp_path):
    """The training lease (gan_core.classroom.lease) on both databases: a file lock beside SQLite, an advisory lock on
    PostgreSQL; a holder's end (its connection or descriptor closed, as a process's death closes them) frees it."""
    from gan_core.classroom.lease import lease_for

    runs = tmp_path / "runs"
    runs.mkdir()
    first, second = lease_for(open_store(url), runs), lease_for(open_store(url), runs)
    assert first.try_acquire() and first.try_acquire()  # held: asking again keeps it
    assert not second.try_acquire()
    first.release()
    assert second.try_acquire() and not first.try_acquire()
    second.release()


def test_an_order_sent_from_one_store_is_answered_through_another(url):
    """Orders to the process that trains (gan_core.classroom.orders): asked through one store, taken and answered
    through another, as two app processes do; taken once, whoever looks."""
    from gan_core.classroom.orders import Orders

    asker, owner = Orders(open_store(url)), Orders(open_store(url))
    taken: list = []

    def serve() -> None:
        while not taken:
            for order in owner.take():
                taken.append(order)
                owner.answer(order, {"value": [order.verb, order.args, order.token, order.presenter]})

    thread = threading.Thread(target=serve)
    thread.start()
    answer = asker.ask("pause", {"run_id": "r-1"}, "tok", False, wait_s=10)
    thread.join(10)
    assert answer == {"value": ["pause", {"run_id": "r-1"}, "tok", False]}
    assert len(taken) == 1 and owner.take() == []
    with pytest.raises(TimeoutError, match="did not answer"):  # nobody takes it: withdrawn, never carried out late
        asker.ask("stop", {"run_id": "r-1"}, None, True, wait_s=0.3)
    assert owner.take() == []


@pytest.mark.server
def test_a_postgresql_restart_under_the_room_is_not_seen_by_its_reads_writes_or_transactions():
    """A blip: the database crashes and comes back on the same address while the room's store holds idle connections
    to it. The next read, write and transaction each work at once (the dead connections are dropped, and what failed
    on one runs again on a new one), and the room's state is what it was."""
    require_postgres()
    from gan_core.classroom.orders import Orders
    from support.postgres import local_postgres, restart_postgres

    with local_postgres() as base:
        store = open_store(base)
        stage = Stage(store)
        scene = stage.publish("training", "run-a")
        with store.transaction(write=False), store.transaction(write=False), store.transaction(write=False):
            pass  # three connections, all idle in the pool now
        assert store._idle.qsize() == 3
        restart_postgres(base)
        assert stage.current() == scene  # a read
        restart_postgres(base)
        stage.heartbeat()  # a write
        assert stage.publish("batch_norm", "run-b").version == scene.version + 1  # a transaction
        restart_postgres(base)
        asker, owner = Orders(store), Orders(open_store(base))
        answered = threading.Thread(target=lambda: [owner.answer(o, {"value": o.verb}) for o in _taken(owner)])
        answered.start()
        assert asker.ask("pause", {"run_id": "r-1"}, None, True, wait_s=10) == {"value": "pause"}  # an order's insert
        answered.join(10)
        assert store._idle.qsize() <= 3
        store.close()

        broken = open_store(base)
        broken.rows("SELECT 1")
        restart_postgres(base)
        import psycopg

        with pytest.raises(psycopg.OperationalError), broken.transaction() as cursor:
            cursor.execute("SELECT 1")
            restart_postgres(base)  # mid-transaction: not run again (its statements may have been done), but said
            cursor.execute("SELECT 1")
        assert broken.rows("SELECT 2") == [(2,)]  # and the store goes on
        broken.close()


def _taken(orders: object, wait_s: float = 10.0) -> list:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if found := orders.take():
            return found
        time.sleep(0.05)
    return []
