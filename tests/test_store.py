"""The run folder: safe names, metrics.csv that survives crashes, atomic and safe checkpoints, sample snapshots."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from gan_core.config import ConfigError
from gan_core.runs import folder as store_module
from gan_core.runs.folder import CHECKPOINT_FILE, CONFIG_FILE, METRICS_FILE, RunStore, sanitize_name
from gan_core.train.records import METRIC_COLUMNS, CheckpointError, SampleRecord, StepRecord
from tests.tiny import tiny

SAFE = re.compile(r"^[a-z0-9_-]{1,64}$")
CONFIG = tiny("ring-bce", steps=10, batch_size=64)


def _record(step: int, gp: float = math.nan) -> StepRecord:
    return StepRecord(step=step, time_s=0.5 * step, d_loss=0.69 + step / 1000, g_loss=0.7 - step / 1000, d_real=0.5,
                      d_fake=0.25, d_loss_real=0.125, d_loss_fake=-1.5e-7, gp=gp)


@pytest.fixture
def run(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "run").create(CONFIG)


# -- names -------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, expected", [
    ("../etc", "etc"),
    ("/etc/passwd", "etc-passwd"),
    ("..\\..\\windows", "windows"),
    ("My Run 1", "my-run-1"),
    ("Café Über", "cafe-uber"),
    ("ok_name-2", "ok_name-2"),
])
def test_sanitize_name(name, expected):
    assert sanitize_name(name) == expected


@pytest.mark.parametrize("name", ["../../../../tmp/x", "a/b/../../c", "x" * 200, "Ünïcödé/..//名前abc", "run.d"])
def test_sanitize_name_always_gives_one_safe_folder_name(name):
    text = sanitize_name(name)
    assert SAFE.match(text), text
    assert "/" not in text and "." not in text


@pytest.mark.parametrize("name", ["", "   ", "..", "../..", "/", "名前", "---", "🙂"])
def test_sanitize_name_refuses_names_without_letters_or_digits(name):
    with pytest.raises(ConfigError) as err:
        sanitize_name(name)
    assert err.value.field == "name"


# -- config ------------------------------------------------------------------------------------------------------------
def test_create_writes_config_and_refuses_an_existing_run(run):
    assert run.exists() and (run.path / CONFIG_FILE).is_file()
    assert run.read_config() == CONFIG
    with pytest.raises(FileExistsError):
        RunStore(run.path).create(CONFIG)
    assert RunStore(run.path).read_config() == CONFIG  # the refused create left the run alone


def test_read_config_of_a_missing_or_broken_run(tmp_path):
    with pytest.raises(ConfigError):
        RunStore(tmp_path / "nothing").read_config()
    (tmp_path / CONFIG_FILE).write_text("{not json")
    with pytest.raises(ConfigError):
        RunStore(tmp_path).read_config()
    (tmp_path / CONFIG_FILE).write_text("[1, 2]")
    with pytest.raises(ConfigError):
        RunStore(tmp_path).read_config()


# -- metrics -----------------------------------------------------------------------------------------------------------
def test_metrics_round_trip_with_nan_gp_as_empty_cell(run):
    records = [_record(1), _record(2, gp=0.125), _record(3)]
    for r in records:
        run.append_metrics(r)
    run.close()
    lines = (run.path / METRICS_FILE).read_text().splitlines()
    assert lines[0] == ",".join(METRIC_COLUMNS)
    assert lines[0].startswith("step,time_s,d_loss,g_loss,d_real,d_fake")
    assert lines[1].endswith(",")  # NaN gp is an empty cell
    back = run.read_metrics()
    assert [r.step for r in back] == [1, 2, 3]
    assert math.isnan(back[0].gp) and back[1].gp == pytest.approx(0.125)
    for a, b in zip(records, back, strict=True):
        for c in METRIC_COLUMNS:
            x, y = getattr(a, c), getattr(b, c)
            assert (math.isnan(x) and math.isnan(y)) or y == pytest.approx(x, rel=1e-5), c
    assert isinstance(back[0].step, int)


def test_read_metrics_while_still_writing(run):
    run.append_metrics(_record(1))
    run.append_metrics(_record(2))
    assert [r.step for r in run.read_metrics()] == [1, 2]  # reading flushes first
    run.close()


def test_read_metrics_without_a_file(run):
    assert run.read_metrics() == []


def test_torn_last_line_is_skipped(run):
    run.append_metrics(_record(1))
    run.append_metrics(_record(2))
    run.close()
    with open(run.path / METRICS_FILE, "a") as fh:
        fh.write("3,1.5,0.6")  # a crash mid-write: no newline
    assert [r.step for r in run.read_metrics()] == [1, 2]


def test_damaged_row_raises_config_error(run):
    run.append_metrics(_record(1))
    run.close()
    with open(run.path / METRICS_FILE, "a") as fh:
        fh.write("2,abc,0.6,0.7,0.5,0.5,0.1,0.1,\n")
    with pytest.raises(ConfigError, match="line 3"):
        run.read_metrics()


def test_row_with_wrong_column_count_raises_config_error(run):
    run.append_metrics(_record(1))
    run.close()
    with open(run.path / METRICS_FILE, "a") as fh:
        fh.write("2,1.0,0.6\n")
    with pytest.raises(ConfigError):
        run.read_metrics()


def test_unexpected_header_raises_config_error(run):
    (run.path / METRICS_FILE).write_text("a,b,c\n1,2,3\n")
    with pytest.raises(ConfigError):
        run.read_metrics()


def test_truncate_metrics(run):
    for step in range(1, 8):
        run.append_metrics(_record(step, gp=0.5 if step % 2 else math.nan))
    run.truncate_metrics(4)
    back = run.read_metrics()
    assert [r.step for r in back] == [1, 2, 3, 4]
    assert back[0].gp == 0.5 and math.isnan(back[1].gp)
    run.append_metrics(_record(5))  # appending after truncation continues the same file with one header
    run.close()
    text = (run.path / METRICS_FILE).read_text()
    assert text.count("step,time_s") == 1
    assert [r.step for r in run.read_metrics()] == [1, 2, 3, 4, 5]


def test_truncate_metrics_to_zero_keeps_nothing(run):
    run.append_metrics(_record(1))
    run.truncate_metrics(0)
    assert run.read_metrics() == []


# -- checkpoints -------------------------------------------------------------------------------------------------------
def _state() -> dict:
    return {"format": 1, "step": 7, "weights": torch.arange(6.0).reshape(2, 3), "nested": {"a": [1, 2.5, "x"]}}


def test_checkpoint_round_trip_leaves_no_temp_file(run):
    assert not run.has_checkpoint()
    run.save_checkpoint(_state())
    assert run.has_checkpoint()
    back = run.load_checkpoint()
    assert back["step"] == 7 and back["nested"] == {"a": [1, 2.5, "x"]}
    assert torch.equal(back["weights"], _state()["weights"])
    assert sorted(p.name for p in run.path.iterdir()) == [CHECKPOINT_FILE, CONFIG_FILE]


def test_checkpoint_write_is_atomic(run, monkeypatch):
    run.save_checkpoint(_state())

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(store_module.os, "replace", crash)
    with pytest.raises(OSError):
        run.save_checkpoint({**_state(), "step": 99})
    monkeypatch.undo()
    assert run.load_checkpoint()["step"] == 7  # the old checkpoint, whole


def test_save_checkpoint_flushes_metrics(run):
    run.append_metrics(_record(1))
    run.append_metrics(_record(2))
    run.save_checkpoint(_state())
    assert (run.path / METRICS_FILE).read_text().count("\n") == 3  # header + 2 rows on disk before the checkpoint
    run.close()


def test_missing_checkpoint(run):
    with pytest.raises(CheckpointError):
        run.load_checkpoint()


def test_garbage_checkpoint(run):
    (run.path / CHECKPOINT_FILE).write_bytes(b"this is not a checkpoint at all" * 10)
    with pytest.raises(CheckpointError):
        run.load_checkpoint()


def test_empty_checkpoint(run):
    (run.path / CHECKPOINT_FILE).write_bytes(b"")
    with pytest.raises(CheckpointError):
        run.load_checkpoint()


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_truncated_checkpoint(run, fraction):
    run.save_checkpoint({**_state(), "big": torch.randn(2000)})
    file = run.path / CHECKPOINT_FILE
    data = file.read_bytes()
    file.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(CheckpointError):
        run.load_checkpoint()


def test_checkpoint_that_is_not_a_dict(run):
    run.save_checkpoint([1, 2, 3])
    with pytest.raises(CheckpointError):
        run.load_checkpoint()


class _Exploit:
    """Pickles as a call to os.system: unpickling it without weights_only would run the command."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_checkpoint_that_runs_code_is_refused(run, tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"format": 1, "step": 1, "payload": _Exploit(f"touch {marker}")}, run.path / CHECKPOINT_FILE)
    with pytest.raises(CheckpointError):
        run.load_checkpoint()
    assert not marker.exists()


# -- samples -----------------------------------------------------------------------------------------------------------
def test_samples_round_trip_2d(run):
    rng = np.random.default_rng(0)
    record = SampleRecord(step=25, samples=rng.normal(size=(16, 2)).astype(np.float32), labels=None,
                          field=rng.random((48, 48)).astype(np.float32), extent=(-1.5, 1.5, -2.0, 2.0),
                          arrows=rng.normal(size=(16, 2)).astype(np.float32),
                          manifold=rng.normal(size=(5, 5, 2)).astype(np.float32))
    file = run.save_samples(record)
    assert file.name == "step_00000025.npz"
    back = run.load_samples(25)
    assert back.step == 25 and back.labels is None
    assert back.samples.dtype == np.float32 and back.samples.shape == (16, 2)
    np.testing.assert_allclose(back.samples, record.samples, rtol=1e-3, atol=1e-3)  # stored as float16
    np.testing.assert_allclose(back.field, record.field)
    np.testing.assert_allclose(back.arrows, record.arrows)
    np.testing.assert_array_equal(back.manifold, record.manifold)
    assert back.extent == record.extent


def test_2d_samples_without_a_manifold_still_load(run):
    """A snapshot written before the manifold was recorded (no "manifold" array in its file) loads with None."""
    record = SampleRecord(step=5, samples=np.zeros((4, 2), np.float32), labels=None,
                          field=np.full((3, 3), 0.5, np.float32), extent=(-1.0, 1.0, -1.0, 1.0),
                          arrows=np.ones((4, 2), np.float32))
    run.save_samples(record)
    with np.load(run.path / "samples" / "step_00000005.npz") as z:
        assert "manifold" not in z.files and "arrows" in z.files
    back = run.load_samples(5)
    assert back.manifold is None and back.arrows.shape == (4, 2)


def test_samples_round_trip_images_and_listing(run):
    rng = np.random.default_rng(1)
    labels = np.arange(8) % 10
    for step in (0, 50, 100):
        run.save_samples(SampleRecord(step, rng.random((8, 1, 8, 8)).astype(np.float32), labels))
    assert run.sample_steps() == [0, 50, 100]
    back = run.load_samples(50)
    assert back.samples.shape == (8, 1, 8, 8) and back.field is None and back.extent is None and back.arrows is None
    np.testing.assert_array_equal(back.labels, labels)
    assert back.samples.min() >= 0 and back.samples.max() <= 1
    run.drop_samples_after(50)
    assert run.sample_steps() == [0, 50]
