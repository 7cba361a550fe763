"""The training loop, one step at a time: `Trainer(config).step()` does the D updates then one G update.

Start reading at `Trainer.step`: the two objectives as comments, each update written out (forward, backward, optimizer
step), as in pytorch/examples' dcgan/main.py. The losses themselves are `d_forward` and `g_forward` (losses.py states
their equations).

Each step returns a StepRecord; every `probe_every` steps a ProbeRecord; every `sample_every` steps a SampleRecord of
samples from fixed noise (and, for 2D data, D's view of the plane). All randomness after model init flows through one
torch.Generator that is saved in checkpoints, so a resumed run takes exactly the steps an uninterrupted one would.

On a CUDA GPU the same step is replayed as a CUDA graph where it can be: every run's loop (runs/train_run.py) steps
through `cuda_graphs.accelerate(trainer)`, which wraps a Trainer from outside, through the public attributes and methods
listed on the class; this module does not import it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gan_core.config import ConfigError, TrainConfig
from gan_core.data import DataSource, load_dataset, to_data_range, to_model_range
from gan_core.train.losses import WGANGPLoss, make_loss
from gan_core.train.models import build_models, inference
from gan_core.train.probes import Probe, ProbeRecord, grad_norms
from gan_core.train.records import D_KEYS, CheckpointError, Diverged, SampleRecord, StepRecord, StepResult

CHECKPOINT_FORMAT = 1
# Fields that may change between a checkpoint and its resumption: how long to train and what to record.
RESUMABLE_CHANGES = frozenset({"steps", "probe_every", "sample_every", "checkpoint_every", "n_samples"})
MANIFOLD_RES, MANIFOLD_SPAN = 17, 2.0  # G's manifold: a 17 × 17 grid of noise (289 points, one G forward) over ±2
_INIT_LOCK = threading.Lock()  # model init reads torch's global RNG: runs started in parallel threads must not interleave


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda"):
        raise ConfigError("device", f"{device!r} is not one of auto, cpu, cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", "cuda was asked for but no CUDA GPU is available; use auto or cpu")
    return torch.device(device)


def adam(params: Iterable[Tensor], lr: float, betas: tuple[float, float]) -> torch.optim.Adam:
    """Adam with its fused kernel: one pass over all parameters instead of a dozen small ops per tensor. The same
    update rule; on these small networks it makes a whole training step about a fifth faster on a CPU."""
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)


class Trainer:
    """A GAN, its optimizers and its data, trained one `step()` at a time.

    Public, each for the Trainer's own step and for the runs or the CUDA-graph path that drives the same state from
    outside (cuda_graphs.py, which every run's loop steps through):
    - config, device, data; G, D, opt_g, opt_d, loss; gen, the generator every random draw after init comes from;
    - batches, batch_gen: where batches come from and what draws them (`data` and `gen`; the CUDA-graph path points
      them at copies on the GPU);
    - step_count, elapsed_s, last_d (the values the latest D update logged, in D_KEYS order: a step's record shows
      them): whatever runs a step updates them;
    - d_forward, g_forward (one D or G loss, reading nothing off the device), set_learning_rates, snapshot.
    """

    def __init__(self, config: TrainConfig, device: str = "cpu", data: DataSource | None = None,
                 data_dir: str | None = None) -> None:
        self.config = config
        self.device = resolve_device(device)
        self.data = data if data is not None else load_dataset(config, data_dir)
        self.n_classes = self.data.num_classes if config.conditional else 0
        with _INIT_LOCK:
            torch.manual_seed(config.seed)
            g, d = build_models(config, self.data.shape, self.data.num_classes)
        self.G, self.D = g.to(self.device), d.to(self.device)
        # without batch norm in D a row's score does not depend on the rest of its batch, so D can judge the real and
        # the fake batch in one forward: the same arithmetic in half the ops (step-profile: ops, not FLOPs, bound a step)
        self.d_joint = not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in self.D.modules())
        betas = (config.beta1, config.beta2)
        self.opt_g = adam(self.G.parameters(), config.lr_g, betas)
        self.opt_d = adam(self.D.parameters(), config.lr_d, betas)
        self.loss = make_loss(config)
        self.gen = torch.Generator().manual_seed(config.seed)
        self.batches, self.batch_gen = self.data, self.gen
        self.step_count = 0
        self.elapsed_s = 0.0
        self.probe = Probe({"G": self.G, "D": self.D})
        self.last_d: dict[str, float] = {}
        fixed = torch.Generator().manual_seed(config.seed + 7919)  # a different stream from training's
        self._fixed_z = torch.randn(config.n_samples, config.z_dim, generator=fixed)  # snapshots: the same noise each time
        self._fixed_labels = torch.arange(config.n_samples) % self.n_classes if self.n_classes else None
        self._pending: Diverged | None = None  # a divergence steps(n) found after the steps it returned

    # -- one training step ---------------------------------------------------------------------------------------------
    def step(self, d_updates: int | None = None) -> StepResult:
        """One training step: `d_updates` D updates (default config.d_steps; 0: a G update alone), then one G update.
        A loss that is not a finite number raises Diverged before its update: the models stay the last good ones."""
        self._raise_pending()
        start = time.perf_counter()
        cfg = self.config
        number = self.step_count + 1
        n_d = cfg.d_steps if d_updates is None else d_updates
        # a probe step records, for the lessons, the forward passes and gradients of its last D update and its G update
        probe = self.probe if number % cfg.probe_every == 0 else None
        if probe is not None:
            probe.reset()
        grads: dict[str, dict[str, float]] = {}
        self.set_learning_rates(number)

        # (1) Update D: maximize log D(x) + log(1 − D(G(z)))  (with the configured loss: its D or critic objective)
        for i in range(n_d):
            recorded = probe if i == n_d - 1 else None
            d_loss, d_values = self.d_forward(recorded)
            if not torch.isfinite(d_loss):
                raise Diverged(number, "D loss")
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            if recorded is not None:
                grads["D"] = grad_norms(self.D)
            self.opt_d.step()
            self.last_d = dict(zip(D_KEYS, d_values.tolist(), strict=True))  # one device read, not six float() syncs
        if not self.last_d:
            self.d_update()  # a G-only first step: its record needs D's view of one batch

        # (2) Update G: maximize log D(G(z))  (the non-saturating objective; or the configured one)
        g_loss = self.g_forward(probe)
        if not torch.isfinite(g_loss):
            raise Diverged(number, "G loss")
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        if probe is not None:
            grads["G"] = grad_norms(self.G)
        self.opt_g.step()

        self.step_count = number
        probed = None
        if probe is not None:
            probed = ProbeRecord(number, grads, probe.layer_stats(), probe.batchnorm_stats())
            probe.reset()  # drop the captured tensors now rather than holding them until the next probe
        samples = self.snapshot() if number % cfg.sample_every == 0 or number == cfg.steps else None
        self.elapsed_s += time.perf_counter() - start
        record = StepRecord(step=number, time_s=round(self.elapsed_s, 4), g_loss=float(g_loss.detach()), **self.last_d)
        return StepResult(record, probed, samples)

    def steps(self, n: int) -> list[StepResult]:
        """n training steps, their results in order. If a loss diverges at step k, the results before k are returned
        and the next call raises Diverged (at once when k is the first); the models are the last good ones either way."""
        self._raise_pending()
        results: list[StepResult] = []
        for _ in range(n):
            try:
                results.append(self.step())
            except Diverged as error:
                if not results:
                    raise
                self._pending = error
                break
        return results

    def _raise_pending(self) -> None:
        error, self._pending = self._pending, None
        if error is not None:
            raise error

    def d_update(self) -> dict[str, float]:
        """Step (1) alone, one D update counting no step: the dashboard's slow-motion D step. Returns what it logs."""
        d_loss, d_values = self.d_forward()
        if not torch.isfinite(d_loss):
            raise Diverged(self.step_count + 1, "D loss")
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        self.last_d = dict(zip(D_KEYS, d_values.tolist(), strict=True))
        return dict(self.last_d)

    # -- the two losses (shared with the CUDA-graph path, which captures exactly this code) ----------------------------
    def _onehot(self, labels: Tensor | None) -> Tensor | None:
        if not self.n_classes or labels is None:
            return None
        return F.one_hot(labels, self.n_classes).float().to(self.device)

    def _noise(self, n: int) -> Tensor:
        gen = self.batch_gen
        return torch.randn(n, self.config.z_dim, generator=gen, device=gen.device).to(self.device)

    def d_forward(self, probe: Probe | None = None) -> tuple[Tensor, Tensor]:
        """D's loss on a fresh batch, and the values a D update logs (D_KEYS order) as one tensor. Reads nothing off
        the device, so a CUDA graph can capture it as it is; `probe` records the forward passes."""
        cfg = self.config
        real, labels = self.batches.sample(cfg.batch_size, self.batch_gen)
        real = to_model_range(real, cfg).to(self.device)
        onehot = self._onehot(labels)
        with torch.no_grad():
            fake = self.G(self._noise(cfg.batch_size), onehot)
        with probe.capture("D") if probe is not None else nullcontext():
            if self.d_joint:
                both = None if onehot is None else torch.cat([onehot, onehot])
                real_scores, fake_scores = self.D(torch.cat([real, fake]), both).split(len(real))
            else:  # batch norm: each batch normalised by its own statistics, as the course's labs train D
                real_scores = self.D(real, onehot)
                fake_scores = self.D(fake, onehot)
        terms = self.loss.d_loss(real_scores, fake_scores)
        if isinstance(self.loss, WGANGPLoss):
            terms["gp"] = self.loss.gradient_penalty(lambda x: self.D(x, onehot), real, fake, self.batch_gen)
            terms["loss"] = terms["loss"] + terms["gp"]
        loss, prob = terms["loss"], self.loss.probability
        values = torch.stack([
            loss.detach(), prob(real_scores.detach()).mean(), prob(fake_scores.detach()).mean(),
            terms["d_loss_real"].detach(), terms["d_loss_fake"].detach(),
            terms["gp"].detach() if "gp" in terms else loss.new_full((), math.nan),
        ])
        return loss, values

    def g_forward(self, probe: Probe | None = None) -> Tensor:
        """G's loss J_G on fresh noise (and labels); like d_forward, it reads nothing off the device."""
        cfg, gen = self.config, self.batch_gen
        labels = (torch.randint(self.n_classes, (cfg.batch_size,), generator=gen, device=gen.device)
                  if self.n_classes else None)
        onehot = self._onehot(labels)
        with probe.capture("G") if probe is not None else nullcontext():
            fake = self.G(self._noise(cfg.batch_size), onehot)
        return self.loss.g_loss(self.D(fake, onehot))["loss"]

    def set_learning_rates(self, step: int) -> None:
        """Linear decay from lr to lr·lr_final over the run: late small steps let G settle onto sharp modes."""
        cfg = self.config
        if cfg.lr_final == 1.0:
            return
        scale = 1.0 - (1.0 - cfg.lr_final) * min(1.0, (step - 1) / max(1, cfg.steps - 1))
        for opt, lr in ((self.opt_g, cfg.lr_g), (self.opt_d, cfg.lr_d)):
            for group in opt.param_groups:
                group["lr"] = lr * scale

    # -- generation ---------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """G(z) in data space, with G in inference mode (batch norm uses its running statistics)."""
        with inference(self.G):
            out = self.G(z.to(self.device), self._onehot(labels))
        return to_data_range(out, self.config).float().cpu()

    def sample(self, n: int, seed: int | None = None, label: int | None = None) -> np.ndarray:
        """n samples in data space from noise seeded by `seed`; `label` asks a conditional G for one class."""
        if label is not None and not self.n_classes:
            raise ValueError("label: this run is not conditional, so it cannot be asked for a class")
        if label is not None and not 0 <= label < self.n_classes:
            raise ValueError(f"label: {label} is outside 0 to {self.n_classes - 1}")
        gen = torch.Generator().manual_seed(self.config.seed + 1 if seed is None else seed)
        chunks = []
        for start in range(0, n, 4096):
            m = min(4096, n - start)
            z = torch.randn(m, self.config.z_dim, generator=gen)
            labels = None
            if self.n_classes:
                labels = (torch.full((m,), label) if label is not None
                          else torch.randint(self.n_classes, (m,), generator=gen))
            chunks.append(self.generate(z, labels))
        return torch.cat(chunks).numpy() if chunks else np.zeros((0, *self.data.shape), np.float32)

    def snapshot(self) -> SampleRecord:
        """Samples from the fixed noise; for 2D data also D's output over the plane and G's push on each sample."""
        samples = self.generate(self._fixed_z, self._fixed_labels)
        labels = self._fixed_labels.numpy() if self._fixed_labels is not None else None
        if self.data.shape != (2,):
            return SampleRecord(self.step_count, samples.numpy(), labels)
        field, extent = self.decision_field()
        return SampleRecord(self.step_count, samples.numpy(), labels, field, extent, self._g_push(samples),
                            self.manifold())

    def manifold(self, res: int = MANIFOLD_RES, span: float = MANIFOLD_SPAN) -> np.ndarray:
        """G's manifold, as GAN Lab draws it: G over a res × res grid of noise, (res, res, 2) in data space.

        The grid lies on the plane of z's first two coordinates, each from −span to span, the others 0 (their mean):
        with z_dim = 2 (the 2D presets) that is the whole noise space, and ±2 holds 91% of N(0, I)'s mass. Drawn as a
        mesh it shows how G stretches and folds the noise onto the plane. [i, j] is G(z) with z[0] the j-th and z[1]
        the i-th grid value, so rows run along z[0] as the decision field's run along x.
        """
        ticks = torch.linspace(-span, span, res)
        z1, z0 = torch.meshgrid(ticks, ticks, indexing="ij")
        z = torch.zeros(res * res, self.config.z_dim)
        z[:, 0], z[:, 1] = z0.flatten(), z1.flatten()
        return self.generate(z).numpy().reshape(res, res, 2)

    def _plane_extent(self) -> tuple[float, float, float, float]:
        lo, hi = self.data.value_range
        pad = 0.25 * (hi - lo) + 1e-3
        return (lo - pad, hi + pad, lo - pad, hi + pad)

    @torch.no_grad()
    def decision_field(self, res: int = 48) -> tuple[np.ndarray, tuple[float, float, float, float]]:
        """D's output (probability for BCE, raw score otherwise) on a res × res grid over the data's extent."""
        x0, x1, y0, y1 = self._plane_extent()
        xs, ys = torch.linspace(x0, x1, res), torch.linspace(y0, y1, res)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        points = torch.stack([gx.flatten(), gy.flatten()], dim=1).to(self.device)
        with inference(self.D):
            values = self.loss.probability(self.D(points)).reshape(res, res)
        return values.float().cpu().numpy(), (x0, x1, y0, y1)

    def _g_push(self, samples: Tensor) -> np.ndarray:
        """−∂J_G/∂x for each fake point: the direction the generator's loss moves it (GAN Lab's gradient arrows)."""
        x = samples.to(self.device).requires_grad_(True)
        with inference(self.D), torch.enable_grad():
            loss = self.loss.g_loss(self.D(x))["loss"] * len(x)  # per-sample gradients, not divided by n
            (grad,) = torch.autograd.grad(loss, x)
        return (-grad).float().cpu().numpy()

    # -- checkpoints --------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """A plain dict (tensors, numbers, strings) that torch.load(weights_only=True) can read back."""
        return {
            "format": CHECKPOINT_FORMAT,
            "config": self.config.to_dict(),
            "step": self.step_count,
            "elapsed_s": self.elapsed_s,
            "generator": self.G.state_dict(),
            "discriminator": self.D.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "rng": self.gen.get_state(),
            "last_d": dict(self.last_d),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a checkpoint; a different model or training configuration is refused with CheckpointError."""
        try:
            if state.get("format") != CHECKPOINT_FORMAT:
                raise CheckpointError(f"checkpoint format {state.get('format')!r} is not {CHECKPOINT_FORMAT}")
            saved = TrainConfig.from_dict(state["config"]).to_dict()
            ours = self.config.to_dict()
            diff = sorted(k for k in ours if k not in RESUMABLE_CHANGES and saved[k] != ours[k])
            if diff:
                raise CheckpointError(
                    f"checkpoint was trained with different settings ({', '.join(f'{k}={saved[k]}' for k in diff)})")
            self.G.load_state_dict(state["generator"])
            self.D.load_state_dict(state["discriminator"])
            self.opt_g.load_state_dict(state["opt_g"])
            self.opt_d.load_state_dict(state["opt_d"])
            self.gen.set_state(state["rng"].cpu())  # a checkpoint loaded with map_location="cuda" has it on the GPU
            self.step_count = int(state["step"])
            self.elapsed_s = float(state["elapsed_s"])
            self.last_d = {k: float(v) for k, v in state["last_d"].items()}
            self._pending = None
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise CheckpointError(f"checkpoint does not match this model: {str(err).splitlines()[0]}") from None

    @property
    def finished(self) -> bool:
        return self.step_count >= self.config.steps

