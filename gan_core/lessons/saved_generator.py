"""A finished run's generator, loaded from its checkpoint for inference, and the controllable-generation lessons on it.

`load_generator(run_dir)` builds the run's Trainer from config.json and restores checkpoint.pt; it is memoised per run
folder and checkpoint file, so every viewer of a run shares one copy and a newer checkpoint is picked up. The methods
wrap gan_core.lessons.control with the run's own noise size, output range and the dataset's classifier.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gan_core.config import TrainConfig
from gan_core.data import to_data_range
from gan_core.evaluation.classifier import Classifier, get_classifier, predict_proba
from gan_core.lessons.control import AscentResult, class_ascent, interpolate_labels, interpolate_z, slerp
from gan_core.runs.folder import RunStore
from gan_core.train.models import inference
from gan_core.train.trainer import Trainer

_MEMO: OrderedDict[tuple, RunGenerator] = OrderedDict()
_MEMO_SIZE = 8  # a few runs' models: each is small, and a classroom looks at one or two
_MEMO_LOCK = threading.Lock()


class ZPath(str, Enum):
    """How to walk from one noise vector to another."""

    LINEAR = "linear"
    SLERP = "slerp"


def suits(config: TrainConfig, conditional: bool) -> bool:
    """A run whose generator this lesson can use: images with labels (a classifier exists), conditional or not."""
    return config.dataset.has_labels and config.conditional == conditional


def noise(n: int, z_dim: int, seed: int) -> Tensor:
    """n standard-normal noise vectors, the same for the same seed."""
    return torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))


@dataclass(frozen=True)
class AscentSummary:
    """How an ascent moved the classifier's view of each sample from step 0 to the last step."""

    start: np.ndarray  # (n_classes,) mean probability per class at step 0
    end: np.ndarray  # (n_classes,) at the last step
    raised: float  # fraction of samples whose target probability rose
    reached: float  # fraction of samples the classifier calls the target at the last step
    started_as_target: float  # fraction it called the target at step 0

    @property
    def change(self) -> np.ndarray:
        return self.end - self.start


def summarize(result: AscentResult) -> AscentSummary:
    first, last = result.probs[0], result.probs[-1]
    t = result.target
    return AscentSummary(start=first.mean(0), end=last.mean(0), raised=float((last[:, t] > first[:, t]).mean()),
                         reached=float((last.argmax(1) == t).mean()), started_as_target=float((first.argmax(1) == t).mean()))


class RunGenerator:
    """A run's G at one checkpoint, in inference mode, with its dataset's classifier. Calls are serialised by a lock:
    class_ascent flips the models' modes while it works, and several browsers may share this object."""

    def __init__(self, trainer: Trainer, classifier: Classifier, run_dir: Path, key: tuple = ()) -> None:
        self.trainer, self.classifier, self.run_dir = trainer, classifier, run_dir
        self.key = key  # (folder, checkpoint mtime, size): a cache key for anything computed from this generator
        self.config = trainer.config
        self.step = trainer.step_count
        self.n_classes = trainer.data.num_classes
        self._lock = threading.Lock()

    @property
    def conditional(self) -> bool:
        return self.config.conditional

    def noise(self, n: int, seed: int) -> Tensor:
        return noise(n, self.config.z_dim, seed)

    def _to_unit(self, x: Tensor) -> Tensor:
        return to_data_range(x, self.config)

    def images(self, z: Tensor, labels: Tensor | None = None) -> np.ndarray:
        """G(z) (with soft or hard labels for a conditional G: (N, n_classes) rows, or class indices) as [0, 1] images."""
        if labels is not None and labels.ndim == 1:
            labels = F.one_hot(labels.long(), self.n_classes).float()
        with self._lock, inference(self.trainer.G), torch.no_grad():
            out = self.trainer.G(z, labels) if self.conditional else self.trainer.G(z)
        return self._to_unit(out).float().numpy()

    def probs(self, images: np.ndarray) -> np.ndarray:
        """The classifier's probability per class of each image, (N, n_classes)."""
        return predict_proba(self.classifier, torch.from_numpy(images))

    def ascent(self, target: int, steps: int, step_size: float, penalty: float, n: int, seed: int,
               label: int | None = None) -> AscentResult:
        """class_ascent on n noise vectors drawn from `seed` (a conditional G also gets the one-hot `label`)."""
        onehot = None
        if self.conditional:
            onehot = F.one_hot(torch.full((n,), 0 if label is None else label), self.n_classes).float()
        with self._lock:
            return class_ascent(self.trainer.G, self.classifier, self.noise(n, seed), target, steps, step_size, penalty,
                                onehot=onehot, to_unit=self._to_unit)

    def z_path(self, seed_a: int, seed_b: int, ts: np.ndarray, how: ZPath, label: int | None = None) -> tuple[Tensor, np.ndarray]:
        """The noise vectors along a path from z(seed_a) to z(seed_b) at each t, and G's image of each."""
        z_a, z_b = self.noise(1, seed_a)[0], self.noise(1, seed_b)[0]
        t = torch.as_tensor(np.asarray(ts, dtype=np.float32))
        zs = (slerp if how is ZPath.SLERP else interpolate_z)(z_a, z_b, t)
        labels = torch.full((len(zs),), label) if self.conditional else None
        return zs, self.images(zs, labels)

    def label_path(self, class_a: int, class_b: int, ts: np.ndarray, seed: int) -> tuple[Tensor, np.ndarray]:
        """A conditional G's images for one noise vector with the soft label (1 − t) e_a + t e_b at each t."""
        assert self.conditional, "label paths need a conditional run"
        labels = interpolate_labels(class_a, class_b, torch.as_tensor(np.asarray(ts, dtype=np.float32)), self.n_classes)
        z = self.noise(1, seed).expand(len(labels), -1)
        return labels, self.images(z, labels)


def _checkpoint_key(run_dir: Path) -> tuple:
    stat = (run_dir / "checkpoint.pt").stat()  # FileNotFoundError: the run has no checkpoint yet
    return (str(run_dir.resolve()), stat.st_mtime_ns, stat.st_size)


def load_generator(run_dir: str | Path, data_dir: str | None = None) -> RunGenerator:
    """The run's generator at its checkpoint (memoised per folder and checkpoint file), with its dataset's classifier."""
    run_dir = Path(run_dir)
    key = _checkpoint_key(run_dir)
    with _MEMO_LOCK:
        if key in _MEMO:
            _MEMO.move_to_end(key)
            return _MEMO[key]
    store = RunStore(run_dir)
    trainer = Trainer(store.read_config(), device="cpu", data_dir=data_dir)
    trainer.load_state_dict(store.load_checkpoint(map_location="cpu"))
    trainer.G.eval()
    classifier, _ = get_classifier(trainer.data)
    loaded = RunGenerator(trainer, classifier, run_dir, key)
    with _MEMO_LOCK:
        _MEMO[key] = loaded
        while len(_MEMO) > _MEMO_SIZE:
            _MEMO.popitem(last=False)
    return loaded


def clear_memo() -> None:
    with _MEMO_LOCK:
        _MEMO.clear()
