"""One-click comparison runs: the same run twice (or more), differing only in the setting a lesson is about.

A lesson page starts every variant of a comparison at once and plots them side by side. Keeping the variants here, as
changes to one base config, makes "identical but for X" a fact a test can check. Each comparison also holds the question
the room is asked before it runs (Prediction) and the rule that reads the answer off what the runs measured.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from gan_core.config import ConfigError, TrainConfig, get_preset

SAME, BOTH, NEITHER = "about the same", "both", "neither"


class Expect(Enum):
    """How a prediction's answer is read off each run's measured number."""

    MORE = "more"  # the run whose number is larger (by at least `margin` times), else "about the same"
    LESS = "less"  # the run whose number is smaller (by at least `margin` times), else "about the same"
    AT_MOST = "at most"  # the runs whose number is at most `margin`: one of them, "both" or "neither"


@dataclass(frozen=True)
class Prediction:
    """A question the room answers before the runs start, and how their outcome answers it."""

    question: str
    measure: str  # what the page measures in each run once it has ended, e.g. "share of D's units dead"
    expect: Expect
    margin: float  # MORE/LESS: the ratio between the two numbers that counts as a difference; AT_MOST: the bound

    def choices(self, labels: tuple[str, ...]) -> tuple[str, ...]:
        return (*labels, SAME) if self.expect in (Expect.MORE, Expect.LESS) else (*labels, BOTH, NEITHER)

    def outcome(self, measured: Mapping[str, float]) -> str | None:
        """The choice the measurements make right (None while a number is missing: a run with no records)."""
        values = {label: float(v) for label, v in measured.items()}
        if len(values) != 2 or not all(math.isfinite(v) and v >= 0 for v in values.values()):
            return None
        (a, va), (b, vb) = values.items()
        if self.expect is Expect.AT_MOST:
            hits = [label for label, v in values.items() if v <= self.margin]
            return BOTH if len(hits) == 2 else hits[0] if hits else NEITHER
        low, high = sorted((va, vb))
        if high == 0 or (low > 0 and high / low < self.margin):
            return SAME
        larger = a if va > vb else b
        return larger if self.expect is Expect.MORE else (b if larger == a else a)


@dataclass(frozen=True)
class Comparison:
    name: str
    question: str  # what the comparison shows, in one sentence a teacher can read aloud
    base: TrainConfig
    variants: dict[str, dict[str, Any]]  # label -> the fields that differ from base
    prediction: Prediction
    steps_note: str = ""  # how long it takes, measured

    def configs(self, seed: int | None = None) -> dict[str, TrainConfig]:
        """Each variant's config; `seed` replaces the base's ("Run it again": the same comparison, other noise)."""
        base = self.base if seed is None else self.base.replace(seed=seed)
        return {label: base.replace(**changes) for label, changes in self.variants.items()}

    def choices(self) -> tuple[str, ...]:
        return self.prediction.choices(tuple(self.variants))

    def differing_fields(self) -> set[str]:
        return {k for changes in self.variants.values() for k in changes}


_DIGITS = get_preset("digits").config

COMPARISONS: dict[str, Comparison] = {
    c.name: c
    for c in [
        Comparison(
            name="dying-relu",
            question="Does D keep its units alive? ReLU against leaky ReLU in D, at 5× the preset's learning rate, where "
                     "big early steps can kill ReLUs.",
            # lr 5e-3 (5x the preset's): the big early Adam steps push ReLUs negative for every input, and a dead ReLU
            # gets no gradient to come back. Measured over seeds 0-2 at step 1000, D's block 1: ReLU 37-41 % dead,
            # leaky ReLU 6-11 %. 1,000 steps: both variants, one after the other, finish well inside a minute.
            base=_DIGITS.replace(lr_g=5e-3, lr_d=5e-3, steps=1000, probe_every=10, seed=0),
            variants={"ReLU in D": {"d_activation": "relu"}, "leaky ReLU in D": {"d_activation": "leaky_relu"}},
            # 1.5x: the seeds above differ by 3.4-6.8x, so "about the same" is a wrong answer, not a coin toss
            prediction=Prediction("Which run's discriminator will end with more dead units?",
                                  "share of D's units dead at the last probe", Expect.MORE, 1.5),
            steps_note="Measured on 2 CPU cores, seed 0, when this page was written: both done about 20 s after the click.",
        ),
        Comparison(
            name="vanishing-gradients",
            question="Do gradients reach the first layers? Sigmoid hidden units against leaky ReLU, in deeper networks.",
            # Five hidden blocks each, narrower to stay fast; no batch norm in G, as it rescales every layer's gradient
            # and hides the effect (that is the batch-norm lesson). Measured: G's block-1 gradient is ~10^4x smaller
            # than its output layer's with sigmoids, within ~5x with leaky ReLUs.
            base=_DIGITS.replace(g_depth=5, d_depth=5, g_width=32, d_width=32, g_batchnorm=False, steps=600,
                                 probe_every=10, seed=0),
            variants={
                "sigmoid": {"g_activation": "sigmoid", "d_activation": "sigmoid"},
                "leaky ReLU": {"g_activation": "leaky_relu", "d_activation": "leaky_relu"},
            },
            # 10x between the two runs' ratios: measured ~10^4 against ~1/5, so only a real vanishing gradient counts
            prediction=Prediction("In which run will G's first layer get the weaker gradient, next to its last layer's?",
                                  "G's first-layer gradient over its last layer's, at the last probe", Expect.LESS,
                                  10.0),
            steps_note="Measured on 2 CPU cores, seed 0, when this page was written: both done about 20 s after the click.",
        ),
        Comparison(
            name="batchnorm",
            question="What does batch norm change? The same run with batch norm in G's hidden layers, and without.",
            # Batch norm in G only: in D it sees all-real then all-fake batches, whose statistics differ, and it trained
            # worse than none (measured: 4 of 10 digits vs 5 at 1,500 steps). 1,000 steps per variant, one after the
            # other on 2 cores: both done ~13 s after the click (~30 s on a loaded machine); with batch norm all 10 digits
            # (FCD 18), without it G collapses onto one digit (FCD 520) while its layers' statistics drift.
            base=_DIGITS.replace(steps=1000, probe_every=10, seed=0, d_batchnorm=False),
            variants={"batch norm": {"g_batchnorm": True}, "no batch norm": {"g_batchnorm": False}},
            prediction=Prediction("Which run will draw only a few digits (3 or fewer of the 10)?",
                                  "digits covered at the last snapshot", Expect.AT_MOST, 3),
            steps_note="both variants finished about 15 s after the click, on 2 CPU cores with seed 0 when this page was "
                       "written (about 30 s on a busy machine)",
        ),
        Comparison(
            name="collapse-digits",
            question="Does G draw all ten digits? The same GAN trained with BCE, and with WGAN-GP.",
            # The presets digits-collapse and digits-collapse-wgan; the variant holds exactly the fields they differ in.
            # Measured with RunManager(processes=True, max_runs=1) on 2 cores, seeds 0-4, 800 steps, 1,000 samples:
            # BCE ends on 1, 1, 2, 1, 1 digits of 10 (D(G(z)) ~0.15), WGAN-GP on 10 of 10 for every seed; BCE done
            # 9-12 s after the click, WGAN-GP 37-47 s (it runs second: 5 critic updates with a double backward each).
            base=get_preset("digits-collapse").config.replace(seed=0),
            variants={"BCE": {}, "WGAN-GP": {k: v for k, v in get_preset("digits-collapse-wgan").config.to_dict().items()
                                             if get_preset("digits-collapse").config.to_dict()[k] != v}},
            prediction=Prediction("Which run will draw only a few digits (3 or fewer of the 10)?",
                                  "digits covered at the last snapshot", Expect.AT_MOST, 3),
            steps_note="Measured on 2 CPU cores, seeds 0-4, when this page was written: BCE done about 10 s after the "
                       "click, WGAN-GP within 50 s.",
        ),
    ]
}


def get_comparison(name: str) -> Comparison:
    if name not in COMPARISONS:
        raise ConfigError("comparison", f"unknown comparison {name!r}; choose one of: {', '.join(COMPARISONS)}")
    return COMPARISONS[name]
