"""Trainer: records, reproducibility, probes and samples on schedule, slow-motion parts, divergence, checkpoints, and
measurable progress on tiny configurations."""

from __future__ import annotations

import copy
import io
import math

import numpy as np
import pytest
import torch

from gan_core.config import get_preset
from gan_core.data import DataSource
from gan_core.evaluation.classifier import evaluate_images, get_classifier
from gan_core.evaluation.metrics import mode_stats
from gan_core.train.records import METRIC_COLUMNS, CheckpointError, Diverged, StepRecord
from gan_core.train.trainer import MANIFOLD_RES, MANIFOLD_SPAN, Trainer, resolve_device
from tests.tiny import tiny

RING = tiny("ring-bce", steps=50, batch_size=64, probe_every=10**5,
            sample_every=10**5, n_samples=32)
DIGITS = tiny("digits", steps=50, batch_size=32, probe_every=10**5,
              sample_every=10**5, n_samples=20)


pytestmark = pytest.mark.usefixtures("one_thread")


def _row(record: StepRecord) -> dict[str, float | None]:
    """The record without its wall time, NaN as None so that rows compare equal."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in vars(record).items() if k != "time_s"}


def _same_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def _params(net: torch.nn.Module) -> list[torch.Tensor]:
    """The trainable weights (batch norm's running statistics are buffers, not weights)."""
    return [p.detach().clone() for p in net.parameters()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def _fake_mnist(n: int = 64) -> DataSource:
    gen = torch.Generator().manual_seed(0)
    return DataSource(name="mnist", shape=(1, 28, 28), value_range=(0.0, 1.0), num_classes=10, size=n,
                      x=torch.rand(n, 1, 28, 28, generator=gen), y=torch.randint(10, (n,), generator=gen))


# -- records -----------------------------------------------------------------------------------------------------------
def test_step_record_fields():
    t = Trainer(RING)
    result = t.step()
    r = result.record
    assert isinstance(r, StepRecord) and tuple(vars(r)) == METRIC_COLUMNS
    assert METRIC_COLUMNS[:6] == ("step", "time_s", "d_loss", "g_loss", "d_real", "d_fake")
    assert r.step == 1 == t.step_count
    assert r.time_s >= 0
    for name in ("d_loss", "g_loss", "d_real", "d_fake", "d_loss_real", "d_loss_fake"):
        assert math.isfinite(getattr(r, name)), name
    assert 0 < r.d_real < 1 and 0 < r.d_fake < 1  # BCE reports probabilities
    assert r.d_loss == pytest.approx((r.d_loss_real + r.d_loss_fake) / 2, rel=1e-5)
    assert math.isnan(r.gp)  # no gradient penalty for BCE
    assert result.probe is None and result.samples is None
    assert t.step().record.time_s >= r.time_s


def test_same_config_and_seed_give_the_same_numbers():
    a, b = Trainer(RING), Trainer(RING)
    for _ in range(8):
        assert _row(a.step().record) == _row(b.step().record)
    assert _same_state(a.G, b.G) and _same_state(a.D, b.D)
    np.testing.assert_array_equal(a.sample(100), b.sample(100))
    c = Trainer(RING.replace(seed=1))
    assert _row(c.step().record) != _row(Trainer(RING).step().record)


@pytest.mark.parametrize("preset", ["ring-bce", "digits-conditional"])
def test_d_judges_real_and_fake_in_one_forward_with_the_same_result(preset: str):
    """Without batch norm in D the Trainer scores real and fake in one forward (fewer ops a step); the losses, and so
    the training, are those of two forwards to within float rounding. A D with batch norm keeps two forwards."""
    config = tiny(preset, steps=20, batch_size=32, probe_every=5, sample_every=10**5, n_samples=20)
    joint, apart = Trainer(config), Trainer(config)
    assert joint.d_joint
    apart.d_joint = False
    for _ in range(20):
        a, b = _row(joint.step().record), _row(apart.step().record)
        assert a.keys() == b.keys()
        for key in a:
            if a[key] is None or b[key] is None:  # a value neither update defines (NaN, made None) must be so in both
                assert a[key] is None and b[key] is None, key
            else:
                assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), key
    assert not Trainer(tiny("dcgan", steps=2, batch_size=8, probe_every=10**5, sample_every=10**5, n_samples=4),
                       data=_fake_mnist()).d_joint


def test_probe_records_on_schedule():
    t = Trainer(RING.replace(probe_every=3, d_batchnorm=True))
    probes = {}
    for _ in range(7):
        result = t.step()
        if result.probe is not None:
            probes[result.record.step] = result.probe
    assert sorted(probes) == [3, 6]
    probe = probes[6]
    assert probe.step == 6
    assert {s.net for s in probe.layers} == {"G", "D"}
    assert {s.layer for s in probe.layers if s.net == "G"} == {f"block {i + 1}" for i in range(RING.g_depth)}
    assert {s.layer for s in probe.layers if s.net == "D"} == {f"block {i + 1}" for i in range(RING.d_depth)}
    assert set(probe.grad_norms) == {"G", "D"}
    for net in ("G", "D"):
        assert "output" in probe.grad_norms[net] and "block 1" in probe.grad_norms[net]
        assert all(math.isfinite(v) and v >= 0 for v in probe.grad_norms[net].values())
    assert {b.net for b in probe.batchnorm} == {"G", "D"}
    g_bn = [b for b in probe.batchnorm if b.net == "G" and b.layer == "block 1"][0]
    assert g_bn.batch_mean.shape == (RING.g_width,)


def test_samples_on_schedule_2d():
    t = Trainer(RING.replace(steps=5, sample_every=2))
    steps = [r.samples.step for r in (t.step() for _ in range(5)) if r.samples is not None]
    assert steps == [2, 4, 5]  # and the last step of the run
    s = t.snapshot()
    assert s.samples.shape == (32, 2) and s.samples.dtype == np.float32
    assert s.field.shape == (48, 48) and np.isfinite(s.field).all()
    assert ((s.field >= 0) & (s.field <= 1)).all()  # BCE: D's probability
    x0, x1, y0, y1 = s.extent
    assert x0 < -1 < 1 < x1 and y0 < -1 < 1 < y1
    assert s.arrows.shape == (32, 2) and np.isfinite(s.arrows).all()
    assert s.labels is None


def test_snapshot_manifold_is_g_over_the_noise_grid():
    t = Trainer(RING)
    t.step()
    m = t.snapshot().manifold
    res, span = MANIFOLD_RES, MANIFOLD_SPAN
    assert m.shape == (res, res, 2) and m.dtype == np.float32 and np.isfinite(m).all()
    # [i, j] is G at z = (j-th, i-th grid value): corners and the centre, each generated alone
    ticks = np.linspace(-span, span, res)
    for i, j in ((0, 0), (0, res - 1), (res - 1, 0), (res // 2, res // 2), (3, 11)):
        z = torch.tensor([[ticks[j], ticks[i]]], dtype=torch.float32)
        np.testing.assert_allclose(m[i, j], t.generate(z)[0].numpy(), rtol=1e-5, atol=1e-6)
    assert np.ptp(m.reshape(-1, 2), axis=0).min() > 0  # G spreads the grid: not one point


def test_manifold_slices_a_wider_noise_at_zero():
    t = Trainer(RING.replace(z_dim=5))
    m = t.manifold(res=3, span=1.0)
    z = torch.tensor([[1.0, -1.0, 0.0, 0.0, 0.0]])  # j = 2 (z[0] = 1), i = 0 (z[1] = −1), the rest at their mean 0
    np.testing.assert_allclose(m[0, 2], t.generate(z)[0].numpy(), rtol=1e-5, atol=1e-6)


def test_samples_images():
    t = Trainer(DIGITS.replace(sample_every=1))
    s = t.step().samples
    assert s.samples.shape == (20, 1, 8, 8)
    assert s.samples.min() >= 0 and s.samples.max() <= 1
    assert s.field is None and s.extent is None and s.arrows is None and s.manifold is None
    out = t.sample(7)
    assert out.shape == (7, 1, 8, 8) and out.min() >= 0 and out.max() <= 1
    np.testing.assert_array_equal(t.sample(7, seed=3), t.sample(7, seed=3))
    with pytest.raises(ValueError, match="label"):
        t.sample(3, label=1)  # not conditional


def test_conditional_sample_by_label():
    t = Trainer(tiny("digits-conditional", batch_size=32, n_samples=20))
    t.step()
    s = t.snapshot()
    np.testing.assert_array_equal(s.labels, np.arange(20) % 10)
    three = t.sample(6, seed=0, label=3)
    assert three.shape == (6, 1, 8, 8)
    assert not np.array_equal(three, t.sample(6, seed=0, label=4))  # the label reaches G
    for bad in (-1, 10):
        with pytest.raises(ValueError, match="label"):
            t.sample(2, label=bad)


# -- slow-motion parts -------------------------------------------------------------------------------------------------
def test_step_without_d_updates_changes_only_g():
    t = Trainer(RING)
    t.step()
    d_before, g_before = copy.deepcopy(t.D.state_dict()), _params(t.G)
    r = t.step(d_updates=0).record
    assert r.step == 2
    assert all(torch.equal(v, t.D.state_dict()[k]) for k, v in d_before.items())
    assert not _same(g_before, _params(t.G))


def test_d_update_alone_changes_only_d():
    t = Trainer(RING)
    d_before, g_before = _params(t.D), _params(t.G)
    values = t.d_update()
    assert set(values) == {"d_loss", "d_real", "d_fake", "d_loss_real", "d_loss_fake", "gp"}
    assert t.step_count == 0
    assert _same(g_before, _params(t.G))  # G's batch-norm running statistics do move: D's fakes come from G in train mode
    assert not _same(d_before, _params(t.D))


def test_step_runs_the_asked_number_of_d_updates(monkeypatch):
    t = Trainer(RING.replace(d_steps=2))
    calls = []
    original = t.d_forward  # each D update computes D's loss once (step() writes the updates out, see Trainer.step)
    monkeypatch.setattr(t, "d_forward", lambda probe=None: calls.append(probe) or original(probe))
    t.step()
    t.step(d_updates=4)
    assert len(calls) == 6


# -- divergence --------------------------------------------------------------------------------------------------------
def _nan_terms(*args, **kwargs):
    nan = torch.tensor(math.nan, requires_grad=True)
    return {"loss": nan, "d_loss_real": nan, "d_loss_fake": nan}


@pytest.mark.parametrize("which", ["d_loss", "g_loss"])
def test_diverged_leaves_the_models_as_they_were(monkeypatch, which):
    t = Trainer(RING)
    t.step()
    t.d_update()  # so that a failing G update has no D update of its own step before it
    g_before, d_before = _params(t.G), _params(t.D)
    opt_before = copy.deepcopy(t.opt_g.state_dict()["state"])
    monkeypatch.setattr(t.loss, which, _nan_terms)
    with pytest.raises(Diverged) as err:
        if which == "d_loss":
            t.step()
        else:
            t.step(d_updates=0)
    assert err.value.step == 2 and "not a finite number" in str(err.value)
    assert t.step_count == 1
    assert _same(g_before, _params(t.G)) and _same(d_before, _params(t.D))
    assert all(torch.equal(v["exp_avg"], t.opt_g.state_dict()["state"][k]["exp_avg"]) for k, v in opt_before.items())


def test_diverged_on_nan_data():
    x = torch.full((16, 1, 8, 8), math.nan)
    data = DataSource(name="digits", shape=(1, 8, 8), value_range=(0.0, 1.0), num_classes=10, size=16, x=x,
                      y=torch.zeros(16, dtype=torch.int64))
    t = Trainer(DIGITS, data=data)
    d_before = copy.deepcopy(t.D.state_dict())
    with pytest.raises(Diverged):
        t.step()
    assert all(torch.equal(v, t.D.state_dict()[k]) for k, v in d_before.items())


# -- progress ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("preset, steps", [("ring-bce", 200), ("ring-wgan", 60)])
def test_training_raises_mode_coverage(preset, steps):
    config = tiny(preset, steps=steps, batch_size=64, probe_every=10**5, sample_every=10**5)
    t = Trainer(config)
    modes, sigma = t.data.modes.numpy(), t.data.sigma
    before = mode_stats(t.sample(2500), modes, sigma)
    for _ in range(steps):
        t.step()
    after = mode_stats(t.sample(2500), modes, sigma)
    assert after["modes_total"] == 8
    assert after["modes_covered"] > before["modes_covered"], (before, after)
    assert after["high_quality_fraction"] > before["high_quality_fraction"]


@pytest.mark.slow
def test_digits_training_covers_more_classes():
    config = tiny("digits", width=32, steps=600, probe_every=10**5,
                  sample_every=10**5)
    t = Trainer(config)
    clf, _ = get_classifier(t.data)
    before = evaluate_images(clf, torch.from_numpy(t.sample(500)), t.data)
    for _ in range(config.steps):
        t.step()
    after = evaluate_images(clf, torch.from_numpy(t.sample(500)), t.data)
    assert after["classes_covered"] >= before["classes_covered"] + 3, (before["classes_covered"], after["classes_covered"])
    assert after["fcd"] < before["fcd"]


def test_learning_rate_decays_to_lr_final():
    t = Trainer(RING.replace(steps=3))
    for _ in range(3):
        t.step()
    assert t.opt_g.param_groups[0]["lr"] == pytest.approx(RING.lr_g * RING.lr_final)
    assert t.opt_d.param_groups[0]["lr"] == pytest.approx(RING.lr_d * RING.lr_final)


# -- checkpoints -------------------------------------------------------------------------------------------------------
def _through_disk(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)  # what the store does: a plain dict must survive weights_only


def test_state_dict_round_trip_continues_identically():
    a = Trainer(RING)
    for _ in range(4):
        a.step()
    state = _through_disk(a.state_dict())
    b = Trainer(RING.replace(probe_every=2, sample_every=3, checkpoint_every=9, n_samples=5))  # what to record may change
    b.load_state_dict(state)
    assert b.step_count == 4 and b.elapsed_s == a.elapsed_s
    assert _same_state(a.G, b.G) and _same_state(a.D, b.D)
    for _ in range(3):
        assert _row(a.step().record) == _row(b.step().record)
    assert _same_state(a.G, b.G)


def test_state_dict_round_trip_wgan_gp():
    config = tiny("ring-wgan", width=8, batch_size=32, d_steps=2)
    a = Trainer(config)
    a.step()
    b = Trainer(config)
    b.load_state_dict(_through_disk(a.state_dict()))
    ra, rb = a.step().record, b.step().record
    assert _row(ra) == _row(rb) and math.isfinite(ra.gp) and ra.gp >= 0


@pytest.mark.parametrize("change", [{"g_width": 32}, {"lr_g": 1e-4}, {"seed": 5}, {"loss": "least_squares"}])
def test_mismatched_config_checkpoint_is_refused(change):
    state = Trainer(RING).state_dict()
    other = Trainer(RING.replace(**change))
    with pytest.raises(CheckpointError, match=next(iter(change))):
        other.load_state_dict(state)


@pytest.mark.parametrize("mangle", [
    lambda s: {},
    lambda s: {**s, "format": 99},
    lambda s: {k: v for k, v in s.items() if k != "generator"},
    lambda s: {**s, "config": {**s["config"], "nonsense": 1}},
    lambda s: {**s, "generator": {"junk": torch.zeros(1)}},
])
def test_broken_checkpoint_is_refused(mangle):
    t = Trainer(RING)
    with pytest.raises(CheckpointError):
        t.load_state_dict(mangle(t.state_dict()))


# -- 28×28 presets without files ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["wgan-gp", "conditional"])
def test_dcgan_presets_run_a_step_on_fake_mnist(preset):
    config = get_preset(preset).config.replace(batch_size=8, n_samples=4, probe_every=1, sample_every=1, d_steps=2)
    t = Trainer(config, data=_fake_mnist())
    result = t.step()
    r = result.record
    assert all(math.isfinite(getattr(r, k)) for k in ("d_loss", "g_loss", "d_real", "d_fake"))
    if preset == "wgan-gp":
        assert math.isfinite(r.gp) and r.gp >= 0
    assert result.samples.samples.shape == (4, 1, 28, 28)
    assert result.samples.samples.min() >= 0 and result.samples.samples.max() <= 1  # Tanh output mapped to [0, 1]
    assert {s.net for s in result.probe.layers} == {"G", "D"}
    assert {b.net for b in result.probe.batchnorm} == {"G", "D"}
    out = t.sample(3, label=2 if config.conditional else None)
    assert out.shape == (3, 1, 28, 28) and out.min() >= 0 and out.max() <= 1


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ValueError, match="device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="cuda"):
            resolve_device("cuda")
