"""The accelerated path (train/cuda_graphs.py). On a CPU: `accelerate(trainer, "auto")` is the eager Trainer, "on" is refused,
and the accelerated step code, run without capture, matches the eager Trainer step for step (records, probes, samples, weights),
through batched reads, warm-up, divergence and checkpoints. With CUDA: the captured graphs match that code run eagerly
on the same GPU. The CUDA tests skip without a GPU; benchmarks/gpu_check.sh sets GAN_REQUIRE_CUDA=1 so they fail instead.
"""

from __future__ import annotations

import io
import itertools
import math

import numpy as np
import pytest
import torch

from benchmarks import gpu as bench_gpu
from gan_core.config import ConfigError, get_preset
from gan_core.data import DataSource
from gan_core.train import cuda_graphs as accel
from gan_core.train.cuda_graphs import Accelerate
from gan_core.train.records import Diverged, StepResult
from gan_core.train.trainer import Trainer
from tests.tiny import tiny

RING = tiny("ring-bce", steps=40, batch_size=32, probe_every=3,
            sample_every=5, n_samples=8)  # ring-bce decays its learning rate
DIGITS = tiny("digits", steps=40, batch_size=16, probe_every=3,
              sample_every=5, n_samples=8)

pytestmark = pytest.mark.usefixtures("one_thread")


def _fake_mnist(n: int = 256, nan_fraction: float = 0.0) -> DataSource:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, 28, 28, generator=gen)
    x[: int(n * nan_fraction)] = math.nan
    return DataSource(name="mnist", shape=(1, 28, 28), value_range=(0.0, 1.0), num_classes=10, size=n, x=x,
                      y=torch.randint(10, (n,), generator=gen))


CONFIGS = {
    "ring-bce": (RING, None),
    "digits": (DIGITS, None),
    "digits-conditional": (tiny("digits-conditional", steps=40, batch_size=16, probe_every=3, sample_every=5, n_samples=10),
                           None),
    "ring-wgan": (tiny("ring-wgan", width=8, steps=40, batch_size=16, probe_every=3, sample_every=5, n_samples=8), None),
    "least-squares, D batch norm, 2 D steps": (DIGITS.replace(loss="least_squares", d_batchnorm=True, d_steps=2), None),
    "first-gan": (tiny("first-gan", width=8, batch_size=8, probe_every=3,
                       sample_every=5, n_samples=4), "fake-mnist"),
    "conditional DCGAN": (tiny("conditional", width=4, batch_size=8, probe_every=3,
                               sample_every=5, n_samples=4), "fake-mnist"),
}


def _trainer(name: str, device: str = "cpu") -> Trainer:
    config, data = CONFIGS[name]
    return Trainer(config, device=device, data=_fake_mnist() if data else None)


def _row(result: StepResult) -> dict[str, float | None]:
    """The record without its wall time, NaN as None so that rows compare equal."""
    r = result.record
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in vars(r).items() if k != "time_s"}


def _last_d(t: Trainer) -> dict[str, float | None]:
    return {k: None if math.isnan(v) else v for k, v in t.last_d.items()}


def _params(t: Trainer) -> list[torch.Tensor]:
    return [p.detach().clone() for p in (*t.G.parameters(), *t.D.parameters())]


def _close(a: list[torch.Tensor], b: list[torch.Tensor], **tol: float) -> bool:
    return all(torch.allclose(x.cpu(), y.cpu(), **tol) for x, y in zip(a, b, strict=True))


def _assert_same_results(a: list[StepResult], b: list[StepResult], exact: bool = True) -> None:
    """Same records, probe records and samples; `exact` for bitwise, else to float32 rounding on a GPU."""
    tol = {} if exact else {"rel": 1e-3, "abs": 1e-5}
    assert [r.record.step for r in a] == [r.record.step for r in b]
    for x, y in zip(a, b, strict=True):
        if exact:
            assert _row(x) == _row(y)
        else:
            assert _row(x) == pytest.approx(_row(y), **tol, nan_ok=True)
        assert (x.probe is None) == (y.probe is None) and (x.samples is None) == (y.samples is None)
        if x.probe is not None:
            assert x.probe.step == y.probe.step
            assert list(x.probe.grad_norms) == list(y.probe.grad_norms)
            for net in x.probe.grad_norms:
                assert x.probe.grad_norms[net] == pytest.approx(y.probe.grad_norms[net], **tol)
            assert [(s.net, s.layer, s.kind) for s in x.probe.layers] == [(s.net, s.layer, s.kind) for s in y.probe.layers]
            for s, u in zip(x.probe.layers, y.probe.layers, strict=True):
                assert (s.dead_fraction, s.saturated_fraction, s.mean, s.std) == pytest.approx(
                    (u.dead_fraction, u.saturated_fraction, u.mean, u.std), **tol)
                assert s.hist.sum() == u.hist.sum()
                if exact:
                    assert np.array_equal(s.hist, u.hist)
                else:  # a value on a bin edge may fall either side
                    assert np.abs(s.hist - u.hist).sum() <= 0.01 * s.hist.sum() + 2
            assert [(b.net, b.layer) for b in x.probe.batchnorm] == [(b.net, b.layer) for b in y.probe.batchnorm]
            for s, u in zip(x.probe.batchnorm, y.probe.batchnorm, strict=True):
                for field in ("batch_mean", "batch_var", "running_mean", "running_var"):
                    assert np.allclose(getattr(s, field), getattr(u, field), rtol=0 if exact else 1e-3,
                                       atol=0 if exact else 1e-5), field
        if x.samples is not None:
            assert x.samples.step == y.samples.step
            assert np.allclose(x.samples.samples, y.samples.samples, rtol=0, atol=0 if exact else 1e-4)


def _poison(fn, at: int):
    """`fn` (a loss's d_loss or g_loss) whose `at`-th call returns NaN terms, still attached to the graph."""
    calls = itertools.count(1)

    def wrapped(*args, **kwargs):
        terms = fn(*args, **kwargs)
        return {k: v * math.nan for k, v in terms.items()} if next(calls) == at else terms
    return wrapped


def _through_disk(state: dict, map_location: str = "cpu") -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True, map_location=map_location)


# -- choosing the path ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_auto_on_the_cpu_is_the_eager_trainer_and_says_why():
    t = Trainer(RING)
    auto, plain = accel.accelerate(t, "auto"), accel.accelerate(Trainer(RING), "off")
    assert type(auto) is accel.EagerSteps and auto.acceleration.startswith("eager:") and "cpu" in auto.acceleration
    assert t.batches is t.data and t.batch_gen is t.gen  # nothing moved, nothing reseeded
    assert type(plain) is accel.EagerSteps and plain.acceleration == "eager"
    _assert_same_results([auto.step() for _ in range(4)], [plain.step() for _ in range(4)])


@pytest.mark.slow
def test_on_without_a_cuda_device_is_refused():
    with pytest.raises(ConfigError, match="accelerate: on: CUDA graphs need a CUDA device.*runs on the cpu"):
        accel.accelerate(Trainer(RING, device="cpu"), "on")


def test_an_unknown_accelerate_value_is_refused():
    with pytest.raises(ConfigError, match="accelerate: 'fast' is not one of: auto, off, on"):
        accel.accelerate(Trainer(RING), "fast")
    assert Accelerate.parse(" ON ") is Accelerate.ON and Accelerate.parse(Accelerate.AUTO) is Accelerate.AUTO


@pytest.mark.slow
@pytest.mark.parametrize("mode, raises", [("auto", False), ("on", True)])
def test_a_failed_capture_falls_back_to_eager_steps_or_raises(mode, raises):
    plain = Trainer(DIGITS)
    t = accel.GraphSteps(Trainer(DIGITS), Accelerate(mode), capture=True)  # on a CPU the capture itself fails
    if raises:
        with pytest.raises(accel.AccelerationError, match="CUDA graph capture failed"):
            t.steps(2)
        return
    results = t.steps(4)
    assert t.fell_back and t.graphs is None and t.acceleration.startswith("eager: CUDA graph capture failed")
    _assert_same_results(results, [plain.step() for _ in range(4)])


# -- the accelerated step code, uncaptured, against the eager Trainer ----------------------------------------------
@pytest.mark.parametrize("name", list(CONFIGS))
def test_accelerated_steps_match_eager_steps(name):
    eager, fast = _trainer(name), _trainer(name)
    steps = accel.uncaptured(fast)
    steps.read_every = 4  # several reads of the ring within one steps() call
    ours = steps.steps(7) + [steps.step()] + steps.steps(3)
    _assert_same_results(ours, [eager.step() for _ in range(11)])
    assert fast.step_count == eager.step_count == 11 and _last_d(fast) == _last_d(eager)
    assert _close(_params(fast), _params(eager), rtol=0, atol=0)
    assert all(torch.equal(x, y) for x, y in zip(fast.G.buffers(), eager.G.buffers(), strict=True))
    for opt in ("opt_g", "opt_d"):
        for group in getattr(fast, opt).param_groups:  # between steps the optimizers look as the eager ones do
            assert isinstance(group["lr"], float) and group["capturable"] is False
        assert not hasattr(getattr(fast, opt), "found_inf")


def test_eager_steps_in_between_share_the_state():
    """The dashboard's slow-motion steps are eager steps on the same models and optimizers."""
    eager, fast = Trainer(DIGITS), Trainer(DIGITS)
    steps = accel.uncaptured(fast)
    ours = steps.steps(2) + [steps.step(d_updates=0)] + steps.steps(2)
    fast.d_update()
    theirs = [eager.step(), eager.step(), eager.step(d_updates=0), eager.step(), eager.step()]
    eager.d_update()
    _assert_same_results(ours, theirs)
    assert _close(_params(fast), _params(eager), rtol=0, atol=0)


def test_tensor_learning_rates_follow_the_schedule(monkeypatch):
    """The graphs read the learning rate from a float32 tensor the schedule writes before each step: the same steps as
    an eager Trainer whose schedule rounds its learning rates to float32."""
    eager, fast = Trainer(RING), Trainer(RING)
    steps = accel.uncaptured(fast)
    steps.tensor_lr = True
    schedule = eager.set_learning_rates

    def float32_schedule(step: int) -> None:
        schedule(step)
        for opt in (eager.opt_g, eager.opt_d):
            for group in opt.param_groups:
                group["lr"] = float(np.float32(group["lr"]))
    monkeypatch.setattr(eager, "set_learning_rates", float32_schedule)
    ours = steps.steps(12)
    _assert_same_results(ours, [eager.step() for _ in range(12)])
    assert RING.lr_final != 1.0
    for lr, group in zip(steps.lrs, steps.groups, strict=True):
        assert isinstance(group["lr"], float) and float(lr) == pytest.approx(group["lr"], rel=1e-6)
    assert fast.opt_g.param_groups[0]["lr"] == pytest.approx(eager.opt_g.param_groups[0]["lr"])
    assert fast.opt_g.param_groups[0]["lr"] < RING.lr_g


def test_the_warm_up_trains_nothing():
    eager, fast = Trainer(DIGITS), Trainer(DIGITS)
    steps = accel.uncaptured(fast)
    steps.warm_up()  # fresh optimizers: the state it creates must be a fresh Adam's
    ours = steps.steps(4)
    steps.warm_up()  # and with state: it is put back as it was
    ours += steps.steps(4)
    _assert_same_results(ours, [eager.step() for _ in range(8)])
    assert _close(_params(fast), _params(eager), rtol=0, atol=0)
    assert all(torch.equal(x, y) for x, y in zip(fast.G.buffers(), eager.G.buffers(), strict=True))


@pytest.mark.parametrize("which, what", [("d_loss", "D loss"), ("g_loss", "G loss")])
def test_a_divergence_returns_the_good_steps_then_raises(which, what):
    eager, fast = Trainer(DIGITS), Trainer(DIGITS)
    steps = accel.uncaptured(fast)
    for t in (eager, fast):
        setattr(t.loss, which, _poison(getattr(t.loss, which), at=4))
    good = [eager.step() for _ in range(3)]
    with pytest.raises(Diverged, match=f"diverged at step 4: {what}"):
        eager.step()
    opt_state = [v["exp_avg"].clone() for v in eager.opt_g.state.values()]
    ours = steps.steps(7)  # steps 5-7 are queued behind the bad one and skip their updates
    _assert_same_results(ours, good)
    assert fast.step_count == 3 and _last_d(fast) == _last_d(eager)
    assert _close(_params(fast), _params(eager), rtol=0, atol=0)  # the last good weights
    assert _close([v["exp_avg"] for v in fast.opt_g.state.values()], opt_state, rtol=0, atol=0)
    with pytest.raises(Diverged, match=f"diverged at step 4: {what}") as err:
        steps.steps(2)
    assert err.value.step == 4
    again = steps.steps(2)  # as after an eager Diverged, the next steps try again (and here they are fine)
    assert [r.record.step for r in again] == [4, 5] and all(math.isfinite(r.record.g_loss) for r in again)


def test_a_divergence_at_the_first_step_raises_at_once():
    t = Trainer(DIGITS.replace(dataset="mnist"), data=_fake_mnist(nan_fraction=1.0))
    steps = accel.uncaptured(t)
    before = _params(t)
    with pytest.raises(Diverged, match="diverged at step 1: D loss"):
        steps.steps(3)
    assert t.step_count == 0 and _close(_params(t), before, rtol=0, atol=0)


def test_a_checkpoint_resumes_on_either_path():
    a = accel.uncaptured(Trainer(DIGITS))
    a.steps(5)
    state = _through_disk(a.state_dict())
    assert "rng_device" not in state  # on the CPU the accelerated code draws with the Trainer's own generator
    assert all(isinstance(g["lr"], float) and not g["capturable"] for g in state["opt_g"]["param_groups"])
    b, c = accel.uncaptured(Trainer(DIGITS)), Trainer(DIGITS)
    b.load_state_dict(state)
    c.load_state_dict(_through_disk(a.state_dict()))  # into the eager path (its own copy: loading aliases the tensors)
    ra, rb, rc = a.steps(4), b.steps(4), [c.step() for _ in range(4)]
    _assert_same_results(ra, rb)
    _assert_same_results(ra, rc)


def test_data_sources_move_and_draw_on_their_generators_device():
    data = _fake_mnist(16)
    assert data.to("cpu") is data
    x1, y1 = data.sample(4, torch.Generator().manual_seed(3))
    x2, y2 = data.sample(4, torch.Generator().manual_seed(3))
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and x1.device.type == "cpu"


def test_the_gpu_bench_says_it_was_skipped_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rows = bench_gpu.gpu()
    assert len(rows) == 1
    row = rows[0]
    assert (row.bench, row.metric, row.value, row.target) == ("gpu", "skipped", "no CUDA GPU", "≥ 1000 steps/s")
    assert "torch.cuda.is_available() is False" in row.note


def test_the_bench_finds_no_mnist_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_gpu, "SHARED_DATA_DIR", tmp_path / "nothing")
    monkeypatch.chdir(tmp_path)
    data = bench_gpu.find_mnist(get_preset("first-gan").config, tmp_path / "empty")
    assert data.shape == (1, 28, 28) and data.size == 60_000 and "random tensors of its shape" in data.note
