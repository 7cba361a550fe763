"""Training data: 2D Gaussian mixtures, user CSV points, bundled 8×8 digits, and MNIST / Fashion-MNIST via torchvision.

Every source is held in memory as float32 tensors (images in [0, 1], shape (N, C, H, W)); batches are drawn with a
torch.Generator so a seed fixes the whole run. Mixtures are sampled fresh each batch, as in the PacGAN setups.
"""

from __future__ import annotations

import array
import csv
import dataclasses
import functools
import gzip
import math
import os
import shutil
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gan_core.config import ConfigError, Dataset, TrainConfig

MAX_CSV_POINTS = 1_000_000
MAX_CSV_VALUE = 1e15  # |x|, |y| above this overflow float32 (or their squares do) and train nothing


@dataclass(frozen=True)
class DataSource:
    """One dataset: what it is (shape, range, labels) and how to draw a batch from it."""

    name: str
    shape: tuple[int, ...]  # one example's shape: (2,) or (C, H, W)
    value_range: tuple[float, float]
    num_classes: int  # 0 when unlabelled
    size: int | None  # number of stored examples; None for a mixture sampled fresh
    note: str = ""  # e.g. "only the test split was found, using it"
    x: Tensor | None = field(default=None, repr=False)  # (N, *shape) for stored data
    y: Tensor | None = field(default=None, repr=False)  # (N,) int64 labels, or None
    modes: Tensor | None = field(default=None, repr=False)  # (K, 2) mixture centres
    sigma: float | None = None  # mixture standard deviation

    @property
    def is_image(self) -> bool:
        return len(self.shape) == 3

    def sample(self, n: int, gen: torch.Generator) -> tuple[Tensor, Tensor | None]:
        """n examples (and labels when the data has them), drawn with replacement, on the generator's device (the data
        must live there too: see `to`)."""
        device = gen.device
        if self.modes is not None:
            idx = torch.randint(len(self.modes), (n,), generator=gen, device=device)
            return self.modes[idx] + self.sigma * torch.randn(n, 2, generator=gen, device=device), None
        assert self.x is not None
        idx = torch.randint(len(self.x), (n,), generator=gen, device=device)
        return self.x[idx], (self.y[idx] if self.y is not None else None)

    def to(self, device: torch.device | str) -> DataSource:
        """This source with its tensors on `device` (itself when they are there already): a GPU draws its batches there."""
        tensors = {k: getattr(self, k) for k in ("x", "y", "modes") if getattr(self, k) is not None}
        if all(t.device == torch.device(device) for t in tensors.values()):
            return self
        return dataclasses.replace(self, **{k: t.to(device) for k, t in tensors.items()})

    def class_distribution(self) -> np.ndarray:
        """Fraction of examples per class (uniform for mixtures' modes is not a class: empty for unlabelled data)."""
        if self.y is None:
            return np.zeros(0)
        counts = torch.bincount(self.y, minlength=self.num_classes).double()
        return (counts / counts.sum()).numpy()



def ring_modes() -> Tensor:
    """8 Gaussians at (cos 2πk/8, sin 2πk/8): the PacGAN / VEEGAN ring."""
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    return torch.stack([torch.cos(angles), torch.sin(angles)], dim=1).float()


def grid_modes() -> Tensor:
    """25 Gaussians at {−4, −2, 0, 2, 4}²: the PacGAN grid."""
    axis = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
    gx, gy = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([gx.flatten(), gy.flatten()], dim=1)


RING_SIGMA = 0.01
GRID_SIGMA = 0.05


def mixture(name: str) -> DataSource:
    modes, sigma = (ring_modes(), RING_SIGMA) if name == "ring" else (grid_modes(), GRID_SIGMA)
    lo = float(modes.min()) - 4 * sigma
    hi = float(modes.max()) + 4 * sigma
    return DataSource(name=name, shape=(2,), value_range=(lo, hi), num_classes=0, size=None, modes=modes, sigma=sigma)


def load_points_csv(path: str | os.PathLike) -> DataSource:
    """User 2D points: two numeric columns, an optional header row. Errors name the file and line.

    Reading stops at the first row past MAX_CSV_POINTS, and rows go straight into a flat array of floats (16 bytes a
    point, where a list of tuples took about 100): a 20 MB file of millions of short rows is refused after 1 M rows,
    in about a second, without holding more than the points it keeps."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError("points_csv", f"file not found: {p}")
    values = array.array("d")  # x0, y0, x1, y1, ...
    try:
        with p.open(newline="", encoding="utf-8-sig") as fh:
            for lineno, row in enumerate(csv.reader(fh), start=1):
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) != 2:
                    raise ConfigError("points_csv", f"{p.name} line {lineno}: expected 2 columns (x, y), found {len(row)}")
                try:
                    x, y = float(row[0]), float(row[1])
                except ValueError:
                    if lineno == 1 and not values:
                        continue  # a header row
                    raise ConfigError("points_csv", f"{p.name} line {lineno}: {','.join(row)[:60]!r} "
                                      "is not two numbers") from None
                if not (-MAX_CSV_VALUE <= x <= MAX_CSV_VALUE and -MAX_CSV_VALUE <= y <= MAX_CSV_VALUE):  # NaN fails too
                    if not (math.isfinite(x) and math.isfinite(y)):
                        raise ConfigError("points_csv", f"{p.name} line {lineno}: values must be finite numbers")
                    raise ConfigError("points_csv", f"{p.name} line {lineno}: values must lie between "
                                                    f"{-MAX_CSV_VALUE:g} and {MAX_CSV_VALUE:g}")
                if len(values) == 2 * MAX_CSV_POINTS:  # this row is one too many: stop before reading further
                    raise ConfigError("points_csv", f"{p.name}: more than {MAX_CSV_POINTS:,} points (line {lineno:,}); "
                                                    f"the limit is {MAX_CSV_POINTS:,}")
                values.append(x)
                values.append(y)
    except UnicodeDecodeError:
        raise ConfigError("points_csv", f"{p.name} is not a UTF-8 text file") from None
    except csv.Error as err:  # e.g. a line longer than csv's field limit
        raise ConfigError("points_csv", f"{p.name} is not a CSV of two numeric columns ({err})") from None
    if len(values) < 4:
        raise ConfigError("points_csv", f"{p.name}: needs at least 2 points, found {len(values) // 2}")
    x = torch.from_numpy(np.frombuffer(values, dtype=np.float64).reshape(-1, 2).astype(np.float32))
    lo, hi = float(x.min()), float(x.max())
    return DataSource(name="points", shape=(2,), value_range=(lo, hi), num_classes=0, size=len(x), x=x)


@functools.cache
def load_digits() -> DataSource:
    """scikit-learn's bundled 8×8 digits (1,797 images, 10 classes), scaled from 0..16 to [0, 1]: no download.

    Cached: the data are only read, and importing scikit-learn costs a second or two the first time."""
    from sklearn.datasets import load_digits as sk_digits  # noqa: PLC0415 - a second or two to import; only digits need it

    bunch = sk_digits()
    x = torch.tensor(bunch.images / 16.0, dtype=torch.float32).unsqueeze(1)  # (N, 1, 8, 8)
    y = torch.tensor(bunch.target, dtype=torch.int64)
    return DataSource(name="digits", shape=(1, 8, 8), value_range=(0.0, 1.0), num_classes=10, size=len(x), x=x, y=y)


def default_data_dir() -> Path:
    return Path(os.environ.get("GAN_DATA_DIR", "data"))


def available(dataset: Dataset, data_dir: str | os.PathLike | None = None) -> bool:
    """Whether `dataset` can be trained on here without a download: always for the generated and bundled ones; for
    MNIST and Fashion-MNIST, when either split's files are in data_dir (Home offers MNIST only then)."""
    if dataset in (Dataset.RING, Dataset.GRID, Dataset.DIGITS):
        return True
    if dataset is Dataset.POINTS:
        return False  # needs a file the user gives
    # a look at the file names only: importing torchvision to check them cost Home's first visit ~2 s; loading the
    # files checks them in full
    raw = (Path(data_dir) if data_dir is not None else default_data_dir()) / _TORCHVISION_FOLDERS[dataset] / "raw"
    return any((raw / f"{split}-images-idx3-ubyte{gz}").is_file() for split in ("train", "t10k") for gz in ("", ".gz"))


_TORCHVISION_FOLDERS = {Dataset.MNIST: "MNIST", Dataset.FASHION_MNIST: "FashionMNIST"}  # torchvision's class names


def _torchvision_class(dataset: Dataset) -> type:
    from torchvision.datasets import MNIST, FashionMNIST  # noqa: PLC0415 - only the MNIST datasets need torchvision

    return MNIST if dataset is Dataset.MNIST else FashionMNIST


def _split_files(cls: type, train: bool) -> list[str]:
    prefix = "train" if train else "t10k"
    return [Path(url).stem for url, _ in cls.resources if Path(url).name.startswith(prefix)]  # stem drops ".gz"


def _split_present(raw: Path, cls: type, train: bool) -> bool:
    """True when the split's files are there; unpacks .gz copies when only those are (and the folder is writable)."""
    for name in _split_files(cls, train):
        if (raw / name).is_file():
            continue
        gz = raw / f"{name}.gz"
        if not gz.is_file():
            return False
        part = raw / f"{name}.part"
        try:  # unpack beside the target, then rename: a failed unpack leaves nothing that passes for the real file
            with gzip.open(gz, "rb") as src, open(part, "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.replace(part, raw / name)
        except (OSError, EOFError, zlib.error):
            part.unlink(missing_ok=True)
            return False
    return True


def _load_torchvision(cls: type, root: Path, train: bool) -> tuple[Tensor, Tensor]:
    """Read one split through torchvision's own dataset class.

    torchvision's check insists on all four files; we only need the split we read, so the check is narrowed to it.
    """

    class OneSplit(cls):  # type: ignore[misc, valid-type]
        @property
        def raw_folder(self) -> str:
            return os.path.join(self.root, cls.__name__, "raw")

        def _check_exists(self) -> bool:
            return _split_present(Path(self.raw_folder), cls, self.train)

    ds = OneSplit(str(root), train=train, download=False)
    x = ds.data.float().div(255.0).unsqueeze(1)  # (N, 1, 28, 28) in [0, 1]
    return x, ds.targets.long()


def load_torchvision(dataset: Dataset, data_dir: str | os.PathLike | None = None, download: bool | None = None) -> DataSource:
    """MNIST or Fashion-MNIST under data_dir/<Class>/raw: the training split, else a download, else the test split."""
    cls = _torchvision_class(dataset)
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    raw = root / cls.__name__ / "raw"
    if download is None:
        download = os.environ.get("GAN_OFFLINE", "") not in ("1", "true", "yes")
    note = ""
    if not _split_present(raw, cls, train=True) and download:
        try:
            cls(str(root), train=True, download=True)
        except Exception:  # noqa: BLE001 - no network, a proxy, a read-only folder: fall back to what is on disk
            pass
    if _split_present(raw, cls, train=True):
        x, y = _load_torchvision(cls, root, train=True)
    elif _split_present(raw, cls, train=False):
        x, y = _load_torchvision(cls, root, train=False)
        note = f"only the test split was found in {raw}: training on its {len(x):,} images"
    else:
        expected = ", ".join(_split_files(cls, True) + _split_files(cls, False))
        raise ConfigError(
            "dataset",
            f"{dataset.value} files not found in {raw} and could not be downloaded; put the files there "
            f"(expected {expected}, or their .gz) or pass --data-dir",
        )
    return DataSource(name=dataset.value, shape=(1, 28, 28), value_range=(0.0, 1.0), num_classes=10, size=len(x),
                      note=note, x=x, y=y)


def load_dataset(config: TrainConfig, data_dir: str | os.PathLike | None = None) -> DataSource:
    """The DataSource a config trains on."""
    if config.dataset in (Dataset.RING, Dataset.GRID):
        return mixture(config.dataset.value)
    if config.dataset is Dataset.POINTS:
        return load_points_csv(config.points_csv)
    if config.dataset is Dataset.DIGITS:
        return load_digits()
    return load_torchvision(config.dataset, data_dir)


def described(config: TrainConfig) -> DataSource:
    """The run's data as far as a trained G needs it (shape, classes, range) without reading any stored examples: a
    finished run's samples need only its folder. The mixtures and the bundled digits cost nothing to make, so they are
    the real thing; for MNIST and CSV points, drawing a batch from the description fails."""
    if config.dataset in (Dataset.RING, Dataset.GRID):
        return mixture(config.dataset.value)
    if config.dataset is Dataset.DIGITS:
        return load_digits()
    classes = 10 if config.dataset.has_labels else 0
    value_range = (0.0, 1.0) if config.dataset.has_labels else (-1.0, 1.0)  # points: only the plane's extent reads it
    return DataSource(name=config.dataset.value, shape=config.dataset.shape, value_range=value_range,
                      num_classes=classes, size=None, note="described only: no examples were read")


def to_model_range(x: Tensor, config: TrainConfig) -> Tensor:
    """Images are stored in [0, 1]; DCGAN's Tanh generator works in [−1, 1]."""
    return x * 2 - 1 if config.data_range == (-1.0, 1.0) else x


def to_data_range(x: Tensor, config: TrainConfig) -> Tensor:
    """Inverse of to_model_range: G's output back to the data's own range."""
    return (x + 1) / 2 if config.data_range == (-1.0, 1.0) else x
