"""The lessons' "pre-trained classifier": one small network per image dataset, trained once here and cached on disk.

It plays the role of the course's pre-trained classifier: it tells which digit a generated image looks like (for class
histograms and controllable generation) and its penultimate features give the Fréchet Classifier Distance (FCD).
Inputs are images in [0, 1] shaped like the DataSource's x: 1×8×8 digits or 1×28×28 MNIST / Fashion-MNIST.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_core.data import DataSource
from gan_core.evaluation.cache import ModelCache
from gan_core.evaluation.metrics import class_stats, frechet_distance
from gan_core.runs.folder import atomic_write_bytes
from gan_core.train.models import inference

FORMAT_VERSION = 1  # bump when the architecture or the checkpoint layout changes: old cache files are then retrained
N_CLASSES = 10
HOLDOUT_FRACTION = 0.2
# (Adam updates, batch size, learning rate) per architecture, measured on 2 CPU cores: digits 0.978 in 0.25 s, the
# MNIST test split 0.976 in 6–11 s. A fixed number of updates, not of epochs, so training time does not grow with the
# dataset: MNIST's 10k test split and 60k training split take the same seconds, the larger just repeats less. Batches
# of 128 rather than 64 halve the number of small ops, which matters most when other processes share the cores.
RECIPES = {"mlp": (300, 128, 1e-2), "cnn": (400, 128, 2e-3)}

_CACHE: ModelCache[Classifier] = ModelCache()


class Classifier(nn.Module):
    """logits = head(body(x)); body(x) are the penultimate features used for FCD.

    8×8 digits: an MLP 64 → 128 → 64 (an image this small gains nothing from convolutions).
    28×28: two conv blocks 1 → 16 → 32 channels with 2×2 max-pooling, then a 128-unit dense layer.
    """

    def __init__(self, shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.shape = tuple(shape)
        c, h, w = self.shape
        if h * w <= 64:
            self.kind = "mlp"
            self.body = nn.Sequential(
                nn.Flatten(),
                nn.Linear(c * h * w, 128), nn.ReLU(),  # state size: 128
                nn.Linear(128, 64), nn.ReLU(),  # state size: 64 (features)
            )
            self.n_features = 64
        else:
            self.kind = "cnn"
            self.body = nn.Sequential(
                nn.Conv2d(c, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # state size: 16 × h/2 × w/2
                nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # state size: 32 × h/4 × w/4
                nn.Flatten(),
                nn.Linear(32 * (h // 4) * (w // 4), 128), nn.ReLU(),  # state size: 128 (features)
            )
            self.n_features = 128
        self.head = nn.Linear(self.n_features, N_CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)


def _seeded_init(model: nn.Module, gen: torch.Generator) -> None:
    """PyTorch's default Linear/Conv init, drawn from gen instead of the global RNG that parallel runs share."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=gen)
            bound = 1 / math.sqrt(m.weight[0].numel())  # 1 / sqrt(fan_in)
            nn.init.uniform_(m.bias, -bound, bound, generator=gen)


def _check_source(source: DataSource) -> tuple[Tensor, Tensor]:
    if not source.is_image or source.x is None or source.y is None:
        raise ValueError(f"a classifier needs labelled images; {source.name} has none")
    return source.x, source.y


def train_classifier(source: DataSource, seed: int = 0, steps: int | None = None, batch_size: int | None = None,
                     lr: float | None = None) -> tuple[Classifier, float]:
    """Train on a seeded 80 % of the source's images; return the model (eval mode) and its accuracy on the other 20 %.

    Minimises cross-entropy −log softmax(f(x))_y with Adam for `steps` updates, drawing shuffled batches from the
    training part epoch after epoch; steps, batch_size and lr default to the architecture's RECIPES entry.
    """
    x, y = _check_source(source)
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(x), generator=gen)
    n_test = max(1, int(round(len(x) * HOLDOUT_FRACTION)))
    test_idx, train_idx = order[:n_test], order[n_test:]
    model = Classifier(source.shape)
    _seeded_init(model, gen)
    default_steps, default_batch, default_lr = RECIPES[model.kind]
    steps = default_steps if steps is None else steps
    batch_size = min(default_batch if batch_size is None else batch_size, len(train_idx))
    opt = torch.optim.Adam(model.parameters(), lr=default_lr if lr is None else lr)
    model.train()
    perm, pos = torch.randperm(len(train_idx), generator=gen), 0
    for _ in range(steps):
        if pos + batch_size > len(perm):  # next epoch: reshuffle rather than train on a short last batch
            perm, pos = torch.randperm(len(train_idx), generator=gen), 0
        idx = train_idx[perm[pos:pos + batch_size]]
        pos += batch_size
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    pred = predict_proba(model, x[test_idx]).argmax(1)
    accuracy = float((pred == y[test_idx].numpy()).mean())
    return model, accuracy


def default_cache_dir() -> Path:
    return Path(os.environ.get("GAN_CACHE_DIR") or Path.home() / ".cache" / "gan_explainer")


def cache_path(source: DataSource, cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache file for this dataset: its name and example count (MNIST test split vs full train) and the format."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return root / f"classifier-{source.name}-n{len(source.x) if source.x is not None else 0}-v{FORMAT_VERSION}.pt"


def _identity(source: DataSource) -> dict[str, Any]:
    """What a cache file must say about itself to be used for this source."""
    return {"format": FORMAT_VERSION, "dataset": source.name, "n_examples": len(source.x), "shape": list(source.shape)}


def _load(path: Path, source: DataSource) -> tuple[Classifier, dict[str, Any]]:
    """A cached classifier, or an exception saying why the file cannot be used."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict):
        raise ValueError("not a checkpoint dict")
    for key, value in _identity(source).items():
        if ckpt.get(key) != value:
            raise ValueError(f"{key} is {ckpt.get(key)!r}, expected {value!r}")
    model = Classifier(source.shape)
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model, {"accuracy": float(ckpt["accuracy"]), "train_seconds": float(ckpt.get("train_seconds", 0.0))}


def _save(path: Path, model: Classifier, source: DataSource, accuracy: float, seconds: float) -> None:
    """Written atomically (see store.atomic_write_bytes): a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ckpt = {**_identity(source), "accuracy": accuracy, "train_seconds": seconds, "state_dict": model.state_dict()}
    buffer = io.BytesIO()
    torch.save(ckpt, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def get_classifier(source: DataSource, cache_dir: str | os.PathLike | None = None) -> tuple[Classifier, dict[str, Any]]:
    """The classifier for a dataset: from this process's memo, else the disk cache, else trained now and cached.

    A cache file that cannot be read or belongs to other data is retrained and replaced. The dict reports accuracy
    (held-out), source ("memory", "disk" or "trained"), path, and note (why a file was replaced or not written).
    Cache dir: cache_dir, else $GAN_CACHE_DIR, else ~/.cache/gan_explainer. The model is shared by every caller in
    the process: use it in eval mode and never train it.
    """
    _check_source(source)

    def train() -> tuple[Classifier, dict[str, Any]]:
        model, accuracy = train_classifier(source)
        return model, {"accuracy": accuracy}

    def save(model: Classifier, info: dict[str, Any]) -> None:
        _save(path, model, source, info["accuracy"], info["train_seconds"])

    path = cache_path(source, cache_dir).resolve()
    found = _CACHE.get(path, lambda p: _load(p, source), train, save,
                       extra={"dataset": source.name, "n_examples": len(source.x)})
    assert found is not None  # with a train function the cache always answers
    return found


def clear_memo() -> None:
    """Forget the classifiers held in this process (the disk cache stays)."""
    _CACHE.clear()


def _batched(clf: Classifier, images: Tensor, fn: str, batch: int) -> np.ndarray:
    images = torch.as_tensor(images, dtype=torch.float32)
    assert tuple(images.shape[1:]) == clf.shape, f"images {tuple(images.shape)} do not fit a classifier for {clf.shape}"
    with inference(clf), torch.no_grad():
        outs = [getattr(clf, fn)(images[i:i + batch]) for i in range(0, len(images), batch)]
    return torch.cat(outs).numpy() if outs else np.zeros((0, clf.n_features if fn == "features" else N_CLASSES))


def predict_proba(clf: Classifier, images: Tensor, batch: int = 1024) -> np.ndarray:
    """softmax(logits) per image, (N, 10), in eval mode without gradients."""
    logits = _batched(clf, images, "forward", batch)
    return torch.softmax(torch.from_numpy(logits), dim=1).numpy()


def features(clf: Classifier, images: Tensor, batch: int = 1024) -> np.ndarray:
    """Penultimate features per image, (N, F), in eval mode without gradients."""
    return _batched(clf, images, "features", batch)


def real_reference(source: DataSource, n: int, seed: int = 0) -> Tensor:
    """Up to n real images from the source, the same ones every call (a seeded draw without replacement)."""
    x, _ = _check_source(source)
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]
    return x[idx]


def evaluate_images(clf: Classifier, samples: Tensor, source: DataSource, real: Tensor | None = None) -> dict[str, Any]:
    """class_stats of the samples against the data's class distribution, plus fcd: the Fréchet distance between
    classifier features of the samples and of real images (by default up to N of the source's, drawn deterministically).

    samples: (N, C, H, W) in [0, 1], N ≥ 2. FCD is biased upwards for small N, so compare values at the same N.
    """
    samples = torch.as_tensor(samples, dtype=torch.float32)
    real = real_reference(source, len(samples)) if real is None else torch.as_tensor(real, dtype=torch.float32)
    stats = class_stats(predict_proba(clf, samples), source.class_distribution())
    stats["fcd"] = frechet_distance(features(clf, samples), features(clf, real))
    return stats
