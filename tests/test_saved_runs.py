"""Run folders written by an earlier version still load: listed with their curves and samples, resumed from their
checkpoint, sampled from the command line.

tests/fixtures/runs_v1/ holds two folders written before the engine was split into packages (commit 29c3f6c): a ring run
made by the dashboard (with status.json) and a conditional digits run made by `python -m gan_core train`. They are copied
before use, so no test changes them.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from gan_core import cli
from gan_core.config import Dataset
from gan_core.runs.folder import RunStore
from gan_core.runs.manager import RunManager
from gan_core.runs.status import Status
from gan_core.runs.train_run import open_run, train_to

FIXTURES = Path(__file__).parent / "fixtures" / "runs_v1"
RING = "ring-fixture-20261128-213926"
DIGITS = "digits-fixture-20261128-213900"


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES, tmp_path / "runs"))


@pytest.fixture
def manager(runs: Path) -> Iterator[RunManager]:
    m = RunManager(runs, max_runs=1, processes=False)
    yield m
    m.shutdown()


def test_old_folders_are_listed_with_their_curves_and_samples(manager, caplog):
    assert sorted(manager.ids()) == sorted([RING, DIGITS])
    # written before probe records were saved: no probes, and nothing to warn about
    assert not any(r.levelno >= logging.WARNING for r in caplog.get_records("setup") + caplog.records)
    assert manager.snapshot(RING).probes == () and manager.snapshot(DIGITS).probes == ()
    ring = manager.snapshot(RING)
    assert ring.status is Status.FINISHED and ring.step == 40 and ring.config.dataset is Dataset.RING
    assert list(ring.metrics["step"]) == list(range(1, 41)) and np.isfinite(ring.metrics["d_loss"]).all()
    assert [s.step for s in ring.samples] == [0, 10, 20, 30, 40]
    assert ring.samples[-1].samples.shape == (16, 2) and ring.samples[-1].field is not None
    digits = manager.snapshot(DIGITS)
    assert digits.step == 40 and digits.config.conditional
    assert digits.samples[-1].samples.shape == (16, 1, 8, 8) and digits.samples[-1].labels is not None


def test_an_old_run_resumes_in_the_dashboard(manager):
    manager.resume(RING, steps=60)
    snap = manager.wait(RING, timeout=60)
    assert snap.status is Status.FINISHED and snap.step == 60
    assert list(snap.metrics["step"]) == list(range(1, 61))


@pytest.mark.parametrize("run_id", [RING, DIGITS])
def test_an_old_checkpoint_resumes_where_it_stopped(runs, run_id):
    store, trainer = open_run(runs / run_id, steps=50)
    assert trainer.step_count == 40
    assert train_to(store, trainer) == 50
    steps = [r.step for r in RunStore(runs / run_id).read_metrics()]
    assert steps == list(range(1, 51))


def test_an_old_run_is_sampled_from_the_command_line(runs, tmp_path):
    out = tmp_path / "digits.npy"
    assert cli.main(["sample", "--run", str(runs / DIGITS), "--n", "20", "--label", "3", "--out", str(out)]) == 0
    x = np.load(out)
    assert x.shape == (20, 1, 8, 8) and 0.0 <= x.min() and x.max() <= 1.0
