"""ui.live: periodic refreshes of a training run share one snapshot for FRESH_S; anything else reads the run as it is.
ui.sidebar: the run picker's order and filters."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from gan_core.config import Dataset
from gan_core.runs.folder import RunStore
from gan_core.runs.status import Status
from tests.test_pages import _app
from tests.tiny import tiny
from ui import live, sidebar

pytestmark = pytest.mark.usefixtures("fresh_manager")


def test_refreshes_share_a_snapshot_of_a_running_run_but_never_of_a_paused_one(monkeypatch):
    manager = live.get_manager()
    run_id = manager.start(tiny("ring-bce", width=8, steps=1_000_000), "shared")
    manager.wait(run_id, lambda s: s.step > 5)
    monkeypatch.setattr(live, "FRESH_S", 60.0)
    first = live.shared_snapshot(run_id)
    manager.wait(run_id, lambda s: s.version > first.version)
    assert live.shared_snapshot(run_id) is first  # the worker moved on; the classroom draws one version

    monkeypatch.setattr(live, "FRESH_S", 0.0)
    assert live.shared_snapshot(run_id).version > first.version

    monkeypatch.setattr(live, "FRESH_S", 60.0)
    manager.pause(run_id)
    manager.wait(run_id, lambda s: s.status is Status.PAUSED)
    paused = live.shared_snapshot(run_id)  # the cached one was running: a paused run is read as it is
    assert paused.status is Status.PAUSED
    manager.stop(run_id)
    manager.wait(run_id, lambda s: not s.status.active)
    time.sleep(0.01)
    assert not live.shared_snapshot(run_id).status.active


def make_runs(runs_dir: Path, specs: list[tuple[str, str | None, str, str]]) -> None:
    """Run folders without training: (id, owner, kind, status) each, created one second apart in the order given.
    status: "stopped" (a run never trained), or "diverged" / "failed" (read back from status.json)."""
    for n, (run_id, owner, kind, status) in enumerate(specs):
        store = RunStore(runs_dir / run_id).create(tiny("ring-bce" if kind == "ring" else "digits", steps=10))
        store.write_status({"status": status, "message": "", "created": 1_000.0 + n, "owner": owner})


def _options(app: AppTest) -> list[str]:
    return [label.split(" · ")[0] for label in app.sidebar.selectbox(key=live.PICKER).options]


def test_the_picker_lists_the_presenters_runs_first_then_the_newest_and_filters_them(tmp_path, monkeypatch):
    make_runs(tmp_path / "runs", [
        ("lesson-1", None, "ring", "stopped"), ("alice", "s1", "digits", "stopped"), ("lesson-2", None, "digits",
        "diverged"), ("bob", "s2", "ring", "failed"), ("carol", "s3", "ring", "stopped"), ("dave", "s4", "digits",
        "stopped"), ("erin", "s5", "ring", "diverged"), ("frank", "s6", "digits", "stopped")])
    app = _app()
    assert _options(app) == ["lesson-2", "lesson-1", "frank", "erin", "dave", "carol", "bob", "alice"]
    assert app.session_state[live.SELECTED] == "lesson-2"  # a new browser shows the presenter's newest run

    kinds = app.sidebar.button_group(key=sidebar.KIND_FILTER)
    assert kinds.options and len(kinds.options) == 2  # only the kinds some run has: digits and ring
    kinds.set_value([Dataset.RING]).run()
    assert _options(app) == ["lesson-2", "lesson-1", "erin", "carol", "bob"]  # the run shown stays listed
    assert any("4 of 8 runs match" in c.value for c in app.sidebar.caption)
    app.sidebar.button_group(key=sidebar.STATUS_FILTER).set_value([Status.DIVERGED, Status.FAILED]).run()
    assert _options(app) == ["lesson-2", "erin", "bob"]
    app.sidebar.selectbox(key=live.PICKER).set_value("bob").run()
    assert _options(app) == ["erin", "bob"] and app.session_state[live.SELECTED] == "bob"
    app.sidebar.text_input(key=sidebar.NAME_FILTER).set_value("ER").run()
    assert _options(app) == ["bob", "erin"]  # the name filter ignores case; bob is shown, so listed (first)

    # the presenter (no key: every session is) deletes the run it picked from the filtered list
    app.sidebar.button(key="sidebar_delete_bob").click().run()
    app.sidebar.button(key="sidebar_delete_yes_bob").click().run()
    assert not app.exception and "bob" not in live.get_manager()
    assert _options(app) == ["erin"] and app.session_state[live.SELECTED] == "erin"

    monkeypatch.setattr(sidebar, "PICKER_MAX", 3)
    app.sidebar.text_input(key=sidebar.NAME_FILTER).set_value("").run()
    app.sidebar.button_group(key=sidebar.STATUS_FILTER).set_value([]).run()
    app.sidebar.button_group(key=sidebar.KIND_FILTER).set_value([]).run()
    assert _options(app) == ["erin", "lesson-2", "lesson-1", "frank"]  # the first three, and the one shown
    assert any("The first 3 of 7 runs" in c.value for c in app.sidebar.caption)


def test_few_runs_need_no_filters(tmp_path):
    make_runs(tmp_path / "runs", [("a", None, "ring", "stopped"), ("b", "s1", "ring", "stopped")])
    app = _app()
    assert _options(app) == ["a", "b"]  # the presenter's, though older
    assert not app.sidebar.expander and not app.sidebar.button_group
