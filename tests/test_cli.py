"""python -m gan_core: presets, train (and --resume), sample, eval; bad input is one line on stderr and exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gan_core.cli import EXIT_BAD_INPUT, main
from gan_core.config import PRESETS
from gan_core.runs.folder import CHECKPOINT_FILE, CONFIG_FILE, METRICS_FILE, RunStore

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY = ["--set", "g_width=16", "--set", "d_width=16", "--set", "batch_size=64", "--set", "checkpoint_every=10",
        "--set", "n_samples=16", "--device", "cpu"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "ring"
    assert main(["train", "--preset", "ring-bce", *TINY, "--steps", "20", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "digits"
    assert main(["train", "--preset", "digits-conditional", *TINY, "--steps", "10", "--out", str(out)]) == 0
    return out


def _one_error_line(capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# -- presets -----------------------------------------------------------------------------------------------------------
def test_presets_in_process(capsys):
    assert main(["presets"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == list(PRESETS)
    for line, preset in zip(lines, PRESETS.values(), strict=True):
        assert preset.description in line


@pytest.mark.server
def test_presets_as_a_module():
    done = subprocess.run([sys.executable, "-m", "gan_core", "presets"], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert {line.split()[0] for line in done.stdout.strip().splitlines()} == set(PRESETS)
    assert "Traceback" not in done.stderr


# -- train -------------------------------------------------------------------------------------------------------------
def test_train_writes_the_run_folder(ring_run):
    for name in (CONFIG_FILE, METRICS_FILE, CHECKPOINT_FILE):
        assert (ring_run / name).is_file(), name
    config = json.loads((ring_run / CONFIG_FILE).read_text())
    assert config["steps"] == 20 and config["g_width"] == 16 and config["dataset"] == "ring"
    header = (ring_run / METRICS_FILE).read_text().splitlines()[0].split(",")
    assert header[:6] == ["step", "time_s", "d_loss", "g_loss", "d_real", "d_fake"]
    store = RunStore(ring_run)
    assert [r.step for r in store.read_metrics()] == list(range(1, 21))
    assert store.load_checkpoint()["step"] == 20


def test_train_resume_continues_to_more_steps(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--preset", "ring-bce", *TINY, "--steps", "12", "--seed", "3", "--out", str(out)]) == 0
    assert main(["train", "--preset", "ring-bce", "--out", str(out), "--resume", "--steps", "25"]) == 0
    store = RunStore(out)
    assert [r.step for r in store.read_metrics()] == list(range(1, 26))
    assert store.load_checkpoint()["step"] == 25
    config = store.read_config()
    assert config.steps == 25 and config.seed == 3 and config.g_width == 16
    assert "Traceback" not in capsys.readouterr().err


def test_train_says_in_one_line_what_runs_its_steps(tmp_path, capsys):
    assert main(["train", "--preset", "ring-bce", *TINY, "--steps", "2", "--out", str(tmp_path / "run")]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("steps: ")]
    assert lines == ["steps: eager: CUDA graphs need a CUDA device, and this Trainer runs on the cpu"]


# -- sample ------------------------------------------------------------------------------------------------------------
def test_sample_ring(ring_run, tmp_path):
    out = tmp_path / "ring.npy"
    assert main(["sample", "--run", str(ring_run), "--n", "50", "--out", str(out), "--seed", "1"]) == 0
    x = np.load(out)
    assert x.shape == (50, 2) and x.dtype == np.float32 and np.isfinite(x).all()
    again = tmp_path / "again.npy"
    assert main(["sample", "--run", str(ring_run), "--n", "50", "--out", str(again), "--seed", "1"]) == 0
    np.testing.assert_array_equal(x, np.load(again))


def test_sample_digits_with_label(digits_run, tmp_path):
    out = tmp_path / "digits.npy"
    assert main(["sample", "--run", str(digits_run), "--n", "12", "--out", str(out)]) == 0
    x = np.load(out)
    assert x.shape == (12, 1, 8, 8) and x.dtype == np.float32
    assert x.min() >= 0 and x.max() <= 1
    assert main(["sample", "--run", str(digits_run), "--n", "5", "--out", str(out), "--label", "7"]) == 0
    assert np.load(out).shape == (5, 1, 8, 8)


# -- eval --------------------------------------------------------------------------------------------------------------
def test_eval_ring(ring_run, capsys):
    assert main(["eval", "--run", str(ring_run), "--n", "500"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"modes_covered", "modes_total", "high_quality_fraction", "reverse_kl"} <= set(result)
    assert result["modes_total"] == 8 and 0 <= result["modes_covered"] <= 8
    assert 0 <= result["high_quality_fraction"] <= 1 and result["reverse_kl"] >= 0


def test_eval_digits(digits_run, capsys):
    assert main(["eval", "--run", str(digits_run), "--n", "200"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"classes_covered", "class_histogram", "kl_to_data", "fcd"} <= set(result)
    assert len(result["class_histogram"]) == 10 and 0 <= result["classes_covered"] <= 10
    assert result["fcd"] >= 0


# -- bad input ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, field", [
    (["--preset", "nope"], "preset"),
    (["--preset", "ring-bce", "--set", "bogus=1"], "bogus"),
    (["--preset", "ring-bce", "--set", "lr_g=-1"], "lr_g"),
    (["--preset", "ring-bce", "--set", "batch_size=abc"], "batch_size"),
    (["--preset", "ring-bce", "--set", "loss=hinge"], "loss"),
    (["--preset", "ring-bce", "--set", "no_equals_sign"], "--set"),
    (["--preset", "ring-bce", "--steps", "0"], "steps"),
    (["--preset", "ring-bce", "--steps", "abc"], "--steps"),
    (["--preset", "dcgan", "--set", "dataset=ring"], "arch"),
    (["--preset", "dcgan"], "dataset"),  # no MNIST files in the test's data dir, and no download
])
def test_train_bad_input(tmp_path, capsys, args, field):
    out = tmp_path / "run"
    assert main(["train", *args, "--out", str(out)]) == EXIT_BAD_INPUT
    _one_error_line(capsys, field)
    assert not out.exists()  # nothing written for a run that could not start


def test_train_refuses_an_existing_run_without_resume(ring_run, capsys):
    before = (ring_run / METRICS_FILE).read_bytes()
    assert main(["train", "--preset", "ring-bce", *TINY, "--steps", "5", "--out", str(ring_run)]) == EXIT_BAD_INPUT
    _one_error_line(capsys, "--out", "--resume")
    assert (ring_run / METRICS_FILE).read_bytes() == before


@pytest.mark.parametrize("make", [True, False])
def test_resume_on_an_empty_or_missing_folder(tmp_path, capsys, make):
    out = tmp_path / "empty"
    if make:
        out.mkdir()
    assert main(["train", "--preset", "ring-bce", "--out", str(out), "--resume"]) == EXIT_BAD_INPUT
    _one_error_line(capsys, str(out))


def test_resume_refuses_config_changes(ring_run, capsys):
    assert main(["train", "--preset", "ring-bce", "--out", str(ring_run), "--resume", "--set", "lr_g=0.1"]) == EXIT_BAD_INPUT
    _one_error_line(capsys, "--resume")


def test_missing_required_argument(capsys):
    assert main(["train", "--preset", "ring-bce"]) == EXIT_BAD_INPUT
    _one_error_line(capsys, "--out")
    assert main([]) == EXIT_BAD_INPUT
    _one_error_line(capsys)


@pytest.mark.parametrize("extra, field", [
    (["--n", "0"], "--n"),
    (["--n", "5", "--label", "3"], "label"),  # not a conditional run
])
def test_sample_bad_input(ring_run, tmp_path, capsys, extra, field):
    assert main(["sample", "--run", str(ring_run), "--out", str(tmp_path / "x.npy"), *extra]) == EXIT_BAD_INPUT
    _one_error_line(capsys, field)


def test_sample_bad_label_and_file_name(digits_run, tmp_path, capsys):
    assert main(["sample", "--run", str(digits_run), "--n", "3", "--out", str(tmp_path / "x.npy"), "--label", "10"]) == 2
    _one_error_line(capsys, "label")
    assert main(["sample", "--run", str(digits_run), "--n", "3", "--out", str(tmp_path / "x.txt")]) == 2
    _one_error_line(capsys, "--out")


def test_sample_and_eval_of_a_folder_without_a_run(tmp_path, capsys):
    assert main(["sample", "--run", str(tmp_path), "--n", "3", "--out", str(tmp_path / "x.npy")]) == EXIT_BAD_INPUT
    _one_error_line(capsys, str(tmp_path))
    assert main(["eval", "--run", str(tmp_path)]) == EXIT_BAD_INPUT
    _one_error_line(capsys, str(tmp_path))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_asked_for_without_a_gpu(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--preset", "ring-bce", "--device", "cuda", "--steps", "1", "--out", str(out)]) == EXIT_BAD_INPUT
    _one_error_line(capsys, "device")
    assert not out.exists()


def test_sample_into_a_missing_folder(ring_run, tmp_path, capsys):
    out = tmp_path / "no" / "such" / "folder" / "x.npy"
    assert main(["sample", "--run", str(ring_run), "--n", "3", "--out", str(out)]) == EXIT_BAD_INPUT
    _one_error_line(capsys, "--out")


# -- sizes and paths checked before the work; OS errors are one line ---------------------------------------------------
UNWRITABLE = Path("/proc/gan-explainer-test")  # procfs refuses new files, even to root (which passes chmod checks)


def test_sample_refuses_more_than_the_memory_limit_before_allocating(ring_run, tmp_path, capsys):
    out = tmp_path / "x.npy"
    assert main(["sample", "--run", str(ring_run), "--n", "1000000000", "--out", str(out)]) == EXIT_BAD_INPUT
    line = _one_error_line(capsys, "--n", "at most", "MB")
    assert "134,217,728" in line  # 1 GiB of float32 2D points: 2^30 / 8
    assert not out.exists()


@pytest.mark.parametrize("n", ["-5", "0", "1000000000"])
def test_eval_n_is_checked(ring_run, capsys, n):
    assert main(["eval", "--run", str(ring_run), "--n", n]) == EXIT_BAD_INPUT
    _one_error_line(capsys, "--n")


def test_sample_out_must_be_a_writable_file(ring_run, tmp_path, capsys):
    folder = tmp_path / "folder.npy"
    folder.mkdir()
    assert main(["sample", "--run", str(ring_run), "--n", "3", "--out", str(folder)]) == EXIT_BAD_INPUT
    _one_error_line(capsys, "--out", "is a folder")
    assert main(["sample", "--run", str(ring_run), "--n", "3", "--out", str(UNWRITABLE / "x.npy")]) == EXIT_BAD_INPUT
    _one_error_line(capsys, "--out")
    if Path("/proc").is_dir():
        assert main(["sample", "--run", str(ring_run), "--n", "3", "--out", "/proc/x.npy"]) == EXIT_BAD_INPUT
        _one_error_line(capsys, "--out", "cannot write")


def test_train_out_is_checked_before_training(tmp_path, capsys):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a run")
    assert main(["train", "--preset", "ring-bce", *TINY, "--steps", "2", "--out", str(a_file)]) == EXIT_BAD_INPUT
    _one_error_line(capsys, "--out", "is a file")
    if Path("/proc").is_dir():
        assert main(["train", "--preset", "ring-bce", *TINY, "--steps", "2", "--out", str(UNWRITABLE)]) == EXIT_BAD_INPUT
        _one_error_line(capsys, "--out", "cannot write")


def test_an_os_error_while_writing_is_one_line(ring_run, tmp_path, capsys, monkeypatch):
    def full_disk(file, *args, **kwargs):
        raise OSError(28, "No space left on device", str(file))

    monkeypatch.setattr(np, "save", full_disk)
    out = tmp_path / "x.npy"
    assert main(["sample", "--run", str(ring_run), "--n", "3", "--out", str(out)]) == EXIT_BAD_INPUT
    _one_error_line(capsys, "No space left on device", str(out))


def test_resume_with_fewer_steps_than_done_is_refused_and_changes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--preset", "ring-bce", *TINY, "--steps", "20", "--out", str(out)]) == 0
    config_before = (out / CONFIG_FILE).read_bytes()
    capsys.readouterr()
    assert main(["train", "--preset", "ring-bce", "--out", str(out), "--resume", "--steps", "10"]) == EXIT_BAD_INPUT
    _one_error_line(capsys, "steps", "fewer than the 20 steps")
    assert (out / CONFIG_FILE).read_bytes() == config_before
    assert [r.step for r in RunStore(out).read_metrics()] == list(range(1, 21))


# -- --rejection (discriminator rejection sampling) --------------------------------------------------------------------
def test_sample_with_rejection_keeps_n_and_says_how_many_were_drawn(ring_run, tmp_path, capsys):
    out = tmp_path / "kept.npy"
    assert main(["sample", "--run", str(ring_run), "--n", "200", "--out", str(out), "--seed", "2", "--rejection"]) == 0
    err = capsys.readouterr().err
    assert "D kept" in err and "drawn" in err, err
    kept = np.load(out)
    assert kept.shape == (200, 2) and kept.dtype == np.float32 and np.isfinite(kept).all()
    raw = tmp_path / "raw.npy"
    assert main(["sample", "--run", str(ring_run), "--n", "200", "--out", str(raw), "--seed", "2"]) == 0
    assert not np.array_equal(kept, np.load(raw))  # the flag changes what is written
    again = tmp_path / "again.npy"
    assert main(["sample", "--run", str(ring_run), "--n", "200", "--out", str(again), "--seed", "2", "--rejection"]) == 0
    np.testing.assert_array_equal(kept, np.load(again))


def test_sample_with_rejection_and_a_label(digits_run, tmp_path):
    out = tmp_path / "sevens.npy"
    assert main(["sample", "--run", str(digits_run), "--n", "6", "--out", str(out), "--label", "7", "--rejection"]) == 0
    assert np.load(out).shape == (6, 1, 8, 8)


def test_eval_with_rejection_reports_raw_and_filtered_apart(ring_run, capsys):
    assert main(["eval", "--run", str(ring_run), "--n", "500", "--seed", "1"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert "rejection" not in plain
    assert main(["eval", "--run", str(ring_run), "--n", "500", "--seed", "1", "--rejection"]) == 0
    both = json.loads(capsys.readouterr().out)
    assert {k: both[k] for k in plain} == plain  # the raw keys are where they were, with the same values
    filtered = both["rejection"]
    assert set(filtered) == {"modes_covered", "modes_total", "high_quality_fraction", "reverse_kl", "acceptance_rate",
                             "drawn"}
    assert 0 < filtered["acceptance_rate"] <= 1 and filtered["drawn"] >= 500 and filtered["modes_total"] == 8


def test_eval_digits_with_rejection(digits_run, capsys):
    assert main(["eval", "--run", str(digits_run), "--n", "100", "--rejection"]) == 0
    filtered = json.loads(capsys.readouterr().out)["rejection"]
    assert len(filtered["class_histogram"]) == 10 and sum(filtered["class_histogram"]) == 100


def test_rejection_of_a_critic_run_is_one_line(tmp_path, capsys):
    out = tmp_path / "wgan"
    assert main(["train", "--preset", "ring-wgan", *TINY, "--steps", "2", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["eval", "--run", str(out), "--n", "50", "--rejection"]) == EXIT_BAD_INPUT
    _one_error_line(capsys, "rejection", "BCE", "wgan_gp")
    assert main(["sample", "--run", str(out), "--n", "5", "--out", str(tmp_path / "x.npy"), "--rejection"]) == 2
    _one_error_line(capsys, "rejection", "wgan_gp")
    assert not (tmp_path / "x.npy").exists()


def test_sample_of_an_mnist_run_needs_only_its_folder(tmp_path, monkeypatch):
    """An MNIST run trained elsewhere (here on random 28×28 images): sampling reads config.json and checkpoint.pt, never
    the data (GAN_DATA_DIR points at an empty folder, and nothing may download), and gives what the trainer would."""
    from gan_core.config import get_preset
    from gan_core.data import DataSource
    from gan_core.train.trainer import Trainer

    config = get_preset("first-gan").config.replace(g_width=16, d_width=16, steps=3, checkpoint_every=3)
    images = torch.rand(64, 1, 28, 28)
    fake_mnist = DataSource(name="mnist", shape=(1, 28, 28), value_range=(0.0, 1.0), num_classes=10, size=64, x=images,
                            y=torch.randint(10, (64,)))
    trainer = Trainer(config, data=fake_mnist)
    store = RunStore(tmp_path / "mnist-run").create(config)
    for _ in range(3):
        trainer.step()
    store.save_checkpoint(trainer.state_dict())
    monkeypatch.setenv("GAN_DATA_DIR", str(tmp_path / "no-data-here"))
    monkeypatch.setenv("GAN_OFFLINE", "1")
    out = tmp_path / "mnist.npy"
    assert main(["sample", "--run", str(store.path), "--n", "9", "--out", str(out), "--seed", "3"]) == 0
    x = np.load(out)
    assert x.shape == (9, 1, 28, 28) and 0 <= x.min() and x.max() <= 1
    np.testing.assert_allclose(x, trainer.sample(9, seed=3), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("argv", "needles"), [
    (["--replicas", "0"], ("--replicas", "between 1 and 64")),
    (["--replicas", "many"], ("--replicas", "invalid int")),
    (["--port", "70000"], ("--port", "1-65535")),
])
def test_serve_refuses_bad_options_in_one_line_before_starting_anything(argv, needles, capsys):
    assert main(["serve", *argv]) == EXIT_BAD_INPUT
    _one_error_line(capsys, *needles)


def test_serve_without_haproxy_says_how_to_get_it(monkeypatch, capsys):
    from gan_core import hall

    monkeypatch.setattr(hall.shutil, "which", lambda name: None)
    monkeypatch.setattr(hall.os, "access", lambda path, mode: False)
    assert main(["serve", "--replicas", "2"]) == EXIT_BAD_INPUT
    _one_error_line(capsys, "HAProxy", "apt-get install haproxy")
