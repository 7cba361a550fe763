"""Data sources: the PacGAN mixtures, user CSV points, bundled digits, and MNIST files read through torchvision."""

from __future__ import annotations

import gzip
import math
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from gan_core.config import PRESETS, ConfigError, Dataset, TrainConfig
from gan_core.data import (
    GRID_SIGMA,
    MAX_CSV_POINTS,
    RING_SIGMA,
    grid_modes,
    load_dataset,
    load_digits,
    load_points_csv,
    load_torchvision,
    mixture,
    ring_modes,
    to_data_range,
    to_model_range,
)

# -- 2D mixtures: exactly the PacGAN setups --


def test_ring_is_eight_modes_on_the_unit_circle_with_sigma_0_01() -> None:
    expected = [(math.cos(2 * math.pi * k / 8), math.sin(2 * math.pi * k / 8)) for k in range(8)]
    assert torch.allclose(ring_modes(), torch.tensor(expected), atol=1e-6)
    source = mixture("ring")
    assert RING_SIGMA == source.sigma == 0.01
    assert torch.equal(source.modes, ring_modes())
    assert source.shape == (2,) and source.num_classes == 0 and source.size is None and not source.is_image


def test_grid_is_twenty_five_modes_on_minus4_to_4_step_2_with_sigma_0_05() -> None:
    modes = grid_modes()
    assert modes.shape == (25, 2)
    expected = {(float(x), float(y)) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)}
    assert {tuple(row) for row in modes.tolist()} == expected
    source = mixture("grid")
    assert GRID_SIGMA == source.sigma == 0.05
    assert torch.equal(source.modes, modes)


@pytest.mark.parametrize("name", ["ring", "grid"])
def test_mixture_samples_lie_near_their_modes_with_the_stated_spread(name: str) -> None:
    source = mixture(name)
    x, y = source.sample(20_000, torch.Generator().manual_seed(0))
    assert y is None and x.shape == (20_000, 2) and x.dtype == torch.float32
    dist = torch.cdist(x, source.modes)
    nearest = dist.argmin(dim=1)
    assert dist.min(dim=1).values.max() < 6 * source.sigma  # every sample within 6σ of a mode
    assert set(nearest.tolist()) == set(range(len(source.modes)))  # every mode is drawn
    offsets = x - source.modes[nearest]
    assert offsets.std(dim=0) == pytest.approx([source.sigma, source.sigma], rel=0.05)
    counts = torch.bincount(nearest, minlength=len(source.modes)).double() / len(x)
    assert counts.min() > 0.5 / len(source.modes)  # modes are drawn uniformly
    lo, hi = source.value_range
    assert lo - 2 * source.sigma <= float(x.min()) and float(x.max()) <= hi + 2 * source.sigma  # a display range


@pytest.mark.parametrize("make", [lambda: mixture("ring"), lambda: mixture("grid"), load_digits])
def test_sampling_is_deterministic_for_a_generator_seed(make) -> None:
    source = make()
    a, la = source.sample(64, torch.Generator().manual_seed(123))
    b, lb = source.sample(64, torch.Generator().manual_seed(123))
    c, _ = source.sample(64, torch.Generator().manual_seed(124))
    assert torch.equal(a, b)
    assert (la is None and lb is None) or torch.equal(la, lb)
    assert not torch.equal(a, c)


# -- bundled digits --


def test_digits_are_1797_8x8_images_in_0_1_with_ten_classes() -> None:
    source = load_digits()
    assert source.name == "digits" and source.size == 1797 and source.shape == (1, 8, 8) and source.is_image
    assert source.x.shape == (1797, 1, 8, 8) and source.x.dtype == torch.float32
    assert float(source.x.min()) == 0.0 and float(source.x.max()) == 1.0
    assert source.value_range == (0.0, 1.0)
    assert source.num_classes == 10 and set(source.y.tolist()) == set(range(10))
    dist = source.class_distribution()
    assert dist.shape == (10,) and dist.sum() == pytest.approx(1.0) and dist.min() > 0.09
    x, y = source.sample(32, torch.Generator().manual_seed(0))
    assert x.shape == (32, 1, 8, 8) and y.shape == (32,) and y.dtype == torch.int64


def test_mixtures_have_no_class_distribution() -> None:
    assert mixture("ring").class_distribution().shape == (0,)


# -- user CSV points --


def _csv(tmp_path: Path, text: str, name: str = "points.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_without_header(tmp_path: Path) -> None:
    source = load_points_csv(_csv(tmp_path, "0,0\n1,2\n\n-3.5,4e-1\n"))
    assert source.name == "points" and source.shape == (2,) and source.size == 3
    assert torch.equal(source.x, torch.tensor([[0.0, 0.0], [1.0, 2.0], [-3.5, 0.4]]))
    assert source.value_range == (-3.5, 2.0)
    x, y = source.sample(10, torch.Generator().manual_seed(0))
    assert y is None and x.shape == (10, 2)
    assert all(row in source.x.tolist() for row in x.tolist())


def test_csv_with_header_and_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffx,y\r\n1,1\r\n2, 3\r\n".encode())
    source = load_points_csv(path)
    assert torch.equal(source.x, torch.tensor([[1.0, 1.0], [2.0, 3.0]]))


def test_points_dataset_loads_the_config_csv(tmp_path: Path) -> None:
    path = _csv(tmp_path, "x,y\n0,1\n1,0\n")
    config = TrainConfig.from_dict({"dataset": "points", "points_csv": str(path)})
    assert load_dataset(config).size == 2


def _csv_error(path: Path) -> str:
    with pytest.raises(ConfigError) as err:
        load_points_csv(path)
    assert err.value.field == "points_csv"
    return str(err.value)


def test_csv_bad_row_names_the_line(tmp_path: Path) -> None:
    message = _csv_error(_csv(tmp_path, "x,y\n1,2\n3,4\n5,abc\n6,7\n"))
    assert "points.csv line 4" in message and "5,abc" in message


def test_csv_text_after_the_first_line_is_not_a_header(tmp_path: Path) -> None:
    assert "line 2" in _csv_error(_csv(tmp_path, "1,2\nx,y\n3,4\n"))


def test_csv_wrong_column_count_names_the_line(tmp_path: Path) -> None:
    message = _csv_error(_csv(tmp_path, "1,2\n3,4\n5,6,7\n"))
    assert "line 3" in message and "2 columns" in message and "found 3" in message
    assert "line 2" in _csv_error(_csv(tmp_path, "1,2\n3\n", name="one.csv"))


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "1e999"])
def test_csv_non_finite_value_names_the_line(tmp_path: Path, bad: str) -> None:
    message = _csv_error(_csv(tmp_path, f"1,2\n3,4\n{bad},0\n"))
    assert "line 3" in message and "finite" in message


def test_csv_empty_file_header_only_and_single_point(tmp_path: Path) -> None:
    assert "found 0" in _csv_error(_csv(tmp_path, "", name="empty.csv"))
    assert "found 0" in _csv_error(_csv(tmp_path, "x,y\n", name="header.csv"))
    assert "found 1" in _csv_error(_csv(tmp_path, "1,2\n", name="single.csv"))


@pytest.mark.slow
def test_csv_of_exactly_the_row_cap_loads_and_one_row_more_is_refused_at_that_row(tmp_path: Path) -> None:
    rows = "".join(f"{i % 97},{i % 89}\n" for i in range(MAX_CSV_POINTS))
    source = load_points_csv(_csv(tmp_path, "x,y\n" + rows))
    assert source.size == MAX_CSV_POINTS and source.x.dtype == torch.float32
    assert source.x[-1].tolist() == [(MAX_CSV_POINTS - 1) % 97, (MAX_CSV_POINTS - 1) % 89]
    message = _csv_error(_csv(tmp_path, rows + "1,2\n" + "not a row\n" * 10, name="over.csv"))
    assert f"over.csv: more than {MAX_CSV_POINTS:,} points (line {MAX_CSV_POINTS + 1:,})" in message  # the bad tail unread


def test_csv_missing_file_and_binary_file(tmp_path: Path) -> None:
    assert "not found" in _csv_error(tmp_path / "nope.csv")
    assert "not found" in _csv_error(tmp_path)  # a folder is not a CSV file
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81" * 10)
    assert "UTF-8" in _csv_error(binary)


# -- MNIST / Fashion-MNIST through torchvision, on tiny IDX files written here --


def _write_idx(raw: Path, prefix: str, images: np.ndarray, labels: np.ndarray, gz: bool = False) -> None:
    """The MNIST file format: big-endian magic and sizes, then unsigned bytes."""
    raw.mkdir(parents=True, exist_ok=True)
    n = len(images)
    files = {
        f"{prefix}-images-idx3-ubyte": struct.pack(">IIII", 0x0803, n, 28, 28) + images.astype(np.uint8).tobytes(),
        f"{prefix}-labels-idx1-ubyte": struct.pack(">II", 0x0801, n) + labels.astype(np.uint8).tobytes(),
    }
    for name, data in files.items():
        if gz:
            (raw / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (raw / name).write_bytes(data)


def _tiny(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8), rng.integers(0, 10, size=n, dtype=np.uint8)


def _check_loaded(source, images: np.ndarray, labels: np.ndarray, name: str = "mnist") -> None:
    assert source.name == name and source.shape == (1, 28, 28) and source.num_classes == 10
    assert source.size == len(images) and source.x.shape == (len(images), 1, 28, 28)
    assert source.value_range == (0.0, 1.0)
    assert torch.allclose(source.x[:, 0], torch.tensor(images, dtype=torch.float32) / 255.0)
    assert torch.equal(source.y, torch.tensor(labels, dtype=torch.int64))


@pytest.mark.parametrize("dataset, folder", [(Dataset.MNIST, "MNIST"), (Dataset.FASHION_MNIST, "FashionMNIST")])
def test_test_split_only_is_used_with_a_note(tmp_path: Path, dataset: Dataset, folder: str) -> None:
    images, labels = _tiny(5, seed=1)
    _write_idx(tmp_path / folder / "raw", "t10k", images, labels)
    source = load_torchvision(dataset, tmp_path, download=False)
    _check_loaded(source, images, labels, name=dataset.value)
    assert "test split" in source.note and str(tmp_path / folder / "raw") in source.note


def test_train_split_is_preferred_and_needs_no_note(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    train_images, train_labels = _tiny(7, seed=2)
    _write_idx(raw, "train", train_images, train_labels)
    _write_idx(raw, "t10k", *_tiny(3, seed=3))
    source = load_torchvision(Dataset.MNIST, tmp_path, download=False)
    _check_loaded(source, train_images, train_labels)
    assert source.note == ""


def test_gz_only_files_are_unpacked_and_read(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    images, labels = _tiny(4, seed=4)
    _write_idx(raw, "t10k", images, labels, gz=True)
    source = load_torchvision(Dataset.MNIST, tmp_path, download=False)
    _check_loaded(source, images, labels)
    assert "test split" in source.note
    assert (raw / "t10k-images-idx3-ubyte").is_file()


def test_missing_files_error_names_the_folder_and_the_expected_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_torchvision(Dataset.MNIST, tmp_path, download=False)
    message = str(err.value)
    assert err.value.field == "dataset"
    assert str(tmp_path / "MNIST" / "raw") in message
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        assert name in message
    assert "--data-dir" in message


def test_half_a_split_is_missing(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    _write_idx(raw, "t10k", *_tiny(2, seed=5))
    (raw / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(ConfigError):
        load_torchvision(Dataset.MNIST, tmp_path, download=False)


@pytest.mark.parametrize("damage", ["not gzip", "truncated"])
def test_a_damaged_gz_is_a_config_error_every_time(tmp_path: Path, damage: str) -> None:
    raw = tmp_path / "MNIST" / "raw"
    _write_idx(raw, "t10k", *_tiny(50, seed=6), gz=True)
    gz = raw / "t10k-images-idx3-ubyte.gz"
    gz.write_bytes(b"not a gzip file" if damage == "not gzip" else gz.read_bytes()[: gz.stat().st_size // 2])
    for _ in range(2):  # a failed unpack must not leave a partial file that the next call takes for the real one
        with pytest.raises(ConfigError):
            load_torchvision(Dataset.MNIST, tmp_path, download=False)


def test_offline_means_no_download_attempt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision.datasets import MNIST

    calls: list[str] = []
    monkeypatch.setattr(MNIST, "download", lambda self: calls.append(self.root))
    monkeypatch.setenv("GAN_OFFLINE", "1")
    with pytest.raises(ConfigError):
        load_torchvision(Dataset.MNIST, tmp_path)
    assert calls == []
    monkeypatch.delenv("GAN_OFFLINE")
    with pytest.raises(ConfigError):  # the fake download fetched nothing: the same clear error
        load_torchvision(Dataset.MNIST, tmp_path)
    assert calls == [str(tmp_path)]


def test_data_dir_defaults_to_gan_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    images, labels = _tiny(3, seed=7)
    _write_idx(tmp_path / "MNIST" / "raw", "t10k", images, labels)
    monkeypatch.setenv("GAN_DATA_DIR", str(tmp_path))
    _check_loaded(load_torchvision(Dataset.MNIST, download=False), images, labels)
    _check_loaded(load_dataset(PRESETS["first-gan"].config), images, labels)


@pytest.mark.mnist
def test_shared_mnist_test_split(mnist_dir: Path) -> None:
    source = load_torchvision(Dataset.MNIST, mnist_dir, download=False)
    assert source.size == 10_000 and source.x.shape == (10_000, 1, 28, 28)
    assert "test split" in source.note
    assert float(source.x.min()) == 0.0 and float(source.x.max()) == 1.0
    assert set(source.y.tolist()) == set(range(10))
    assert source.class_distribution().min() > 0.08


# -- the model's range --


def test_to_model_range_and_back_for_dcgan() -> None:
    config = PRESETS["dcgan"].config
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    x[0, 0, 0, :2] = torch.tensor([0.0, 1.0])
    m = to_model_range(x, config)
    assert float(m.min()) == -1.0 and float(m.max()) == 1.0
    assert torch.allclose(to_data_range(m, config), x, atol=1e-6)


@pytest.mark.parametrize("preset", ["digits", "first-gan", "ring-bce"])
def test_ranges_are_identity_when_g_works_in_the_data_range(preset: str) -> None:
    config = PRESETS[preset].config
    x = torch.rand(3, 2)
    assert torch.equal(to_model_range(x, config), x) and torch.equal(to_data_range(x, config), x)


def test_load_dataset_dispatches_on_the_config() -> None:
    assert load_dataset(PRESETS["ring-bce"].config).name == "ring"
    assert load_dataset(PRESETS["grid-wgan"].config).name == "grid"
    assert load_dataset(PRESETS["digits"].config).name == "digits"


def test_available_knows_torchvision_s_folder_names() -> None:
    """data.available looks for the files without importing torchvision: its folder names must be torchvision's."""
    from gan_core.data import _TORCHVISION_FOLDERS, _torchvision_class

    assert all(_torchvision_class(d).__name__ == name for d, name in _TORCHVISION_FOLDERS.items())
