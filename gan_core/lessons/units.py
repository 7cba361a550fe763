"""The Activations lesson's engine: why an activation must be non-linear, and what a unit "counted dead" passes back.

- compose_linear: two linear layers in a row are one linear layer, W₂(W₁x + b₁) + b₂ = (W₂W₁)x + (W₂b₁ + b₂), so
  without a non-linear g between them, depth adds nothing a single layer could not do.
- unit_gradients / run_unit_gradients: for each ReLU-like hidden layer of a trained D, the units the probes count dead
  (pre-activation ≤ 0 for every example of a batch) and the gradient of D's loss that reaches each unit's incoming
  weights. Backprop multiplies by g′(z): 0 for a ReLU on that side, the slope a for a leaky ReLU, so a ReLU unit counted
  dead gets exactly 0 and cannot come back, while a leaky one still learns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from gan_core.config import Activation
from gan_core.data import to_model_range
from gan_core.runs.folder import RunStore
from gan_core.train.models import inference
from gan_core.train.probes import block_label
from gan_core.train.trainer import Trainer

_DEAD_KINDS: dict[type, Activation] = {nn.ReLU: Activation.RELU, nn.LeakyReLU: Activation.LEAKY_RELU}


def compose_linear(w1: np.ndarray, b1: np.ndarray, w2: np.ndarray,
                   b2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(W, b) of the one linear layer equal to x ↦ W₂(W₁x + b₁) + b₂: W = W₂W₁, b = W₂b₁ + b₂."""
    w1, b1, w2, b2 = (np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in (w1, b1, w2, b2))
    if w1.ndim != 2 or w2.ndim != 2 or b1.shape != (w1.shape[0],) or b2.shape != (w2.shape[0],) \
            or w2.shape[1] != w1.shape[0]:
        raise ValueError(f"layers do not chain: W₁ {w1.shape}, b₁ {b1.shape}, W₂ {w2.shape}, b₂ {b2.shape} "
                         "(allowed: W₁ (m, n), b₁ (m,), W₂ (k, m), b₂ (k,))")
    return w2 @ w1, w2 @ b1 + b2


@dataclass(frozen=True)
class UnitGradients:
    """One ReLU-like hidden layer of D: per unit, whether it is counted dead and the gradient reaching its weights."""

    layer: str  # "block 1", as the probes name it
    kind: Activation
    dead: np.ndarray  # (units,) bool: the pre-activation was ≤ 0 for every example of the batch
    grad: np.ndarray  # (units,) ‖∂J_D/∂(w_u, b_u)‖₂: the gradient on the unit's incoming weights and bias

    def mean_grad(self, dead: bool) -> float:
        """The mean gradient over the units counted dead (or alive); NaN when there are none."""
        sel = self.dead == dead
        return float(self.grad[sel].mean()) if sel.any() else float("nan")


def unit_gradients(d: nn.Module, loss: Callable[[Tensor, Tensor], Tensor], real: Tensor, fake: Tensor,
                   onehot: Tensor | None = None) -> list[UnitGradients]:
    """Forward `real` and `fake` through D (in eval mode), take `loss(real_scores, fake_scores)`, and for each hidden
    ReLU-like activation `blocks.i.act` report its units as counted dead or not and the gradient on `blocks.i.layer`.

    torch.autograd.grad, not .backward: no .grad is left on D's parameters, so a shared model stays as it was.
    """
    acts = [(name.rsplit(".", 1)[0], m) for name, m in d.named_modules()
            if name.startswith("blocks.") and name.endswith(".act") and type(m) in _DEAD_KINDS]
    pre: dict[str, list[Tensor]] = {}
    handles = [m.register_forward_hook(lambda _m, inp, _out, block=block: pre.setdefault(block, []).append(inp[0]))
               for block, m in acts]
    try:
        with inference(d):
            value = loss(d(real, onehot), d(fake, onehot))
    finally:
        for h in handles:
            h.remove()
    layers = [d.get_submodule(f"{block}.layer") for block, _ in acts]
    params = [p for layer in layers for p in (layer.weight, layer.bias) if p is not None]
    grads = dict(zip(map(id, params), torch.autograd.grad(value, params), strict=True))
    out = []
    for (block, module), layer in zip(acts, layers, strict=True):
        z = torch.cat(pre[block]).detach()
        dims = (0, *range(2, z.dim()))  # samples (and positions of a feature map), not units
        per_unit = grads[id(layer.weight)].flatten(1).square().sum(1)
        if layer.bias is not None:
            per_unit = per_unit + grads[id(layer.bias)].square()
        out.append(UnitGradients(block_label(block), _DEAD_KINDS[type(module)],
                                 dead=(z.amax(dim=dims) <= 0).numpy(), grad=per_unit.sqrt().numpy()))
    return out


def run_unit_gradients(run_dir: str | Path, n: int = 256, seed: int = 0) -> list[UnitGradients]:
    """unit_gradients of a run's D at its checkpoint, on n real examples and n of G's fakes (D's own loss, without a
    gradient penalty). The same seed gives the same batch."""
    store = RunStore(Path(run_dir))
    trainer = Trainer(store.read_config(), device="cpu")
    trainer.load_state_dict(store.load_checkpoint(map_location="cpu"))
    gen = torch.Generator().manual_seed(seed)
    real, labels = trainer.data.sample(n, gen)
    onehot = (nn.functional.one_hot(labels, trainer.n_classes).float()
              if trainer.n_classes and labels is not None else None)
    with torch.no_grad(), inference(trainer.G):
        fake = trainer.G(torch.randn(n, trainer.config.z_dim, generator=gen), onehot)
    return unit_gradients(trainer.D, lambda r, f: trainer.loss.d_loss(r, f)["loss"],
                          to_model_range(real, trainer.config), fake, onehot)
