"""gan_core.lessons.checkpoints: a saved G read back from uploaded bytes; every hostile or foreign file refused in one
line naming the checkpoint, and nothing in it run."""

from __future__ import annotations

import builtins
import io
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from gan_core.config import ConfigError
from gan_core.lessons import checkpoints
from gan_core.runs.folder import CHECKPOINT_FILE, RunStore
from gan_core.runs.train_run import open_run, train_to
from gan_core.train.trainer import Trainer
from tests.tiny import TINY, tiny


def _bytes(obj: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, Trainer]:
    """A CLI-style run folder's checkpoint.pt after 20 steps, and the trainer that wrote it."""
    store, trainer = open_run(tmp_path_factory.mktemp("run") / "ring", TINY.replace(steps=20, checkpoint_every=20))
    train_to(store, trainer)
    return (store.path / CHECKPOINT_FILE).read_bytes(), trainer


def test_a_run_folders_checkpoint_gives_back_its_generator(trained):
    data, trainer = trained
    saved = checkpoints.read_checkpoint(data)
    assert saved.step == 20 and saved.config == trainer.config
    assert not saved.generator.training  # batch norm reads its running statistics
    for name, tensor in trainer.G.state_dict().items():
        assert torch.equal(saved.generator.state_dict()[name], tensor.cpu()), name
    points = saved.sample(16, seed=3)
    assert points.shape == (16, 2) and np.isfinite(points).all()
    np.testing.assert_array_equal(points, saved.sample(16, seed=3))  # same seed, same z, same samples
    assert not np.array_equal(points, saved.sample(16, seed=4))


def test_a_conditional_image_generator_samples_the_class_asked_for():
    trainer = Trainer(tiny("digits-conditional", steps=1), device="cpu")
    saved = checkpoints.read_checkpoint(_bytes(trainer.state_dict()))
    images = saved.sample(4, seed=0, label=7)
    assert images.shape == (4, 1, 8, 8) and images.min() >= 0 and images.max() <= 1
    z = torch.randn(4, saved.config.z_dim, generator=torch.Generator().manual_seed(0))
    trainer.G.eval()
    with torch.no_grad():
        expected = trainer.G(z, torch.nn.functional.one_hot(torch.full((4,), 7), 10).float())
    np.testing.assert_allclose(images, expected.numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="^label: 10 "):
        saved.sample(4, seed=0, label=10)


class _RunsCode:
    """Unpickling this calls a builtin: what a crafted checkpoint would do with os.system."""

    def __init__(self, func: object, *args: object) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


def _refusal(data: bytes) -> str:
    with pytest.raises(ConfigError) as caught:
        checkpoints.read_checkpoint(data)
    message = str(caught.value)
    assert message.startswith("checkpoint: ") and "\n" not in message, message
    return message


def test_a_crafted_pickle_is_refused_and_runs_nothing(tmp_path: Path, trained):
    marker = tmp_path / "pwned"
    state = torch.load(io.BytesIO(trained[0]), weights_only=True)
    for payload in (_RunsCode(builtins.exec, f"open({str(marker)!r}, 'w').close()"),
                    {**state, "generator": {"net.0.weight": _RunsCode(os.system, f"touch {marker}")}},
                    {**state, "config": _RunsCode(builtins.eval, f"open({str(marker)!r}, 'w')")}):
        assert "loading them could run code" in _refusal(_bytes(payload))
    assert not marker.exists()


def test_foreign_and_broken_files_are_refused_in_one_line(trained):
    data, trainer = trained
    state = torch.load(io.BytesIO(data), weights_only=True)
    assert "read safely" in _refusal(b"not a checkpoint at all")
    assert "read safely" in _refusal(data[: len(data) // 2])  # a truncated download
    assert "not a GAN checkpoint" in _refusal(_bytes({"weights": torch.zeros(3)}))
    assert "format" in _refusal(_bytes({**state, "format": 99}))
    assert "its config is refused: z_dim" in _refusal(_bytes({**state, "config": {**state["config"], "z_dim": 0}}))
    # within every field's limit, but far past MAX_PARAMETERS together: refused before G is built
    huge = {**state["config"], "g_width": 2048, "g_depth": 8}
    assert "its config is refused: g_width" in _refusal(_bytes({**state, "config": huge}))
    # weights of another shape than the config says (a config edited by hand, or another run's weights)
    wider = {**state["config"], "g_width": trainer.config.g_width * 2}
    assert "does not match its own config" in _refusal(_bytes({**state, "config": wider}))
    broken = {k: v.clone() for k, v in state["generator"].items()}
    first = next(k for k, v in broken.items() if v.is_floating_point())
    broken[first][...] = float("nan")
    assert "NaN" in _refusal(_bytes({**state, "generator": broken}))
    assert "named tensors" in _refusal(_bytes({**state, "generator": [1, 2]}))
    assert "step" in _refusal(_bytes({**state, "step": -1}))


def test_a_file_over_the_cap_is_refused_before_it_is_read():
    message = _refusal(b"\0" * (checkpoints.MAX_CHECKPOINT_BYTES + 1))
    assert "the limit is 20 MB" in message


def test_continue_from_makes_a_run_that_trains_on_where_the_file_stopped(trained, tmp_path):
    """The new folder holds the file's D, optimisers and random state: its next steps are the very steps the original
    run would have taken (resuming reproduces the same next steps, DESIGN rule 4)."""
    from gan_core.runs.manager import RunManager
    from gan_core.runs.status import Status

    data, _ = trained
    runs = tmp_path / "runs"
    run_id = checkpoints.continue_from(data, runs, 10, owner="session-a")
    folder = runs / run_id
    assert run_id.startswith("ring-continued-") and (folder / "origin.json").is_file()
    assert not (folder / "metrics.csv").exists()  # its history starts after the file's step
    manager = RunManager(runs, max_runs=1, processes=False)
    try:
        snap = manager.snapshot(run_id)
        assert snap.status is Status.STOPPED and snap.step == 20 and snap.owner == "session-a"
        manager.resume(run_id)
        snap = manager.wait(run_id, lambda s: not s.status.active, timeout=60)
        assert snap.status is Status.FINISHED and snap.step == 30
    finally:
        manager.shutdown()
    steps = [r.step for r in RunStore(folder).read_metrics()]
    assert steps == list(range(21, 31))
    # the same 10 steps taken by the run that wrote the file, resumed from its own folder
    reference = tmp_path / "reference"
    store, trainer = open_run(reference, TINY.replace(steps=20, checkpoint_every=20))
    train_to(store, trainer)
    store, trainer = open_run(reference, steps=30)
    train_to(store, trainer)
    ours, theirs = RunStore(folder).read_metrics(), RunStore(reference).read_metrics()[20:]
    assert [r.step for r in ours] == [r.step for r in theirs]
    # equal but for float rounding: the manager's worker thread runs torch on one thread, the reference on several
    losses = [v for r in ours for v in (r.d_loss, r.g_loss)]
    assert losses == pytest.approx([v for r in theirs for v in (r.d_loss, r.g_loss)], rel=1e-4)


def test_continue_from_refuses_before_writing_anything(trained, tmp_path):
    data, trainer = trained
    runs = tmp_path / "runs"
    with pytest.raises(ConfigError, match="steps"):
        checkpoints.continue_from(data, runs, 0)
    state = trainer.state_dict()
    state["opt_d"] = {"state": "not a table"}  # G is fine, so sampling works; continuing must not
    with pytest.raises(ConfigError, match="checkpoint"):
        checkpoints.continue_from(_bytes(state), runs, 10)
    points = trainer.state_dict()
    points["config"] = {**points["config"], "dataset": "points", "points_csv": "/etc/passwd"}
    with pytest.raises(ConfigError, match="CSV points"):
        checkpoints.continue_from(_bytes(points), runs, 10)
    assert not runs.exists() or not any(runs.iterdir())
