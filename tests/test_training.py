"""open_run / train_to (gan_core.runs.train_run): a resumed run takes exactly the steps an uninterrupted one would. The
one loop steps through the stepper `cuda_graphs.accelerate` gives: on a CPU the eager Trainer, saying so once; through
the CUDA-graph step code (run uncaptured, as a CPU can) the same records step for step, slow-motion steps and checkpoints
included; a capture that fails falls back to eager steps with one log line."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pytest
import torch

from gan_core.runs import train_run
from gan_core.runs.folder import CHECKPOINT_FILE, CONFIG_FILE, METRICS_FILE, RunStore
from gan_core.runs.status import StepKind
from gan_core.runs.train_run import Hooks, Next, open_run, train_loop, train_to
from gan_core.train import cuda_graphs
from gan_core.train.cuda_graphs import Accelerate, EagerSteps, GraphSteps
from gan_core.train.records import CheckpointError, Diverged, SampleRecord, StepRecord, StepResult
from gan_core.train.trainer import Trainer
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


# -- the one loop and its stepper ----------------------------------------------------------------------------------------
class _Seen(Hooks):
    """Hooks that keep what the loop tells them, and answer `script` before each step (then Next.STEP)."""

    def __init__(self, script: list[Next | StepKind] | None = None) -> None:
        self.script = list(script or [])
        self.steppers: list[EagerSteps] = []
        self.first: list[int] = []
        self.results: list[tuple[StepKind | None, int | None]] = []
        self.checkpoints: list[int] = []

    def started(self, stepper: EagerSteps) -> None:
        self.steppers.append(stepper)

    def sampled(self, samples: SampleRecord) -> None:
        self.first.append(samples.step)

    def next(self, left: int) -> Next | StepKind:
        return self.script.pop(0) if self.script else Next.STEP

    def stepped(self, result: StepResult | None, manual: StepKind | None) -> None:
        self.results.append((manual, None if result is None else result.record.step))

    def checkpointed(self, step: int) -> None:
        self.checkpoints.append(step)


class _GraphCode(GraphSteps):
    """The CUDA-graph step code run without capture (what a CPU can run of it), noting the checkpoints it makes and
    loads: what `accelerate` gives on a GPU, bar the capture."""

    def __init__(self, trainer: Trainer, mode: Accelerate = Accelerate.AUTO) -> None:
        super().__init__(trainer, Accelerate.ON, capture=False)
        self.saved: list[int] = []
        self.loaded: list[int] = []

    def state_dict(self) -> dict:
        state = super().state_dict()
        self.saved.append(state["step"])
        return state

    def load_state_dict(self, state: dict) -> None:
        self.loaded.append(int(state["step"]))
        super().load_state_dict(state)


def test_the_loop_steps_eagerly_on_the_cpu_and_says_so_once(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="gan_core")
    store, trainer = open_run(tmp_path / "run", CONFIG)
    seen = _Seen()
    assert train_to(store, trainer, 10, on_step=seen) == 10
    (stepper,) = seen.steppers
    assert type(stepper) is EagerSteps and stepper.trainer is trainer
    assert stepper.acceleration == "eager: CUDA graphs need a CUDA device, and this Trainer runs on the cpu"
    assert [r.getMessage() for r in caplog.records if r.name == cuda_graphs.__name__] == [
        f"accelerate=auto: {stepper.acceleration}"]
    assert seen.first == [0] and seen.checkpoints == [5, 10]
    assert seen.results == [(None, step) for step in range(1, 11)]


def test_the_loop_through_the_graph_step_code_trains_and_resumes_as_the_eager_loop(tmp_path, uninterrupted, monkeypatch):
    rows, g, d = uninterrupted
    monkeypatch.setattr(train_run, "accelerate", _GraphCode)
    seen = _Seen()
    store, trainer = open_run(tmp_path / "run", CONFIG)
    assert train_to(store, trainer, 15, on_step=seen) == 15
    store, trainer = open_run(tmp_path / "run")
    assert train_to(store, trainer, on_step=seen) == 30
    assert _rows(store.read_metrics()) == rows
    assert _same(_weights(trainer.G), g) and _same(_weights(trainer.D), d)
    first, resumed = seen.steppers
    assert type(first) is _GraphCode and first.saved == [5, 10, 15] and first.loaded == []
    assert resumed.loaded == [15] and resumed.saved == [20, 25, 30]  # a resumed run's checkpoint loads through it too


SLOW_MOTION = [Next.STEP, Next.STEP, StepKind.D, StepKind.G, StepKind.FULL, Next.STEP, Next.WAIT, Next.STOP]


def test_slow_motion_steps_and_a_stop_take_the_same_steps_through_the_graph_step_code(tmp_path, monkeypatch):
    runs = {}
    for name in ("eager", "graph-code"):
        if name == "graph-code":
            monkeypatch.setattr(train_run, "accelerate", _GraphCode)
        store, trainer = open_run(tmp_path / name, CONFIG)
        seen = _Seen(SLOW_MOTION)
        assert train_loop(store, trainer, hooks=seen) == 5
        store.close()
        runs[name] = (seen, _rows(store.read_metrics()), _weights(trainer.G), _weights(trainer.D))
    (eager, rows, g, d), (graph, graph_rows, graph_g, graph_d) = runs["eager"], runs["graph-code"]
    # a D update alone records nothing; G alone and a full step are steps 3 and 4, each checkpointed; STOP checkpoints
    assert eager.results == graph.results == [(None, 1), (None, 2), (StepKind.D, None), (StepKind.G, 3),
                                              (StepKind.FULL, 4), (None, 5)]
    assert eager.checkpoints == graph.checkpoints == [3, 4, 5, 5]
    assert graph.steppers[0].saved == [3, 4, 5, 5]
    assert graph_rows == rows and [r["step"] for r in rows] == [1, 2, 3, 4, 5]
    assert _same(graph_g, g) and _same(graph_d, d)


def test_a_capture_that_fails_falls_back_to_eager_steps_with_one_log_line(tmp_path, uninterrupted, monkeypatch, caplog):
    monkeypatch.setattr(train_run, "accelerate", lambda trainer, mode: GraphSteps(trainer, Accelerate.parse(mode)))
    caplog.set_level(logging.INFO, logger="gan_core")
    store, trainer = open_run(tmp_path / "run", CONFIG)
    seen = _Seen()
    assert train_to(store, trainer, on_step=seen) == 30  # on a CPU the capture itself fails
    (stepper,) = seen.steppers
    assert stepper.fell_back and stepper.acceleration.startswith("eager: CUDA graph capture failed")
    logged = [r for r in caplog.records if r.name == cuda_graphs.__name__]
    assert len(logged) == 1 and logged[0].levelno == logging.WARNING
    assert logged[0].getMessage().endswith("training goes on with eager steps")
    assert _rows(store.read_metrics()) == uninterrupted[0]
