"""open_run / train_to (gan_core.runs.train_run): a resumed run takes exactly the steps an uninterrupted one would."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from gan_core.runs.folder import CHECKPOINT_FILE, CONFIG_FILE, METRICS_FILE, RunStore
from gan_core.runs.train_run import open_run, train_to
from gan_core.train.records import CheckpointError, Diverged, StepRecord
from tests.tiny import tiny

CONFIG = tiny("ring-bce", steps=30, batch_size=64, checkpoint_every=5,
              probe_every=4, sample_every=10, n_samples=16)


pytestmark = pytest.mark.usefixtures("one_thread")


def _rows(records: list[StepRecord]) -> list[dict]:
    return [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in vars(r).items() if k != "time_s"}
            for r in records]


def _weights(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in net.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], dict, dict]:
    """The reference: CONFIG trained to 30 steps in one go."""
    store, trainer = open_run(tmp_path_factory.mktemp("ref") / "run", CONFIG)
    assert train_to(store, trainer) == 30
    return _rows(store.read_metrics()), _weights(trainer.G), _weights(trainer.D)


def test_new_run_writes_its_folder(tmp_path, uninterrupted):
    store, trainer = open_run(tmp_path / "run", CONFIG)
    assert trainer.step_count == 0 and store.read_config() == CONFIG
    train_to(store, trainer, 10)
    assert {p.name for p in store.path.iterdir()} >= {CONFIG_FILE, METRICS_FILE, CHECKPOINT_FILE, "samples"}
    assert store.sample_steps() == [0, 10]  # step 0 (before training) and every sample_every
    header = (store.path / METRICS_FILE).read_text().splitlines()[0]
    assert header.startswith("step,time_s,d_loss,g_loss,d_real,d_fake")
    assert [r.step for r in store.read_metrics()] == list(range(1, 11))
    assert store.load_checkpoint()["step"] == 10


def test_open_run_refuses_an_existing_run(tmp_path):
    open_run(tmp_path / "run", CONFIG)
    with pytest.raises(FileExistsError):
        open_run(tmp_path / "run", CONFIG)


def test_resume_reproduces_the_uninterrupted_run(tmp_path, uninterrupted):
    rows, g, d = uninterrupted
    store, trainer = open_run(tmp_path / "run", CONFIG)
    assert train_to(store, trainer, 15) == 15
    store, trainer = open_run(tmp_path / "run")
    assert trainer.step_count == 15
    assert train_to(store, trainer) == 30
    assert _rows(store.read_metrics()) == rows
    assert _same(_weights(trainer.G), g) and _same(_weights(trainer.D), d)


def test_resume_after_a_crash_truncates_metrics_past_the_checkpoint(tmp_path, uninterrupted):
    rows, g, _ = uninterrupted

    def crash(result):
        if result.record.step == 18:
            raise KeyboardInterrupt  # the process dies between checkpoints (last one at step 15)
        return None

    store, trainer = open_run(tmp_path / "run", CONFIG.replace(sample_every=4))
    with pytest.raises(KeyboardInterrupt):
        train_to(store, trainer, on_step=crash)
    assert store.load_checkpoint()["step"] == 15
    assert [r.step for r in store.read_metrics()][-1] == 18  # rows past the checkpoint reached the disk
    assert 16 in store.sample_steps()

    store, trainer = open_run(tmp_path / "run")
    assert trainer.step_count == 15
    assert [r.step for r in store.read_metrics()] == list(range(1, 16))  # rows 16–18 will be trained again
    assert max(store.sample_steps()) <= 15
    train_to(store, trainer)
    assert _rows(store.read_metrics()) == rows
    assert _same(_weights(trainer.G), g)


def test_resume_to_more_steps_updates_the_config(tmp_path):
    config = CONFIG.replace(steps=10, lr_final=1.0)  # a constant learning rate: extending the run changes no step
    store, trainer = open_run(tmp_path / "short", config)
    train_to(store, trainer)
    store, trainer = open_run(tmp_path / "short", steps=20)
    assert trainer.step_count == 10 and trainer.config.steps == 20
    assert json.loads((store.path / CONFIG_FILE).read_text())["steps"] == 20
    train_to(store, trainer)
    extended = _rows(store.read_metrics())

    ref_store, ref = open_run(tmp_path / "long", config.replace(steps=20))
    train_to(ref_store, ref)
    assert extended == _rows(ref_store.read_metrics())
    assert _same(_weights(trainer.G), _weights(ref.G))


def test_on_step_true_stops_early_with_a_checkpoint(tmp_path):
    seen = []

    def stop_at_7(result):
        seen.append(result.record.step)
        return result.record.step == 7

    store, trainer = open_run(tmp_path / "run", CONFIG)
    assert train_to(store, trainer, on_step=stop_at_7) == 7
    assert seen == list(range(1, 8))
    assert store.load_checkpoint()["step"] == 7  # not a multiple of checkpoint_every: written because of the stop
    assert [r.step for r in store.read_metrics()] == list(range(1, 8))
    _, resumed = open_run(tmp_path / "run")
    assert resumed.step_count == 7


def test_diverged_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    store, trainer = open_run(tmp_path / "run", CONFIG)
    train_to(store, trainer, 5)
    before = (store.path / CHECKPOINT_FILE).read_bytes()

    def nan_loss(fake):
        return {"loss": torch.tensor(math.nan, requires_grad=True)}

    monkeypatch.setattr(trainer.loss, "g_loss", nan_loss)
    with pytest.raises(Diverged):
        train_to(store, trainer)
    assert (store.path / CHECKPOINT_FILE).read_bytes() == before
    assert RunStore(store.path).load_checkpoint()["step"] == 5


def test_metrics_without_a_checkpoint_cannot_be_resumed(tmp_path):
    store, trainer = open_run(tmp_path / "run", CONFIG)
    store.append_metrics(trainer.step().record)
    store.close()
    with pytest.raises(CheckpointError):
        open_run(tmp_path / "run")


def test_resume_of_a_run_that_never_trained_starts_at_zero(tmp_path):
    open_run(tmp_path / "run", CONFIG)
    store, trainer = open_run(tmp_path / "run")
    assert trainer.step_count == 0 and store.read_metrics() == []


def test_resume_with_a_checkpoint_from_other_settings_is_refused(tmp_path):
    store, trainer = open_run(tmp_path / "run", CONFIG)
    train_to(store, trainer, 5)
    store.write_config(CONFIG.replace(g_width=32))  # config.json edited by hand
    with pytest.raises(CheckpointError, match="g_width"):
        open_run(tmp_path / "run")


def test_open_run_on_an_empty_folder(tmp_path):
    from gan_core.config import ConfigError

    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError):
        open_run(tmp_path / "empty")
    assert not any(Path(tmp_path / "empty").iterdir())
