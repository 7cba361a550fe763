"""A small variational autoencoder (Kingma & Welling 2014) for the VAE-vs-GAN lesson, trained once and cached on disk.

encoder q(z|x): image → MLP → (μ, log σ²); z = μ + σ·ε with ε ~ N(0, I) (the reparameterisation trick, so the gradient
reaches μ and σ); decoder p(x|z): z → MLP → one Bernoulli probability per pixel. The loss is the negative ELBO:
reconstruction (BCE summed over pixels) + KL(q(z|x) ‖ N(0, I)). A 2D latent by default, so the latent space can be drawn.
Like classifier.py: a memo per process, a disk cache keyed by the settings, atomic writes, retrain on an unusable file.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_core.data import DataSource
from gan_core.evaluation.cache import ModelCache
from gan_core.evaluation.classifier import default_cache_dir
from gan_core.runs.folder import atomic_write_bytes
from gan_core.train.models import inference

FORMAT_VERSION = 1  # bump when the architecture or the checkpoint layout changes: old cache files are then retrained
HIDDEN = 256
# 1,000 Adam updates of 256 images (~140 epochs) at lr 3e-3, measured on the 2-core machine with 1 torch thread while
# other jobs loaded it: 7.2 s to a loss of 24.2 nats per image; 2,000 updates of 128 reach 24.1 in 10.3 s. Per-update
# overhead dominates at this size, so fewer, larger batches are the cheaper way to the same loss.
# Overridable with GAN_VAE_STEPS so tests can train a tiny one.
DEFAULT_STEPS = 1000
BATCH_SIZE = 256
LR = 3e-3
HISTORY_EVERY = 10  # one history point per this many updates (the mean over them)

ProgressFn = Callable[[int, int, float], None]  # (step done, total steps, latest loss per image)

_CACHE: ModelCache[VAE] = ModelCache()  # two browsers pressing "Train" at once train it once


class VAE(nn.Module):
    """MLP encoder 64 → 256 → (μ, log σ²) and decoder z → 256 → 64 pixel logits (images flattened and reshaped)."""

    def __init__(self, shape: tuple[int, int, int] = (1, 8, 8), latent_dim: int = 2, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.shape, self.latent_dim = tuple(shape), latent_dim
        n = math.prod(shape)
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(n, hidden), nn.ReLU())  # state size: hidden
        self.mu = nn.Linear(hidden, latent_dim)  # state size: latent_dim
        self.logvar = nn.Linear(hidden, latent_dim)  # log σ², not σ: any real number is a valid output
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.ReLU(),  # state size: hidden
            nn.Linear(hidden, n),  # state size: pixels (logits; sigmoid gives the Bernoulli means)
        )

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.encoder(x)
        return self.mu(h), self.logvar(h)

    def decode_logits(self, z: Tensor) -> Tensor:
        return self.decoder(z).view(-1, *self.shape)

    def forward(self, x: Tensor, gen: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """(reconstruction logits, μ, log σ²) for a batch, with z drawn by the reparameterisation trick."""
        mu, logvar = self.encode(x)
        return self.decode_logits(reparameterize(mu, logvar, gen)), mu, logvar


def reparameterize(mu: Tensor, logvar: Tensor, gen: torch.Generator | None = None) -> Tensor:
    """z = μ + σ·ε, ε ~ N(0, I): the randomness sits in ε, so ∂z/∂μ = 1 and ∂z/∂σ = ε and backprop reaches the encoder."""
    eps = torch.randn(mu.shape, generator=gen, dtype=mu.dtype, device=mu.device)
    return mu + torch.exp(0.5 * logvar) * eps


def kl_divergence(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) per example, in closed form: −½ Σ_j (1 + log σ_j² − μ_j² − σ_j²). Shape (N,)."""
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1)


def reconstruction_bce(logits: Tensor, x: Tensor) -> Tensor:
    """−log p(x|z) per example for Bernoulli pixels: −Σ_i [x_i log p_i + (1 − x_i) log(1 − p_i)], p = sigmoid(logits).

    Grey pixels (0 < x < 1) are read as probabilities, as the usual MNIST VAE does. Shape (N,)."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


@dataclass(frozen=True)
class VaeLoss:
    """The negative ELBO and its two terms, each the mean over the batch of a per-image sum (nats per image)."""

    total: Tensor
    reconstruction: Tensor
    kl: Tensor


def vae_loss(logits: Tensor, x: Tensor, mu: Tensor, logvar: Tensor) -> VaeLoss:
    """L = E_x[ BCE(x, decoder(z)) + KL(q(z|x) ‖ N(0, I)) ]: reconstruct well, while keeping the codes near N(0, I)."""
    rec = reconstruction_bce(logits, x).mean()
    kl = kl_divergence(mu, logvar).mean()
    return VaeLoss(rec + kl, rec, kl)


def _seeded_init(model: nn.Module, gen: torch.Generator) -> None:
    """PyTorch's default Linear init, drawn from gen instead of the global RNG that parallel runs share."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=gen)
            bound = 1 / math.sqrt(m.weight.shape[1])  # 1 / sqrt(fan_in)
            nn.init.uniform_(m.bias, -bound, bound, generator=gen)


def default_steps() -> int:
    """DEFAULT_STEPS, or $GAN_VAE_STEPS (tests and slow machines)."""
    value = os.environ.get("GAN_VAE_STEPS", "").strip()
    return int(value) if value else DEFAULT_STEPS


def _images(data: DataSource | Tensor) -> Tensor:
    x = data.x if isinstance(data, DataSource) else data
    if x is None or x.dim() != 4:
        raise ValueError("a VAE needs images shaped (N, C, H, W) in [0, 1]")
    return x.float()


def train_vae(data: DataSource | Tensor, latent_dim: int = 2, steps: int | None = None, seed: int = 0,
              progress: ProgressFn | None = None) -> tuple[VAE, dict[str, np.ndarray]]:
    """Train a VAE with Adam on shuffled batches of the images; the same seed gives the same model.

    History: arrays `step`, `loss`, `reconstruction`, `kl`, one point per HISTORY_EVERY updates (their mean, nats per
    image). `progress(step, steps, loss)` is called at each history point and at the end.
    """
    x = _images(data)
    steps = default_steps() if steps is None else steps
    assert steps >= 1 and latent_dim >= 1
    before = torch.get_num_threads()
    # One thread: a model this small gains nothing from two, and two threads spin badly when other work shares the
    # cores (measured in the server while other jobs ran: 300 updates took 26 s on 2 threads, 1.9 s on 1).
    torch.set_num_threads(1)
    try:
        return _train(x, latent_dim, steps, seed, progress)
    finally:
        torch.set_num_threads(before)


def _train(x: Tensor, latent_dim: int, steps: int, seed: int, progress: ProgressFn | None) -> tuple[VAE, dict[str, np.ndarray]]:
    gen = torch.Generator().manual_seed(seed)
    model = VAE(tuple(x.shape[1:]), latent_dim)
    _seeded_init(model, gen)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    batch = min(BATCH_SIZE, len(x))
    rows: list[tuple[int, float, float, float]] = []
    acc = np.zeros(3)
    count = 0
    perm, pos = torch.randperm(len(x), generator=gen), 0
    model.train()
    for step in range(1, steps + 1):
        if pos + batch > len(perm):  # next epoch
            perm, pos = torch.randperm(len(x), generator=gen), 0
        xb = x[perm[pos:pos + batch]]
        pos += batch
        # (1) encode, sample z = μ + σ·ε, decode; (2) minimise reconstruction + KL
        logits, mu, logvar = model(xb, gen)
        loss = vae_loss(logits, xb, mu, logvar)
        opt.zero_grad(set_to_none=True)
        loss.total.backward()
        opt.step()
        acc += (loss.total.item(), loss.reconstruction.item(), loss.kl.item())
        count += 1
        if step % HISTORY_EVERY == 0 or step == steps:
            mean = acc / count
            rows.append((step, *mean))
            acc[:], count = 0.0, 0
            if progress is not None:
                progress(step, steps, float(mean[0]))
    model.eval()
    cols = np.array(rows, dtype=np.float64).T
    history = {"step": cols[0].astype(np.int64), "loss": cols[1], "reconstruction": cols[2], "kl": cols[3]}
    return model, history


# -- using a trained VAE (eval mode, no gradients) -----------------------------------------------------------------------
def encode(model: VAE, images: Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(μ, log σ²) of q(z|x) for each image: (N, latent_dim) each."""
    with inference(model), torch.no_grad():
        mu, logvar = model.encode(torch.as_tensor(images, dtype=torch.float32))
    return mu.numpy(), logvar.numpy()


def decode(model: VAE, z: Tensor | np.ndarray) -> np.ndarray:
    """The decoder's Bernoulli means sigmoid(logits) for each code: images (N, C, H, W) in [0, 1].

    The mean, not a draw of 0/1 pixels: the average of every image the code could stand for, hence the blur."""
    with inference(model), torch.no_grad():
        return torch.sigmoid(model.decode_logits(torch.as_tensor(z, dtype=torch.float32))).numpy()


def reconstruct(model: VAE, images: Tensor | np.ndarray) -> np.ndarray:
    """decode(μ(x)): each image through the bottleneck and back (no sampling noise)."""
    mu, _ = encode(model, images)
    return decode(model, mu)


def sample(model: VAE, n: int, seed: int = 0) -> np.ndarray:
    """n new images: z ~ N(0, I) (the prior the KL term pulled the codes towards), decoded."""
    z = torch.randn(n, model.latent_dim, generator=torch.Generator().manual_seed(seed))
    return decode(model, z)


def sharpness(images: np.ndarray) -> float:
    """Mean |2x − 1| over pixels: 1 when every pixel is pure black or white, 0 when all are mid-grey.

    A blurred image has more in-between pixels, so its value drops. Images in [0, 1], any shape."""
    x = np.asarray(images, dtype=np.float64)
    if x.size == 0:
        raise ValueError("no pixels")
    return float(np.mean(np.abs(2 * np.clip(x, 0, 1) - 1)))


# -- cache -----------------------------------------------------------------------------------------------------------------
def _identity(x: Tensor, name: str, latent_dim: int, steps: int, seed: int) -> dict[str, Any]:
    """What a cache file must say about itself to be used for these settings."""
    return {"format": FORMAT_VERSION, "dataset": name, "n_examples": len(x), "shape": list(x.shape[1:]),
            "latent_dim": latent_dim, "steps": steps, "seed": seed}


def cache_path(name: str, n_examples: int, latent_dim: int, steps: int, seed: int,
               cache_dir: str | os.PathLike | None = None) -> Path:
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return root / f"vae-{name}-n{n_examples}-z{latent_dim}-s{steps}-seed{seed}-v{FORMAT_VERSION}.pt"


def _load(path: Path, identity: dict[str, Any]) -> tuple[VAE, dict[str, Any]]:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict):
        raise ValueError("not a checkpoint dict")
    for key, value in identity.items():
        if ckpt.get(key) != value:
            raise ValueError(f"{key} is {ckpt.get(key)!r}, expected {value!r}")
    model = VAE(tuple(identity["shape"]), identity["latent_dim"])
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    history = {k: v.numpy() for k, v in ckpt["history"].items()}
    return model, {"history": history, "train_seconds": float(ckpt.get("train_seconds", 0.0))}


def _save(path: Path, model: VAE, identity: dict[str, Any], history: dict[str, np.ndarray], seconds: float) -> None:
    """Written atomically (see store.atomic_write_bytes): a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ckpt = {**identity, "train_seconds": seconds, "state_dict": model.state_dict(),
            "history": {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in history.items()}}
    buffer = io.BytesIO()
    torch.save(ckpt, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _path_and_identity(source: DataSource, latent_dim: int, steps: int | None, seed: int,
                       cache_dir: str | os.PathLike | None) -> tuple[Path, dict[str, Any]]:
    x = _images(source)
    steps = default_steps() if steps is None else steps
    identity = _identity(x, source.name, latent_dim, steps, seed)
    return cache_path(source.name, len(x), latent_dim, steps, seed, cache_dir).resolve(), identity


def cached_vae(source: DataSource, latent_dim: int = 2, steps: int | None = None, seed: int = 0,
               cache_dir: str | os.PathLike | None = None) -> tuple[VAE, dict[str, Any]] | None:
    """The VAE for these settings if this process or the disk cache already has it; None otherwise (never trains)."""
    return _get(source, latent_dim, steps, seed, cache_dir, None, train=False)


def get_vae(source: DataSource, latent_dim: int = 2, steps: int | None = None, seed: int = 0,
            cache_dir: str | os.PathLike | None = None, progress: ProgressFn | None = None) -> tuple[VAE, dict[str, Any]]:
    """The VAE for these settings: from this process's memo, else the disk cache, else trained now and cached.

    The dict holds history, train_seconds, source ("memory", "disk" or "trained"), path, note, and the settings.
    Cache dir: cache_dir, else $GAN_CACHE_DIR, else ~/.cache/gan_explainer. The model is shared: never train it further.
    """
    found = _get(source, latent_dim, steps, seed, cache_dir, progress, train=True)
    assert found is not None  # allowed to train, the cache always answers
    return found


def _get(source: DataSource, latent_dim: int, steps: int | None, seed: int, cache_dir: str | os.PathLike | None,
         progress: ProgressFn | None, train: bool) -> tuple[VAE, dict[str, Any]] | None:
    path, identity = _path_and_identity(source, latent_dim, steps, seed, cache_dir)

    def fit() -> tuple[VAE, dict[str, Any]]:
        model, history = train_vae(source, latent_dim, identity["steps"], seed, progress)
        return model, {"history": history}

    def save(model: VAE, info: dict[str, Any]) -> None:
        _save(path, model, identity, info["history"], info["train_seconds"])

    return _CACHE.get(path, lambda p: _load(p, identity), fit if train else None, save, extra=identity)


def clear_memo() -> None:
    """Forget the VAEs held in this process (the disk cache stays)."""
    _CACHE.clear()
