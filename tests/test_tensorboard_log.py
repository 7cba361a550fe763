"""TensorBoard event files in run folders (gan_core.runs.tensorboard_log): read back with TensorBoard's own
EventAccumulator they hold metrics.csv's values at its steps and a picture at every sample snapshot; a resumed run shows
no step twice; without the tensorboard package training is unchanged and writes none."""

from __future__ import annotations

import io
import logging
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from gan_core.runs import tensorboard_log
from gan_core.runs.folder import RunStore
from gan_core.runs.manager import RunManager
from gan_core.runs.status import Status
from gan_core.runs.tensorboard_log import EVENTS_GLOB, PICTURE_SIZE, SCALAR_TAGS, sample_grid, scatter_picture
from gan_core.runs.train_run import checkpoint_if_due, open_run, record_step, train_to
from gan_core.train.records import SampleRecord
from tests.tiny import TINY, tiny

RING = tiny("ring-bce", steps=30, batch_size=64, checkpoint_every=10, probe_every=5, sample_every=10, n_samples=16)
OLD_RUNS = Path(__file__).parent / "fixtures" / "runs_v1"

pytestmark = pytest.mark.usefixtures("one_thread")


def _events(folder: Path):  # an EventAccumulator, imported only where tensorboard is
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})  # 0: keep every event
    events.Reload()
    return events


def _png(image) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(image.encoded_image_string)).convert("RGB"))


def _assert_scalars_match_metrics(store: RunStore, after: int = 0) -> None:
    """Every metrics.csv row after step `after` is in the events, once, with its values (and nothing else is)."""
    events, rows = _events(store.path), [r for r in store.read_metrics() if r.step > after]
    for column, tag in SCALAR_TAGS.items():
        expected = [(r.step, getattr(r, column)) for r in rows if math.isfinite(getattr(r, column))]
        if not expected:
            assert tag not in events.Tags()["scalars"], tag
            continue
        written = [(e.step, e.value) for e in events.Scalars(tag)]
        assert [s for s, _ in written] == [s for s, _ in expected], tag  # every step, once, in order
        # metrics.csv keeps 6 significant digits, the event a float32
        np.testing.assert_allclose([v for _, v in written], [v for _, v in expected], rtol=2e-5, atol=1e-6, err_msg=tag)


@pytest.mark.tensorboard
def test_events_hold_the_metrics_and_a_picture_per_snapshot(tmp_path):
    store, trainer = open_run(tmp_path / "ring", RING)
    train_to(store, trainer)
    assert len(list(store.path.glob(EVENTS_GLOB))) == 1
    _assert_scalars_match_metrics(store)
    events = _events(store.path)
    assert set(events.Tags()["scalars"]) == {"loss/d", "loss/g", "D/real", "D/fake"}  # BCE: no gradient penalty
    images = events.Images("samples")
    assert [i.step for i in images] == store.sample_steps() == [0, 10, 20, 30]
    picture = _png(images[-1])
    assert picture.shape == (PICTURE_SIZE, PICTURE_SIZE, 3)
    assert (picture == tensorboard_log.PALETTE[tensorboard_log.DOT]).all(axis=2).any()  # the samples' dots are there


@pytest.mark.tensorboard
def test_wgan_gp_writes_its_gradient_penalty(tmp_path):
    store, trainer = open_run(tmp_path / "wgan", tiny("ring-wgan", steps=3, batch_size=32, sample_every=10, n_samples=16))
    train_to(store, trainer)
    assert "loss/gp" in _events(store.path).Tags()["scalars"]
    _assert_scalars_match_metrics(store)


@pytest.mark.tensorboard
def test_image_runs_get_a_grid_of_their_samples(tmp_path):
    config = tiny("digits", steps=4, batch_size=16, sample_every=2, n_samples=20)
    store, trainer = open_run(tmp_path / "digits", config)
    train_to(store, trainer)
    images = _events(store.path).Images("samples")
    assert [i.step for i in images] == [0, 2, 4]
    grid = _png(images[-1])
    assert grid.shape == (3 * 9 + 1, 8 * 9 + 1, 3)  # 20 samples of 8×8: 3 rows of 8, a 1-pixel line between
    last = store.load_samples(4).samples
    np.testing.assert_allclose(grid[1:9, 1:9, 0], np.round(last[0, 0] * 255), atol=1)  # the first sample, top left


@pytest.mark.tensorboard
def test_a_resumed_run_shows_no_step_twice(tmp_path):
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.compat.proto.event_pb2 import SessionLog

    store, trainer = open_run(tmp_path / "run", RING)
    store.save_samples(trainer.snapshot())
    for _ in range(25):  # train_to's loop, until the process dies at step 25: checkpoints at 10 and 20
        record_step(store, trainer.step(), trainer.config)
        checkpoint_if_due(store, trainer, RING.steps)
    store.close()
    assert [e.step for e in _events(store.path).Scalars("loss/d")] == list(range(1, 26))

    store, trainer = open_run(store.path)
    assert trainer.step_count == 20
    train_to(store, trainer)
    files = list(store.path.glob(EVENTS_GLOB))
    assert len(files) == 2
    starts = [[e.step for e in EventFileLoader(str(f)).Load() if e.session_log.status == SessionLog.START] for f in files]
    assert sorted(starts) == [[], [21]]  # SummaryWriter's purge_step: readers drop what the first file holds from 21 on
    _assert_scalars_match_metrics(store)  # steps 1..30 once each, with the values of the resumed run
    assert [i.step for i in _events(store.path).Images("samples")] == [0, 10, 20, 30]


def test_without_tensorboard_training_is_unchanged_and_writes_no_events(tmp_path, monkeypatch, caplog):
    with_events, trainer = open_run(tmp_path / "with", RING)
    train_to(with_events, trainer)

    monkeypatch.setitem(sys.modules, "tensorboard", None)  # `import tensorboard` now raises ImportError
    for name in [m for m in sys.modules if m.startswith("torch.utils.tensorboard")]:
        monkeypatch.delitem(sys.modules, name)
    tensorboard_log.summary_writer_class.cache_clear()
    try:
        with caplog.at_level(logging.INFO, logger=tensorboard_log.__name__):
            runs = []
            for name in ("a", "b"):
                store, trainer = open_run(tmp_path / name, RING)
                train_to(store, trainer)
                runs.append(store)
    finally:
        tensorboard_log.summary_writer_class.cache_clear()  # the next test sees the real package again
    for store in runs:
        assert not list(store.path.glob(EVENTS_GLOB))
        assert store.load_checkpoint()["step"] == 30 and store.sample_steps() == [0, 10, 20, 30]
        assert [_values(r) for r in store.read_metrics()] == [_values(r) for r in with_events.read_metrics()]
    said = [r for r in caplog.records if r.name == tensorboard_log.__name__]
    assert len(said) == 1 and said[0].levelno == logging.INFO and "pip install tensorboard" in said[0].getMessage()


def _values(record) -> tuple:
    return tuple(None if isinstance(v, float) and math.isnan(v) else v for k, v in vars(record).items() if k != "time_s")


def test_a_folder_that_cannot_take_events_still_trains(tmp_path, monkeypatch, caplog):
    def refuse(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tensorboard_log, "summary_writer_class", lambda: refuse)
    with caplog.at_level(logging.WARNING, logger=tensorboard_log.__name__):
        store, trainer = open_run(tmp_path / "run", RING)
        assert train_to(store, trainer) == 30
    assert store.load_checkpoint()["step"] == 30 and len(store.read_metrics()) == 30
    assert len([r for r in caplog.records if "stop here" in r.getMessage()]) == 1


@pytest.mark.tensorboard
def test_dashboard_runs_get_events_and_are_listed_and_resumed_as_before(tmp_path):
    runs = Path(shutil.copytree(OLD_RUNS, tmp_path / "runs"))  # folders from before event files, beside a new run
    m = RunManager(runs, max_runs=1, processes=False)
    try:
        new = m.start(TINY, "with events")
        assert m.wait(new, timeout=60).status is Status.FINISHED
        old = "ring-fixture-20261128-213926"
        m.resume(old, steps=50)
        assert m.wait(old, timeout=60).step == 50
    finally:
        m.shutdown()
    _assert_scalars_match_metrics(RunStore(runs / new))
    _assert_scalars_match_metrics(RunStore(runs / old), after=40)  # an old run's events begin where it resumed
    again = RunManager(runs, max_runs=1, processes=False)  # a restart lists every run, the event files notwithstanding
    try:
        assert set(again.ids()) == {*(p.name for p in OLD_RUNS.iterdir()), new}
        assert again.snapshot(new).status is Status.FINISHED and again.snapshot(new).step == 60
    finally:
        again.shutdown()


def test_pictures_of_samples():
    grey = np.random.default_rng(0).random((70, 1, 8, 8)).astype(np.float32)
    grid = sample_grid(grey)
    assert grid.shape == (8 * 9 + 1, 8 * 9 + 1) and grid.dtype == np.uint8  # the first 64 only
    assert sample_grid(np.ones((3, 3, 4, 4), np.float32)).shape == (6, 16, 3)  # RGB kept, one short row
    record = SampleRecord(5, np.array([[0.0, 0.0], [1.0, 1.0], [np.nan, 0.0]], np.float32), None,
                          field=np.array([[0.0, 0.0], [1.0, 1.0]]), extent=(-1.0, 1.0, -1.0, 1.0))
    picture = scatter_picture(record, size=20)
    dot, real, fake = tensorboard_log.DOT, tensorboard_log.SHADES - 1, 0
    assert picture[10, 10] == dot and picture[0, 19] == dot  # (0, 0) in the middle, (1, 1) top right; NaN skipped
    assert picture[2, 2] == real and picture[17, 2] == fake  # D's field: real above (rows run up), fake below
    assert (scatter_picture(SampleRecord(0, np.zeros((0, 2), np.float32), None)) == tensorboard_log.SHADES // 2).all()
