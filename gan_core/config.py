"""Training configuration: one typed, frozen dataclass, its limits, and the presets.

Every limit lives next to its field (in the field's metadata), so the dashboard form and the CLI read the same numbers.
Validation raises ConfigError with a message that names the field and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from gan_core import shapes


class ConfigError(ValueError):
    """A configuration value or combination that cannot be trained; the message names the field."""

    def __init__(self, field_name: str, message: str) -> None:
        field_name = str(field_name)
        shown = field_name if field_name.isprintable() and len(field_name) <= _SHOW_CHARS else show(field_name)
        super().__init__(f"{shown}: {message}")  # one line, whatever key a user typed
        self.field = field_name


_SHOW_CHARS = 80  # a value or key quoted in an error message is cut to this length


def show(value: Any) -> str:
    """A value quoted in an error message: its repr on one line, at most _SHOW_CHARS long, even for a huge integer."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**18:
        return f"{'-' if value < 0 else ''}an integer of about {int(abs(value).bit_length() * math.log10(2)) + 1:,} digits"
    try:
        text = repr(value)
    except ValueError:  # e.g. a list holding an integer too long for str()
        text = f"a {type(value).__name__} too large to show"
    return clip(text)


def clip(text: str, limit: int = _SHOW_CHARS) -> str:
    """`text` cut to at most `limit` characters, an ellipsis marking the cut: user text quoted in a message."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Dataset(str, Enum):
    RING = "ring"
    GRID = "grid"
    POINTS = "points"  # user-supplied 2D points from a CSV file
    DIGITS = "digits"
    MNIST = "mnist"
    FASHION_MNIST = "fashion-mnist"

    @property
    def is_2d(self) -> bool:
        return self in (Dataset.RING, Dataset.GRID, Dataset.POINTS)

    @property
    def has_labels(self) -> bool:
        return not self.is_2d

    @property
    def shape(self) -> tuple[int, ...]:
        """One example's shape, as gan_core.data loads it."""
        return (2,) if self.is_2d else (1, 8, 8) if self is Dataset.DIGITS else (1, 28, 28)


class Arch(str, Enum):
    MLP = "mlp"
    DCGAN = "dcgan"


class Activation(str, Enum):
    RELU = "relu"
    LEAKY_RELU = "leaky_relu"
    TANH = "tanh"
    SIGMOID = "sigmoid"
    ELU = "elu"


class Loss(str, Enum):
    BCE = "bce"
    WGAN_GP = "wgan_gp"
    LEAST_SQUARES = "least_squares"


class GObjective(str, Enum):
    """How G's BCE loss is written; only used when loss == bce."""

    NON_SATURATING = "non_saturating"  # minimise -log D(G(z)): strong gradient while D wins
    MINIMAX = "minimax"  # minimise log(1 - D(G(z))): the original game, gradient vanishes while D wins


def _f(default: Any, help: str, lo: float | None = None, hi: float | None = None, **extra: Any) -> Any:
    """A dataclass field carrying its limits and help text for the form, the CLI and validation."""
    return field(default=default, metadata={"help": help, "min": lo, "max": hi, **extra})


@dataclass(frozen=True)
class TrainConfig:
    # data
    dataset: Dataset = _f(Dataset.DIGITS, "Training data: 2D mixtures, your CSV points, or images")
    points_csv: str = _f("", "CSV file of 2D points (two numeric columns); only for dataset=points")
    # architecture
    arch: Arch = _f(Arch.MLP, "MLP (any data) or DCGAN convolutions (28×28 images)")
    z_dim: int = _f(64, "Length of the noise vector z", 1, 512)
    g_width: int = _f(128, "G's first hidden width (doubles per MLP block; DCGAN: base channels)", 1, 2048)
    d_width: int = _f(128, "D's last hidden width (doubles per MLP block towards the input; DCGAN: base channels)", 1, 2048)
    g_depth: int = _f(4, "Number of hidden blocks in G (MLP only)", 1, 8)
    d_depth: int = _f(3, "Number of hidden blocks in D (MLP only)", 1, 8)
    g_activation: Activation = _f(Activation.RELU, "G's hidden activation")
    d_activation: Activation = _f(Activation.LEAKY_RELU, "D's hidden activation")
    g_slope: float = _f(0.2, "Negative slope a of G's leaky ReLU, max(az, z)", 0.0, 1.0)
    d_slope: float = _f(0.2, "Negative slope a of D's leaky ReLU (the course uses 0.2)", 0.0, 1.0)
    g_batchnorm: bool = _f(True, "Batch norm in G's hidden blocks")
    d_batchnorm: bool = _f(False, "Batch norm in D's hidden blocks")
    conditional: bool = _f(False, "Join a one-hot class label to G's noise and D's input")
    # objective
    loss: Loss = _f(Loss.BCE, "BCE (the course's), WGAN-GP, or least squares")
    g_objective: GObjective = _f(GObjective.NON_SATURATING, "G's BCE loss: non-saturating −log D(G(z)) or minimax")
    gp_lambda: float = _f(10.0, "Gradient-penalty weight λ (WGAN-GP)", 0.0, 1000.0)
    d_steps: int = _f(1, "D (critic) updates per G update", 1, 20)
    # optimisation
    lr_g: float = _f(2e-4, "G's Adam learning rate", 1e-7, 1.0, exclusive_min=0.0)
    lr_d: float = _f(2e-4, "D's Adam learning rate", 1e-7, 1.0, exclusive_min=0.0)
    lr_final: float = _f(1.0, "Learning rates decay linearly to this fraction of their start by the last step "
                         "(resuming with a new step total re-stretches the decay)", 0.0, 1.0)
    beta1: float = _f(0.5, "Adam β1", 0.0, 0.999)
    beta2: float = _f(0.999, "Adam β2", 0.0, 0.9999)
    batch_size: int = _f(128, "Examples per batch", 2, 4096)
    steps: int = _f(2000, "Total G updates", 1, 10_000_000)
    seed: int = _f(0, "Random seed: same seed, same run (on the CPU)", 0, 2**31 - 1)
    # recording
    probe_every: int = _f(10, "Steps between probe records (gradients, dead units, batch norm)", 1, 100_000)
    sample_every: int = _f(50, "Steps between sample snapshots", 1, 100_000)
    checkpoint_every: int = _f(500, "Steps between checkpoints", 1, 1_000_000)
    n_samples: int = _f(64, "Fixed-noise samples drawn at each snapshot", 1, 4096)

    def __post_init__(self) -> None:
        validate(self)

    # -- derived facts, kept here so no other module re-derives them --
    @property
    def data_range(self) -> tuple[float, float] | None:
        """The range G's output lives in: DCGAN images in [-1, 1] (Tanh), MLP images in [0, 1] (Sigmoid); 2D: None."""
        if self.dataset.is_2d:
            return None
        return (-1.0, 1.0) if self.arch is Arch.DCGAN else (0.0, 1.0)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (enums as their values); the inverse of from_dict."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        unknown = sorted(set(values) - set(FIELDS), key=str)  # keys of any type: name the first, never a TypeError
        if unknown:
            raise ConfigError(unknown[0], f"unknown field; known fields are {', '.join(FIELDS)}")
        return cls(**{k: coerce(k, v) for k, v in values.items()})

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed; values are coerced and the result validated."""
        merged = self.to_dict()
        merged.update(changes)
        return TrainConfig.from_dict(merged)


FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(TrainConfig)}
_ENUM_TYPES: dict[str, type[Enum]] = {
    "Dataset": Dataset, "Arch": Arch, "Activation": Activation, "Loss": Loss, "GObjective": GObjective,
}


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def field_type(name: str) -> type:
    """The Python type of a config field (an Enum subclass, int, float, bool or str)."""
    annotation = FIELDS[name].type  # a string, because of `from __future__ import annotations`
    return _ENUM_TYPES.get(annotation) or {"int": int, "float": float, "bool": bool, "str": str}[annotation]


def coerce(name: str, value: Any) -> Any:
    """Turn a value from JSON, a form or the command line (`key=value` text) into the field's type."""
    if name not in FIELDS:
        raise ConfigError(name, f"unknown field; known fields are {', '.join(FIELDS)}")
    kind = field_type(name)
    if isinstance(kind, type) and issubclass(kind, Enum):
        if isinstance(value, kind):
            return value
        allowed = ", ".join(m.value for m in kind)
        try:
            text = str(value).strip().lower()
            # accept both spellings people type: "leaky-relu" / "leaky_relu", "fashion_mnist" / "fashion-mnist"
            return kind(text.replace("_", "-") if kind is Dataset else text.replace("-", "_"))
        except ValueError:
            raise ConfigError(name, f"{show(value)} is not one of: {allowed}") from None
    if kind is bool:
        if isinstance(value, bool):
            return value
        try:
            text = str(value).strip().lower()
        except ValueError:  # an integer too long for str()
            text = ""
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(name, f"{show(value)} is not a boolean (use true or false)")
    if kind is int:
        if isinstance(value, bool):
            raise ConfigError(name, f"{show(value)} is not an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value).strip())
        except ValueError:
            raise ConfigError(name, f"{show(value)} is not an integer") from None
    if kind is float:
        if isinstance(value, bool):
            raise ConfigError(name, f"{show(value)} is not a number")
        try:
            return float(value if isinstance(value, (int, float)) else str(value).strip())
        except (ValueError, OverflowError):
            raise ConfigError(name, f"{show(value)} is not a number") from None
    if not isinstance(value, str):
        raise ConfigError(name, f"{show(value)} is not text")
    return value


def parse_overrides(pairs: list[str], option: str = "--set") -> dict[str, Any]:
    """`KEY=VALUE` texts (the CLI's --set, a sweep's fixed fields) as field values, each coerced to its field's type."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(option, f"{show(pair)} is not KEY=VALUE")
        values[key.strip()] = coerce(key.strip(), value)
    return values


def limits(name: str) -> tuple[float | None, float | None]:
    meta = FIELDS[name].metadata
    return meta.get("min"), meta.get("max")


def validate(config: TrainConfig) -> None:
    """Raise ConfigError for the first field that is out of its limits, or a combination that cannot work."""
    for name in FIELDS:
        value = getattr(config, name)
        kind = field_type(name)
        if isinstance(kind, type) and issubclass(kind, Enum):
            if not isinstance(value, kind):
                raise ConfigError(name, f"{show(value)} is not one of: {', '.join(m.value for m in kind)}")
            continue
        if kind is bool:
            if not isinstance(value, bool):
                raise ConfigError(name, f"{show(value)} is not a boolean")
            continue
        if kind is str:
            if not isinstance(value, str):
                raise ConfigError(name, f"{show(value)} is not text")
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
            raise ConfigError(name, f"{show(value)} is not {'an integer' if kind is int else 'a number'}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(name, f"{value} is not a finite number")
        lo, hi = limits(name)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ConfigError(name, f"{show(value)} is outside the allowed range {_fmt(lo)} to {_fmt(hi)}")

    if config.arch is Arch.DCGAN and config.dataset.is_2d:
        raise ConfigError("arch", f"dcgan needs 28×28 images (mnist, fashion-mnist), "
                                  f"not 2D points ({config.dataset.value}); use mlp")
    if config.arch is Arch.DCGAN and config.dataset is Dataset.DIGITS:
        raise ConfigError("arch", "dcgan needs 28×28 images (mnist, fashion-mnist); digits are 8×8, use mlp")
    if config.conditional and not config.dataset.has_labels:
        raise ConfigError("conditional", f"needs labelled data (digits, mnist, fashion-mnist); "
                          f"{config.dataset.value} has no labels")
    if config.dataset is Dataset.POINTS and not config.points_csv.strip():
        raise ConfigError("points_csv", "dataset=points needs the path of a CSV file of 2D points")
    if config.dataset is not Dataset.POINTS and config.points_csv.strip():
        raise ConfigError("points_csv", "only used with dataset=points")
    if config.g_objective is GObjective.MINIMAX and config.loss is not Loss.BCE:
        raise ConfigError("g_objective", "minimax only applies to loss=bce")
    _check_size(config)


# Per network. Sized for the 2-core, few-GB laptop the README describes: training holds 16 bytes a weight (the weight, its
# gradient, Adam's two moments), so 256 MB for G and D together, and a checkpoint holds 12 (no gradients): at most
# 192 MB on disk, which the dashboard serves from disk (Streamlit's static files stop at 200 MiB), never from memory.
MAX_PARAMETERS = 8_000_000


def weight_counts(config: TrainConfig) -> tuple[int, int]:
    """G's and D's trainable weights for this config, counted from gan_core.shapes without building anything."""
    x_size = math.prod(config.dataset.shape)
    k = 10 if config.conditional else 0  # every labelled dataset has ten classes
    if config.arch is Arch.DCGAN:
        channels = config.dataset.shape[0]
        return (shapes.conv_weights(shapes.dcgan_generator_convs(config.z_dim + k, config.g_width, channels),
                                    config.g_batchnorm),
                shapes.conv_weights(shapes.dcgan_discriminator_convs(channels + k, config.d_width), config.d_batchnorm))
    return (shapes.mlp_weights(shapes.mlp_generator_dims(config.z_dim + k, config.g_width, config.g_depth, x_size),
                               config.g_batchnorm),
            shapes.mlp_weights(shapes.mlp_discriminator_dims(x_size + k, config.d_width, config.d_depth),
                               config.d_batchnorm))


def _check_size(config: TrainConfig) -> None:
    """Each width and depth is within its limits, but together they can ask for billions of weights: refuse those
    before any memory is taken."""
    for count, width, depth in zip(weight_counts(config), ("g_width", "d_width"), ("g_depth", "d_depth"), strict=True):
        if count > MAX_PARAMETERS:
            also = f" or {depth}" if config.arch is Arch.MLP else ""
            raise ConfigError(width, f"{getattr(config, width)} makes {'G' if width[0] == 'g' else 'D'} "
                                     f"{count / 1e6:,.1f} M weights, more than the {MAX_PARAMETERS / 1e6:g} M "
                                     f"allowed: lower {width}{also}")


def _fmt(x: float | None) -> str:
    return "−∞" if x is None else f"{x:g}"


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    source: str  # where the hyperparameters come from, so a teacher can cite them
    config: TrainConfig


def _preset(name: str, description: str, source: str, **values: Any) -> Preset:
    return Preset(name, description, source, TrainConfig.from_dict(values))


# 2D mixtures: measured on 2 CPU cores, a BatchNorm generator with a linearly decaying learning rate gives sharp modes
# fastest; WGAN-GP's five critic updates with a double backward make each of its steps about 6x slower.
_TOY = dict(z_dim=2, g_width=128, g_depth=3, d_width=128, d_depth=3, g_batchnorm=True, batch_size=256,
            sample_every=25, probe_every=10, n_samples=512)
# BCE on the mixtures (measured, mode-coverage bench): D at 4× G's learning rate, both decaying to 1/1000, with a
# small batch: 8/8 ring modes and 25/25 grid modes where equal rates and 2,000-3,000 larger steps covered 8 and ~17
# with about half the samples as sharp. Small nets, many steps (issue 18, measured on one thread, seeds 0-2): G
# 32 → 64 → 128 and D 128 → 64 → 32 take a step 2.2× faster than G 128 → 512 and D 256 → 64, so 10,000 steps fit
# the minute that 5,000 did, and give sharper modes: ring 81.5 % of samples within 3σ (76.5 % before), grid 25 modes
# at 55-66 % (21.4 at 40 %); the ring and grid presets below then retune G's rate and the batch. Longer runs of
# 12,000-14,000 steps sometimes lost a ring mode late. Snapshots and probes every 50 and 20 steps keep a run's records
# the size they were.
_TOY_BCE = dict(_TOY, loss="bce", batch_size=128, g_width=32, d_width=32, lr_g=5e-4, lr_d=2e-3, lr_final=0.001,
                steps=10_000, sample_every=50, probe_every=20)
# λ = 0.1, not the paper's 10: the ring's modes have σ = 0.01, and a critic held to gradient norm 1 is too flat at that
# scale to pull samples onto them (measured: λ 10 covers 5/8 modes in 1,000 steps, λ 0.1 covers 8/8 in 1,100).
# Batch 128 (measured, mode-coverage bench): 1,400-1,500 steps take 45-55 s and cover what 1,100-1,500 steps of batch
# 256 did in 62-84 s, so the five critic updates a step fit the minute.
_TOY_WGAN = dict(_TOY, loss="wgan_gp", gp_lambda=0.1, d_steps=5, d_width=64, lr_g=1e-3, lr_d=1e-3, beta1=0.5, beta2=0.9,
                 lr_final=0.01, batch_size=128)
# Digits: the course's first-GAN shape scaled to 8×8 images.
# How long the digits preset takes, said once: every page that offers to train it quotes this (2,500 steps, 2 CPU cores).
DIGITS_TIME = "a trained G in under a minute, measured on 2 CPU cores with seed 0 when the preset was written"
_DIGITS = dict(dataset="digits", z_dim=32, g_width=64, g_depth=3, d_width=64, d_depth=3, lr_g=1e-3, lr_d=1e-3,
               batch_size=64, steps=2500, sample_every=50)

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        # G at 2.5× the grid's rate on the ring (measured, issue 18, seeds 0-4, 10,000 steps): 89.7 % of samples within
        # 3σ where 5e-4 gave 83.1 %; 1e-3 and 1.5e-3 gave 88.5 and 88.4 %, 2e-3 widened modes (81 %). On the grid a faster
        # G lost modes (22 of 25 on seed 0), so grid-bce keeps 5e-4.
        _preset("ring-bce", "8-Gaussian ring, BCE loss, D learning 1.6× faster than G, decaying learning rates",
                "PacGAN §6 ring (Lin et al. 2018); two time-scale rates (Heusel et al. 2017)",
                dataset="ring", **dict(_TOY_BCE, lr_g=1.25e-3)),
        _preset("ring-wgan", "8-Gaussian ring, WGAN-GP (Wasserstein loss with gradient penalty)",
                "Gulrajani et al. 2017 (5 critic steps; λ lowered to 0.1 for σ = 0.01 modes)",
                dataset="ring", steps=1400, **_TOY_WGAN),
        # Batches of 256 on the grid (measured, issue 18, seeds 0-4): 8,000 steps take the time 10,000 of 128 did and
        # keep 24.8 of 25 modes (24.2 with 128); with D's rejection sampling all 25 at 88.5 % (24.8 at 87.5 %).
        _preset("grid-bce", "25-Gaussian grid, BCE loss, D learning 4× faster than G, decaying learning rates",
                "PacGAN §6 grid (Lin et al. 2018); two time-scale rates (Heusel et al. 2017)",
                dataset="grid", **dict(_TOY_BCE, batch_size=256, steps=8000)),
        # the critic at 4× G's rate: 18-19% of samples high quality (seeds 1, 2) where equal rates gave 13% (seed 1)
        _preset("grid-wgan", "25-Gaussian grid, WGAN-GP, critic learning 4× faster than G",
                "Gulrajani et al. 2017 (5 critic steps; λ 0.1 as for the ring); two time-scale rates (Heusel et al. 2017)",
                dataset="grid", steps=1500, **dict(_TOY_WGAN, lr_g=5e-4, lr_d=2e-3)),
        _preset("digits", f"8×8 handwritten digits (bundled, no download): {DIGITS_TIME}",
                "course C1W1 first GAN, scaled to 8×8", **_DIGITS),
        _preset("digits-conditional", "8×8 digits with a one-hot class label: pick the digit you want",
                "course C1W4 conditional GAN, scaled to 8×8", conditional=True, **_DIGITS),
        # Mode collapse on demand: the digits GAN without batch norm in G lets D win, and G settles on one digit.
        # 1,000 fixed-noise samples per snapshot for the class histogram. Measured in the mode-collapse comparison.
        _preset("digits-collapse", "8×8 digits, BCE, no batch norm in G: watch whether G collapses onto one or two "
                "digits within seconds",
                "course C1W3 mode-collapse lesson; batch norm removed from G so D wins early",
                **dict(_DIGITS, g_batchnorm=False, steps=800, sample_every=25, n_samples=1000)),
        _preset("digits-collapse-wgan", "digits-collapse with WGAN-GP: watch whether the same G keeps more digits",
                "course C1W3 WGAN-GP lab (5 critic steps, λ 10, Adam β2 0.9), scaled to 8×8",
                **dict(_DIGITS, g_batchnorm=False, steps=800, sample_every=25, n_samples=1000, loss="wgan_gp", d_steps=5,
                       gp_lambda=10.0, beta2=0.9)),
        _preset("first-gan", "The course's first GAN: MLP on MNIST", "course C1W1 lab (z 64, lr 1e-5, batch 128)",
                dataset="mnist", arch="mlp", z_dim=64, g_width=128, g_depth=4, d_width=128, d_depth=3, lr_g=1e-5,
                lr_d=1e-5, beta1=0.9, beta2=0.999, batch_size=128, steps=10000, sample_every=200, checkpoint_every=1000),
        # The course's MLP GAN made small enough for a minute on a laptop: two hidden layers a side instead of four,
        # and lr 1e-3 with β1 0.5 instead of 1e-5 (tuned for hours on a GPU). Measured per step, one thread, seeds 0-3:
        # a G twice as wide (256 → 512) with D learning 4× faster reaches 10/10 digits by step 1,000-1,250 and keeps
        # them to 3,000 (FCD 64-89); equal rates and G 128 wide hovered at 8-9 of 10 (blurry 0, 1, 5, 6). Decaying
        # the rates froze G with digits missing.
        _preset("mnist-quick", "MNIST digits in about a minute (measured on one CPU thread, seeds 0-3, when the preset "
                "was tuned): a small MLP GAN, two hidden layers a side",
                "course C1W1 first GAN, scaled down (z 64; lr 1e-3 for G and 4e-3 for D, β1 0.5)",
                dataset="mnist", arch="mlp", z_dim=64, g_width=256, g_depth=2, d_width=128, d_depth=2, lr_g=1e-3,
                lr_d=4e-3, beta1=0.5, beta2=0.999, batch_size=128, steps=2500, sample_every=100, checkpoint_every=500),
        _preset("dcgan", "DCGAN on MNIST", "course C1W2 lab (lr 2e-4, betas 0.5/0.999, batch 128)",
                dataset="mnist", arch="dcgan", z_dim=64, g_width=64, d_width=16, lr_g=2e-4, lr_d=2e-4, beta1=0.5,
                beta2=0.999, batch_size=128, d_batchnorm=True, steps=5000, sample_every=100, checkpoint_every=1000),
        _preset("wgan-gp", "WGAN-GP on MNIST", "course C1W3 lab (critic 5 steps, λ 10, lr 2e-4)",
                dataset="mnist", arch="dcgan", loss="wgan_gp", d_steps=5, gp_lambda=10.0, z_dim=64, g_width=64,
                d_width=16, lr_g=2e-4, lr_d=2e-4, beta1=0.5, beta2=0.999, batch_size=128, d_batchnorm=True,
                steps=3000, sample_every=100, checkpoint_every=500),
        _preset("conditional", "Conditional DCGAN on MNIST", "course C1W4 lab (one-hot joined to z and to D's channels)",
                dataset="mnist", arch="dcgan", conditional=True, z_dim=64, g_width=64, d_width=16, lr_g=2e-4,
                lr_d=2e-4, beta1=0.5, beta2=0.999, batch_size=128, d_batchnorm=True, steps=5000, sample_every=100,
                checkpoint_every=1000),
    ]
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ConfigError("preset", f"unknown preset {show(name)}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]
