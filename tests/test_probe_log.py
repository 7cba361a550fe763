"""probes.jsonl: probe records written to the run folder as a run trains, read back exactly after a restart, bounded,
with a torn last line skipped and a resumed run holding each probe step once."""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any

import numpy as np
import pytest

from gan_core.config import Activation
from gan_core.runs import probe_log
from gan_core.runs.folder import RunStore
from gan_core.runs.history import Thinned
from gan_core.runs.manager import RunManager
from gan_core.runs.probe_log import PROBE_CAPACITY, PROBES_FILE
from gan_core.runs.state import RunState
from gan_core.runs.status import Status
from gan_core.runs.train_run import open_run, record_step, train_to
from gan_core.train.probes import HIST_EDGES, BatchNormStats, LayerStats, ProbeRecord
from tests.tiny import TINY, tiny

BN = tiny("digits", width=8, steps=12, probe_every=4, sample_every=6, batch_size=16, checkpoint_every=8,
          g_batchnorm=True, d_batchnorm=True)


def same(a: Any, b: Any) -> bool:
    """Equal field by field, arrays by dtype, shape and every value (NaN equal to NaN)."""
    if dataclasses.is_dataclass(a):
        return type(a) is type(b) and all(same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, tuple | list):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return type(a) is type(b) and a == b


def _record(step: int, values: float = 1.0) -> ProbeRecord:
    """A small synthetic record (float32 arrays, as the probes make them)."""
    hist = np.full(len(HIST_EDGES) - 1, values, np.float32)
    channel = np.array([values, -0.0, 3.5e-12], np.float32)
    return ProbeRecord(step, {"G": {"block 1": 0.1 * step, "output": 2.0}, "D": {}},
                       (LayerStats("G", "block 1", Activation.TANH, 0.0, 0.25, -0.1, 1.0 / 3, hist),),
                       (BatchNormStats("G", "block 1", channel, channel, channel, channel, hist, hist,
                                       gamma=channel + 1, beta=channel - 1),))


def _steps(store: RunStore) -> list[int]:
    return [p.step for p in store.read_probes()]


def test_a_trained_runs_probe_records_read_back_exactly(tmp_path, one_thread):
    """What the trainer hands the manager and what the folder gives back after a restart are the same records."""
    store, trainer = open_run(tmp_path / "run", BN)
    seen = []
    train_to(store, trainer, on_step=lambda r: seen.append(r.probe) if r.probe is not None else None)
    assert [p.step for p in seen] == [4, 8, 12] and seen[0].batchnorm and seen[0].layers
    read = RunStore(store.path).read_probes()
    assert len(read) == len(seen) and all(same(a, b) for a, b in zip(seen, read, strict=True))


def test_nan_infinite_and_tiny_values_survive_the_round_trip(tmp_path):
    odd = dataclasses.replace(_record(5, values=math.nan), grad_norms={"G": {"block 1": math.inf, "output": 1e-300}})
    for record in (_record(10, values=7.25), odd):
        assert same(probe_log.decode(probe_log.encode(record)), record)
        assert probe_log.encode(record).count("\n") == 1 and probe_log.encode(record).endswith("\n")
    store = RunStore(tmp_path / "run").create(TINY)
    store.append_probe(odd, keep=True)
    store.close()
    assert same(store.read_probes(), [odd])


def test_a_record_written_before_gamma_and_beta_were_kept_reads_without_them():
    old = dataclasses.replace(_record(10), batchnorm=tuple(dataclasses.replace(s, gamma=None, beta=None)
                                                           for s in _record(10).batchnorm))
    line = probe_log.encode(old)
    assert '"gamma"' not in line and '"beta"' not in line  # the line such a run wrote
    assert same(probe_log.decode(line), old)


def test_a_trained_runs_records_keep_its_learned_gamma_and_beta(tmp_path, one_thread):
    store, trainer = open_run(tmp_path / "run", BN)
    train_to(store, trainer)
    first, last = (p.batchnorm[0] for p in RunStore(store.path).read_probes()[::2])
    assert last.gamma is not None and last.beta is not None and last.gamma.shape == last.batch_var.shape
    # learned: Adam has moved them from where they start (γ 1, β 0), a little more at each probe
    assert not np.allclose(last.gamma, 1.0) and not np.array_equal(first.gamma, last.gamma)


def test_a_folder_without_probes_reads_none(tmp_path):
    assert RunStore(tmp_path / "run").create(TINY).read_probes() == []


def test_a_torn_last_line_is_skipped_and_the_rest_kept(tmp_path, caplog):
    store = RunStore(tmp_path / "run").create(TINY)
    for step in (5, 10, 15):
        store.append_probe(_record(step), keep=True)
    store.close()
    file = store.path / PROBES_FILE
    line = probe_log.encode(_record(20))
    with open(file, "a") as fh:
        fh.write(line[: len(line) // 2])  # a kill -9 mid-write
    with caplog.at_level(logging.WARNING):
        assert _steps(store) == [5, 10, 15]
    assert "cut off mid-write" in caplog.text and PROBES_FILE in caplog.text

    # a damaged line inside the file (a bad disk block, an edit by hand) costs that record only
    lines = file.read_bytes().split(b"\n")
    lines[1] = b"\x00\xff{not json"
    file.write_bytes(b"\n".join(lines))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert _steps(store) == [5, 15]
    assert "line 2, which is damaged" in caplog.text

    store.truncate_probes(100)  # a resume rewrites the file without them, so appends follow whole lines
    store.append_probe(_record(20), keep=True)
    store.close()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert _steps(store) == [5, 15, 20]
    assert not caplog.text


def test_a_resumed_run_holds_each_probe_step_once(tmp_path, one_thread):
    store, trainer = open_run(tmp_path / "run", TINY)
    train_to(store, trainer, until=20)  # a checkpoint at 20
    for _ in range(7):  # steps past the checkpoint, as a kill -9 leaves them (probes at 25 flushed, 27 left torn)
        record_step(store, trainer.step(), trainer.config)
    store.flush()
    with open(store.path / PROBES_FILE, "a") as fh:
        fh.write('{"step":30,"grad_no')
    assert _steps(RunStore(store.path)) == [5, 10, 15, 20, 25]
    store.truncate_metrics(22)  # the metrics flushed a little earlier than the probes: the manager shows neither past 22
    state = RunState("run", RunStore(store.path), TINY, 0.0)
    state.reload_history()
    assert state.step == 22 and [p.step for p in state.probes.items()] == [5, 10, 15, 20]

    store, trainer = open_run(store.path)
    assert trainer.step_count == 20 and _steps(store) == [5, 10, 15, 20]  # truncated to the checkpoint
    train_to(store, trainer)
    assert _steps(store) == list(range(5, 61, 5))


def test_the_file_keeps_what_the_managers_thinned_history_keeps(tmp_path, one_thread):
    """A run with more probe records than PROBE_CAPACITY writes the ones history.Thinned keeps in memory, and a stop
    part-way also writes the last record it saw."""
    config = TINY.replace(steps=2_000, probe_every=2, checkpoint_every=1_000)
    assert probe_log.stride(config) == 4 and probe_log.stride(TINY) == 1
    thinned: Thinned[int] = Thinned(PROBE_CAPACITY)
    for step in range(2, 2_001, 2):
        thinned.append(step)
    written = [s for s in range(2, 2_001, 2) if probe_log.kept(s, config)]
    assert written == thinned.items()[:-1] and len(written) == 250  # Thinned also keeps the latest: 2,000

    store, trainer = open_run(tmp_path / "run", config)
    train_to(store, trainer, until=31)
    assert _steps(store) == [2, 10, 18, 26, 30]  # every 4th record, and 30, the last one before the stop


def test_a_resume_thins_an_overlong_file_to_the_capacity(tmp_path):
    """Resumes that keep raising a run's total each add up to PROBE_CAPACITY records: reopening thins them."""
    store = RunStore(tmp_path / "run").create(TINY)
    for step in range(1, 701):
        store.append_probe(_record(step), keep=True)
    store.truncate_probes(650)
    steps = _steps(store)
    assert len(steps) <= PROBE_CAPACITY + 1 and steps[0] == 1 and steps[-1] == 650
    assert len(set(np.diff(steps[:-1]))) == 1  # evenly spaced


def test_a_restart_shows_a_finished_runs_probes_as_before(tmp_path, one_thread):
    runs = tmp_path / "runs"
    first = RunManager(runs, max_runs=1, processes=False)
    try:
        run_id = first.start(BN, "bn")
        before = first.wait(run_id, timeout=60)
    finally:
        first.shutdown()
    assert before.status is Status.FINISHED and [p.step for p in before.probes] == [4, 8, 12]

    again = RunManager(runs, max_runs=1, processes=False)  # a new server on the same folder
    try:
        after = again.snapshot(run_id)
    finally:
        again.shutdown()
    assert after.status is Status.FINISHED and same(after.probes, before.probes)


@pytest.mark.parametrize("steps, expected", [(2_000, 200), (20_000, 250)])
def test_the_file_size_is_bounded_by_the_capacity(steps, expected):
    config = tiny("digits").replace(steps=steps)  # the preset's probe_every: 10
    assert sum(probe_log.kept(s, config) for s in range(config.probe_every, steps + 1, config.probe_every)) == expected


def test_records_are_written_only_where_kept(tmp_path):
    store = RunStore(tmp_path / "run").create(TINY)
    store.append_probe(_record(1), keep=True)
    store.append_probe(_record(2), keep=False)
    store.append_probe(_record(3), keep=False)
    store.flush()
    assert _steps(store) == [1]
    store.close()  # the newest record, not yet written, is written when training ends
    assert _steps(store) == [1, 3]
