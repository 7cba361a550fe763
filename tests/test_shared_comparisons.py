"""The room's lesson comparisons: one per kind for everyone, the identity rule, "Run it again", the store that keeps
them across restarts (a kill -9 included) and shares them between app processes, and the file older versions kept."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from gan_core.config import ConfigError
from gan_core.lessons.comparisons import COMPARISONS
from gan_core.lessons.shared_comparisons import COMPARISONS_FILE, SharedComparisons, fingerprint
from gan_core.runs.manager import RunManager
from gan_core.runs.roles import Actor, RunRefused
from gan_core.runs.status import Status
from tests.tiny import SLOW, TINY

NAME = "dying-relu"
# the real comparison's variants and question over a run that trains in about a second
QUICK = {NAME: replace(COMPARISONS[NAME], base=TINY.replace(seed=0))}
LONG = {NAME: replace(COMPARISONS[NAME], base=SLOW.replace(seed=0))}


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"


@pytest.fixture
def manager(runs_dir: Path) -> Iterator[RunManager]:
    m = RunManager(runs_dir, max_runs=1, processes=False)
    yield m
    m.shutdown()


def _wait_all(manager: RunManager, runs: dict[str, str]) -> None:
    for run_id in runs.values():
        manager.wait(run_id, timeout=60)


def test_start_trains_every_variant_and_everyone_sees_it(manager):
    store = SharedComparisons(manager, QUICK)
    assert store.current(NAME) is None
    first = store.start(NAME)
    assert not first.reused and list(first.runs) == ["ReLU in D", "leaky ReLU in D"] and first.seed == 0
    assert sorted(manager.ids()) == sorted(first.runs.values())
    configs = {label: manager.snapshot(i).config for label, i in first.runs.items()}
    assert configs == QUICK[NAME].configs() and first.fingerprint == fingerprint(configs)
    # another browser's look (a second store over the same manager is what a second page sees after a restart)
    assert store.current(NAME).runs == first.runs
    _wait_all(manager, first.runs)


def test_pressing_again_shows_the_identical_comparison_queued_running_or_finished(manager):
    store = SharedComparisons(manager, QUICK)
    first = store.start(NAME)
    again = store.start(NAME)  # queued or running
    assert again.reused and again.runs == first.runs
    _wait_all(manager, first.runs)
    assert all(manager.status(i) is Status.FINISHED for i in first.runs.values())
    finished = store.start(NAME, actor=Actor("student", presenter=False))  # no quota used: nothing starts
    assert finished.reused and finished.runs == first.runs and len(manager.ids()) == 2


@pytest.mark.slow
def test_run_it_again_uses_a_new_seed_and_becomes_the_shown_one(manager):
    store = SharedComparisons(manager, QUICK)
    first = store.start(NAME)
    _wait_all(manager, first.runs)
    second = store.start(NAME, again=True)
    assert not second.reused and second.seed == 1 and not set(second.runs.values()) & set(first.runs.values())
    assert all(manager.snapshot(i).config.seed == 1 for i in second.runs.values())
    assert all("-seed1-" in i for i in second.runs.values())
    assert store.current(NAME).runs == second.runs
    # a second "Run it again" while those train (another browser's click) shows them: no third pair
    assert store.start(NAME, again=True).runs == second.runs and len(manager.ids()) == 4
    _wait_all(manager, second.runs)
    assert store.start(NAME, again=True).seed == 2
    # the plain button now finds the seed-0 comparison, finished, and shows it again instead of training it
    back = store.start(NAME)
    assert back.reused and back.runs == first.runs and store.current(NAME).runs == first.runs


def test_a_stopped_comparison_is_trained_again_not_shown(manager):
    store = SharedComparisons(manager, LONG)
    first = store.start(NAME)
    for run_id in first.runs.values():
        manager.stop(run_id)
    for run_id in first.runs.values():
        manager.wait(run_id, timeout=30)
    second = store.start(NAME)
    assert not second.reused and second.seed == 0 and second.runs != first.runs
    assert second.fingerprint == first.fingerprint
    for run_id in second.runs.values():
        manager.stop(run_id)


def test_a_restart_shows_the_same_comparison(runs_dir, manager):
    first = SharedComparisons(manager, QUICK).start(NAME)
    _wait_all(manager, first.runs)
    manager.shutdown()
    restarted = RunManager(runs_dir, max_runs=1, processes=False)
    try:
        store = SharedComparisons(restarted, QUICK)
        assert store.current(NAME).runs == first.runs
        assert store.start(NAME).reused and len(restarted.ids()) == 2  # finished before the restart: not trained again
    finally:
        restarted.shutdown()


@pytest.mark.parametrize("text", ["", "{not json", "[]", '{"comparisons": 3}',
                                  '{"comparisons": {"dying-relu": {"shown": [{"runs": {"a": "../etc"}}]}}}',
                                  '{"comparisons": {"dying-relu": {"last_seed": 0, "shown": 7}}}'])
def test_a_damaged_file_from_before_the_store_is_no_comparison(runs_dir, manager, text):
    (runs_dir / COMPARISONS_FILE).write_text(text)
    store = SharedComparisons(manager, LONG)
    assert store.current(NAME) is None
    started = store.start(NAME)
    assert SharedComparisons(manager, LONG).current(NAME).runs == started.runs  # kept in the room's store
    for run_id in started.runs.values():
        manager.stop(run_id)


def test_a_file_from_before_the_store_is_read_once_and_kept(runs_dir, manager):
    first = SharedComparisons(manager, QUICK).start(NAME)
    _wait_all(manager, first.runs)
    manager.shutdown()
    entry = {"seed": first.seed, "runs": first.runs, "fingerprint": first.fingerprint, "started": first.started}
    (runs_dir / COMPARISONS_FILE).write_text(json.dumps({"comparisons": {NAME: {"last_seed": 0, "shown": [entry]}}}))
    for leftover in runs_dir.glob("classroom.db*"):  # the folder as an older version left it
        leftover.unlink()
    older = RunManager(runs_dir, max_runs=1, processes=False)
    try:
        assert SharedComparisons(older, QUICK).current(NAME).runs == first.runs
        (runs_dir / COMPARISONS_FILE).write_text("{}")  # read once: the store is the truth from then on
        assert SharedComparisons(older, QUICK).current(NAME).runs == first.runs
    finally:
        older.shutdown()


def test_two_app_processes_show_one_comparison_and_train_it_once(runs_dir, manager):
    """A second manager on the folder is a second app process of the room: it does not train (gan_core.runs.sharing),
    and the comparison is a row of the room's store, so both show the same one and a press in either trains it once."""
    other = RunManager(runs_dir, max_runs=1, processes=False)
    try:
        assert manager.trains and not other.trains
        first = SharedComparisons(manager, QUICK).start(NAME)
        there = SharedComparisons(other, QUICK)
        assert there.current(NAME).runs == first.runs
        pressed = there.start(NAME)
        assert pressed.reused and pressed.runs == first.runs and len(manager.ids()) == 2
        _wait_all(other, first.runs)
        again = there.start(NAME, again=True)  # pressed in the process that does not train: trained by the one that does
        assert not again.reused and again.seed == 1 and set(again.runs.values()) <= set(manager.ids())
        assert SharedComparisons(manager, QUICK).current(NAME).runs == again.runs
        _wait_all(manager, again.runs)
    finally:
        other.shutdown()


@pytest.mark.slow
def test_deleted_runs_are_no_comparison(manager):
    store = SharedComparisons(manager, QUICK)
    first = store.start(NAME)
    _wait_all(manager, first.runs)
    second = store.start(NAME, again=True)
    _wait_all(manager, second.runs)
    manager.delete(next(iter(second.runs.values())))  # one of the pair is enough
    assert store.current(NAME).runs == first.runs  # the latest whose runs all exist
    for run_id in first.runs.values():
        manager.delete(run_id)
    assert store.current(NAME) is None
    assert SharedComparisons(manager, QUICK).current(NAME) is None  # after a restart too
    third = store.start(NAME)
    assert not third.reused and set(third.runs.values()) <= set(manager.ids())
    _wait_all(manager, third.runs)


def test_a_refused_start_changes_nothing(manager):
    manager.limits = replace(manager.limits, session_runs=1)  # a student session: one active run; a comparison needs two
    store = SharedComparisons(manager, LONG)
    with pytest.raises(RunRefused, match="needs 2 runs"):
        store.start(NAME, actor=Actor("student", presenter=False))
    assert store.current(NAME) is None and not manager.ids()
    with pytest.raises(ConfigError, match="unknown comparison"):
        store.start("nope")


_SERVER = textwrap.dedent("""
    import sys, time
    from dataclasses import replace
    from gan_core.lessons.comparisons import COMPARISONS
    from gan_core.lessons.shared_comparisons import SharedComparisons
    from gan_core.runs.manager import RunManager
    from tests.tiny import SLOW
    comparisons = {"dying-relu": replace(COMPARISONS["dying-relu"], base=SLOW.replace(seed=0))}
    manager = RunManager(sys.argv[1], max_runs=1, processes=False)
    shown = SharedComparisons(manager, comparisons).start("dying-relu")
    manager.wait(next(iter(shown.runs.values())), lambda s: s.step >= 5, timeout=120)
    print(",".join(shown.runs.values()), flush=True)
    time.sleep(600)
""")


@pytest.mark.server
def test_kill_9_during_a_comparison_then_restart_shows_the_same_comparison(runs_dir):
    """The issue's target: a server killed (-9) while its comparison trains; the next one shows that comparison, and
    pressing the button does not train it a second time while it is there."""
    proc = subprocess.Popen([sys.executable, "-c", _SERVER, str(runs_dir)], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[1], env={**os.environ, "PYTHONPATH": "."})
    try:
        line = proc.stdout.readline().strip()
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    assert line, "the server process printed no run ids"
    ids = line.split(",")
    restarted = RunManager(runs_dir, max_runs=1, processes=False)
    try:
        store = SharedComparisons(restarted, LONG)
        shown = store.current(NAME)
        assert shown is not None and list(shown.runs.values()) == ids
        configs = {label: restarted.snapshot(i).config for label, i in shown.runs.items()}
        assert configs == LONG[NAME].configs()  # the same runs, read back from their folders
        statuses = [restarted.status(i) for i in ids]
        again = store.start(NAME)
        if any(s.active for s in statuses):  # the manager brought a run back to the queue: shown, not trained twice
            assert again.reused and again.runs == shown.runs
        else:  # the kill left them stopped: "already there" is queued, running, paused or finished only
            assert not again.reused and again.runs != shown.runs
        for run_id in restarted.ids():
            if restarted.status(run_id).active:
                restarted.stop(run_id)
    finally:
        restarted.shutdown()
