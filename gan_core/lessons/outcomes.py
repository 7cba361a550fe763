"""What a comparison's runs measured: the numbers each lesson's question (gan_core.lessons.comparisons.Prediction) is
answered with, read off run snapshots.

The pages draw these numbers live and the lesson's export (gan_core.lessons.export) writes them down, so both read them
here: a page and the file a teacher takes home cannot disagree. Where a number needs the run's data (the digits
covered), callers may pass their own cached ways to load the data and score a snapshot: a page draws the same numbers
on every rerun and must not score them again.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from gan_core.config import Activation, TrainConfig
from gan_core.data import DataSource, load_dataset
from gan_core.evaluation import coverage
from gan_core.runs.state import RunSnapshot
from gan_core.train.probes import ProbeRecord
from gan_core.train.records import SampleRecord

DEAD_KINDS = frozenset({Activation.RELU, Activation.LEAKY_RELU})  # "dead": every pre-activation negative

SourceOf = Callable[[TrainConfig], DataSource]
StatsOf = Callable[[RunSnapshot, SampleRecord, DataSource], Mapping[str, Any]]


def layer_order(name: str) -> tuple[int, str]:
    """Sort key: block 1, block 2, …, block 10, then output (the input side first, the loss side last)."""
    match = re.fullmatch(r"block (\d+)", name)
    return (int(match.group(1)), "") if match else (10_000, name)


def dead_mean(probe: ProbeRecord, net: str) -> float:
    """The mean over `net`'s ReLU-like layers of their dead fraction (NaN when it has none)."""
    values = [s.dead_fraction for s in probe.layers if s.net == net and s.kind in DEAD_KINDS]
    return float(np.mean(values)) if values else math.nan


def grad_ratio(probe: ProbeRecord, net: str) -> float:
    """‖∇ first layer‖ / ‖∇ last layer‖ of `net` (block 1 over output): ~1 healthy, ≪ 1 vanishing; NaN if unknown."""
    norms = probe.grad_norms.get(net, {})
    layers = sorted(norms, key=layer_order)
    if len(layers) < 2 or not norms[layers[-1]] > 0:
        return math.nan
    return norms[layers[0]] / norms[layers[-1]]


def _score(snap: RunSnapshot, record: SampleRecord, source: DataSource) -> Mapping[str, Any]:
    return coverage.record_stats(record, source)


def covered_at(snap: RunSnapshot, record: SampleRecord, *, source_of: SourceOf = load_dataset,
               stats_of: StatsOf = _score) -> float:
    """Classes (digits) or modes one sample snapshot covers, as the Mode collapse page counts them; NaN when the run's
    data is missing here or has nothing to count (user points)."""
    try:
        source = source_of(snap.config)
    except Exception:  # noqa: BLE001 - a dataset missing on this machine: no number, the page says why elsewhere
        return math.nan
    if not coverage.can_measure(source):
        return math.nan
    stats = stats_of(snap, record, source)
    return float(stats.get("classes_covered", stats.get("modes_covered", math.nan)))


def covered(snap: RunSnapshot, *, source_of: SourceOf = load_dataset, stats_of: StatsOf = _score) -> float:
    """Classes or modes covered at the run's last sample snapshot; NaN when it has none."""
    record = snap.latest_samples
    return math.nan if record is None else covered_at(snap, record, source_of=source_of, stats_of=stats_of)


@dataclass(frozen=True)
class Scoring:
    """How the digits covered are found: the run's data, and one snapshot's coverage (a page passes cached ones)."""

    source_of: SourceOf = load_dataset
    stats_of: StatsOf = _score


SCORING = Scoring()
Measure = Callable[[Mapping[str, RunSnapshot], Scoring], dict[str, float]]


def _dead(snaps: Mapping[str, RunSnapshot], scoring: Scoring) -> dict[str, float]:
    return {label: dead_mean(s.probes[-1], "D") if s.probes else math.nan for label, s in snaps.items()}


def _first_layer(snaps: Mapping[str, RunSnapshot], scoring: Scoring) -> dict[str, float]:
    return {label: grad_ratio(s.probes[-1], "G") if s.probes else math.nan for label, s in snaps.items()}


def _covered(snaps: Mapping[str, RunSnapshot], scoring: Scoring) -> dict[str, float]:
    return {label: covered(s, source_of=scoring.source_of, stats_of=scoring.stats_of) for label, s in snaps.items()}


# each comparison's Prediction.measure, computed: the same numbers its page's verdict shows
MEASURES: dict[str, Measure] = {
    "dying-relu": _dead,  # share of D's units dead at the last probe
    "vanishing-gradients": _first_layer,  # G's first-layer gradient over its last layer's, at the last probe
    "batchnorm": _covered,  # digits covered at the last snapshot
    "collapse-digits": _covered,
}


def measure(name: str, snaps: Mapping[str, RunSnapshot], scoring: Scoring = SCORING) -> dict[str, float]:
    """What comparison `name`'s runs measured, by variant label (NaN where a run has no records to measure)."""
    if name not in MEASURES:
        raise KeyError(f"no measure for the comparison {name!r}; known: {', '.join(MEASURES)}")
    return MEASURES[name](snaps, scoring)
