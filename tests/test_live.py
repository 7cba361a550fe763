"""ui.live: periodic refreshes of a training run share one snapshot for FRESH_S; anything else reads the run as it is."""

from __future__ import annotations

import time

import pytest

from gan_core.runs.status import Status
from tests.tiny import tiny
from ui import live

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
