"""The captured CUDA graphs on a GPU (train/cuda_graphs.py): they match the same step code run eagerly on that GPU, keep
the data there, resume from a checkpoint as if uninterrupted, stop at a divergence, and the one training loop replays
them (slow-motion steps in between). They skip without a GPU; benchmarks/gpu_check.sh sets GAN_REQUIRE_CUDA=1 so they
fail there instead. The same code uncaptured, on the CPU: test_accel.py.
"""

from __future__ import annotations

import math
import os

import pytest
import torch

from benchmarks import gpu as bench_gpu
from gan_core.runs.status import StepKind
from gan_core.runs.train_run import Hooks, Next, open_run, train_loop, train_to
from gan_core.train import cuda_graphs as accel
from gan_core.train.records import Diverged, StepResult
from gan_core.train.trainer import Trainer
from tests.test_accel import CONFIGS, RING, _assert_same_results, _close, _fake_mnist, _params, _row, _through_disk, _trainer

pytestmark = pytest.mark.usefixtures("one_thread")


# -- on a CUDA GPU -------------------------------------------------------------------------------------------------
def require_cuda() -> None:
    if torch.cuda.is_available():
        return
    reason = "no CUDA GPU (torch.cuda.is_available() is False): the captured graphs cannot run here"
    if os.environ.get("GAN_REQUIRE_CUDA", "").strip().lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (GAN_REQUIRE_CUDA=1, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


cuda = pytest.mark.usefixtures("_cuda")


@pytest.fixture
def _cuda() -> None:
    require_cuda()


def _on(name: str) -> accel.GraphSteps:
    steps = accel.accelerate(_trainer(name, device="cuda"), "on")
    assert isinstance(steps, accel.GraphSteps)
    return steps


def _twins(name: str) -> tuple[accel.GraphSteps, accel.GraphSteps]:
    """A captured Trainer on the GPU and one running the same code uncaptured, with the same random numbers."""
    graphed, plain = _on(name), _on(name)
    plain.capture = False  # the same generator seed and float32 learning rates: only the capture differs
    return graphed, plain


@cuda
@pytest.mark.parametrize("name", list(CONFIGS))
def test_cuda_graphs_match_the_same_steps_run_eagerly(name):
    graphed, plain = _twins(name)
    graphed.read_every = plain.read_every = 8
    ours = graphed.steps(13) + [graphed.step()] + graphed.steps(6)
    assert graphed.graphs is not None and graphed.acceleration.startswith("cuda graphs")
    _assert_same_results(ours, plain.steps(20), exact=False)
    assert _close(_params(graphed.trainer), _params(plain.trainer), rtol=1e-3, atol=1e-5)


@cuda
def test_cuda_auto_uses_graphs_and_keeps_data_on_the_gpu():
    t = _trainer("first-gan", device="cuda")
    steps = accel.accelerate(t)
    results = steps.steps(5)
    assert isinstance(steps, accel.GraphSteps) and steps.graphs is not None, steps.acceleration
    assert steps.acceleration.startswith("cuda graphs"), steps.acceleration
    assert t.batches.x.device.type == "cuda" and t.batch_gen.device.type == "cuda" and t.data.x.device.type == "cpu"
    assert all(math.isfinite(r.record.d_loss) and math.isfinite(r.record.g_loss) for r in results)
    assert results[2].probe is not None and results[4].samples is not None


@cuda
def test_cuda_checkpoint_resumes_as_if_uninterrupted():
    a = _on("ring-bce")
    a.steps(6)
    state = _through_disk(a.state_dict(), map_location="cuda")  # what open_run does on a GPU
    assert "rng_device" in state
    b = _on("ring-bce")
    b.load_state_dict(state)
    _assert_same_results(a.steps(7), b.steps(7), exact=False)
    eager, cpu = _trainer("ring-bce", device="cuda"), _trainer("ring-bce")
    eager.load_state_dict(state)
    cpu.load_state_dict(_through_disk(a.state_dict()))
    assert math.isfinite(eager.step().record.d_loss) and math.isfinite(cpu.step().record.d_loss)


def _until_diverged(t: accel.GraphSteps, n: int = 40) -> tuple[list[StepResult], Diverged]:
    """The results before the first diverged step, and its Diverged error (raised at once when it is the first step)."""
    try:
        results = t.steps(n)
    except Diverged as err:
        return [], err
    with pytest.raises(Diverged) as err:
        t.steps(1)
    return results, err.value


@cuda
def test_cuda_divergence_returns_the_good_steps_then_raises():
    config = CONFIGS["first-gan"][0]
    data = _fake_mnist(n=512, nan_fraction=0.05)  # a batch of 8 holds a NaN image with probability ~1/3
    graphed = accel.accelerate(Trainer(config, device="cuda", data=data), "on")
    plain = accel.accelerate(Trainer(config, device="cuda", data=data), "on")
    plain.capture = False  # the same batches, so it diverges at the same step
    ours, error = _until_diverged(graphed)
    theirs, their_error = _until_diverged(plain)
    assert str(error) == str(their_error) == f"diverged at step {len(ours) + 1}: D loss is not a finite number"
    assert graphed.trainer.step_count == len(ours)
    _assert_same_results(ours, theirs, exact=False)
    # both the weights of the last good step
    assert _close(_params(graphed.trainer), _params(plain.trainer), rtol=1e-3, atol=1e-5)


@cuda
def test_cuda_gpu_bench_runs():
    rows = bench_gpu.gpu(steps=30, rounds=1, eager_steps=20)
    by_metric = {r.metric: r for r in rows}
    assert float(by_metric["Trainer, CUDA graphs steps/s"].value) > 0
    assert by_metric["Trainer, CUDA graphs steps/s"].note.startswith("cuda graphs")
    assert "all finite" in by_metric["probes on the graphed path"].value
    assert "same layers" in by_metric["probes on the graphed path"].value


class _Loop(Hooks):
    """The one training loop's hooks, keeping what runs the steps and the steps taken, and answering `script`."""

    def __init__(self, script: list[Next | StepKind] | None = None) -> None:
        self.script, self.said, self.steps = list(script or []), [], []

    def started(self, stepper: accel.EagerSteps) -> None:
        self.said.append(stepper.acceleration)

    def next(self, left: int) -> Next | StepKind:
        return self.script.pop(0) if self.script else Next.STEP

    def stepped(self, result: StepResult | None, manual: StepKind | None) -> None:
        self.steps.append((manual, None if result is None else result.record.step))


def _loop_rows(tmp_path, device: str) -> tuple[list[dict], list[dict], list[str]]:
    """RING trained through the one loop to 20 steps in one go, and in two halves (stopped, then resumed)."""
    config = RING.replace(steps=20, checkpoint_every=5)
    hooks = _Loop()
    store, trainer = open_run(tmp_path / "whole", config, device=device)
    assert train_to(store, trainer, on_step=hooks) == 20
    whole = [_row(StepResult(r, None, None)) for r in store.read_metrics()]
    store, trainer = open_run(tmp_path / "halves", config, device=device)
    assert train_to(store, trainer, 10, on_step=hooks) == 10
    store, trainer = open_run(tmp_path / "halves", device=device)
    assert train_to(store, trainer, on_step=hooks) == 20
    return whole, [_row(StepResult(r, None, None)) for r in store.read_metrics()], hooks.said


@cuda
def test_cuda_the_training_loop_replays_graphs_and_resumes_as_if_uninterrupted(tmp_path):
    whole, halves, said = _loop_rows(tmp_path, "cuda")
    assert len(said) == 3 and all(s.startswith("cuda graphs") for s in said), said
    assert [r["step"] for r in whole] == list(range(1, 21))
    assert len(halves) == len(whole)
    for x, y in zip(halves, whole, strict=True):  # the same steps to float rounding: the GPU's generator resumed too
        assert {k for k, v in x.items() if v is None} == {k for k, v in y.items() if v is None}
        assert {k: v for k, v in x.items() if v is not None} == pytest.approx(
            {k: v for k, v in y.items() if v is not None}, rel=1e-3, abs=1e-5)


@cuda
def test_cuda_slow_motion_steps_between_graph_steps(tmp_path):
    store, trainer = open_run(tmp_path / "run", RING.replace(steps=20), device="cuda")
    hooks = _Loop([Next.STEP, StepKind.D, StepKind.G, StepKind.FULL, Next.STEP, Next.STOP])
    assert train_loop(store, trainer, hooks=hooks) == 4
    store.close()
    assert hooks.said[0].startswith("cuda graphs"), hooks.said
    assert hooks.steps == [(None, 1), (StepKind.D, None), (StepKind.G, 2), (StepKind.FULL, 3), (None, 4)]
    rows = store.read_metrics()
    assert [r.step for r in rows] == [1, 2, 3, 4] and all(math.isfinite(r.d_loss + r.g_loss) for r in rows)
    assert store.load_checkpoint()["step"] == 4 and "rng_device" in store.load_checkpoint()
