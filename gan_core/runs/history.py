"""Bounded histories of a run: what a viewer can scrub through, with memory flat however long the run trains.

Each history keeps at most `capacity` items spread evenly over everything appended: when it fills up, every other item
is dropped and from then on only every 2nd, 4th, … append is kept. The newest item is always kept too, so a live view
shows the current step even when the thinned points are far apart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Generic, TypeVar

import numpy as np

from gan_core.train.records import METRIC_COLUMNS, StepRecord

T = TypeVar("T")
SMOOTH_ALPHA = 0.05  # exponential moving average weight of the newest loss: about the last 20 steps
SMOOTHED = ("d_loss", "g_loss")
COLUMNS: tuple[str, ...] = METRIC_COLUMNS + tuple(f"{c}_smooth" for c in SMOOTHED)


class Thinned(Generic[T]):
    """A list that keeps at most `capacity` evenly spaced items of all those appended, plus the latest."""

    def __init__(self, capacity: int) -> None:
        assert capacity >= 2
        self.capacity = capacity
        self.stride = 1
        self.count = 0
        self._items: list[T] = []
        self.latest: T | None = None

    def append(self, item: T) -> None:
        if self.count % self.stride == 0:
            self._items.append(item)
            if len(self._items) > self.capacity:
                self._items = self._items[::2]  # the kept items sit at multiples of the new stride
                self.stride *= 2
        self.count += 1
        self.latest = item

    def items(self) -> list[T]:
        """The kept items, oldest first, ending with the latest one."""
        if self.latest is not None and (not self._items or self._items[-1] is not self.latest):
            return [*self._items, self.latest]
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True)
class MetricRow:
    """A step record plus the smoothed losses as they stood at that step (smoothing sees every step, not the kept ones)."""

    record: StepRecord
    d_loss_smooth: float
    g_loss_smooth: float


class MetricHistory:
    """Step records, thinned, with exponential moving averages of D's and G's losses computed over every step."""

    def __init__(self, capacity: int = 2000) -> None:
        self._rows: Thinned[MetricRow] = Thinned(capacity)
        self._smooth = {c: math.nan for c in SMOOTHED}

    def append(self, record: StepRecord) -> None:
        for c in SMOOTHED:
            value = getattr(record, c)
            if math.isfinite(value):
                prev = self._smooth[c]
                self._smooth[c] = value if math.isnan(prev) else prev + SMOOTH_ALPHA * (value - prev)
        self._rows.append(MetricRow(record, self._smooth["d_loss"], self._smooth["g_loss"]))

    def __len__(self) -> int:
        return self._rows.count

    def columns(self) -> Mapping[str, np.ndarray]:
        """Read-only 1-D arrays, one per column of COLUMNS, over the kept rows (a copy: the worker may go on appending)."""
        rows = self._rows.items()
        out: dict[str, np.ndarray] = {}
        for c in COLUMNS:
            if c.endswith("_smooth"):
                values = [getattr(r, c) for r in rows]
            else:
                values = [getattr(r.record, c) for r in rows]
            arr = np.asarray(values, dtype=np.int64 if c == "step" else np.float64)
            arr.flags.writeable = False
            out[c] = arr
        return MappingProxyType(out)


def steps_per_second(records: list[StepRecord]) -> float:
    """Training speed over the given recent records (their own clock, which excludes pauses); nan with fewer than 2."""
    if len(records) < 2:
        return math.nan
    steps = records[-1].step - records[0].step
    seconds = records[-1].time_s - records[0].time_s
    return steps / seconds if seconds > 0 else math.nan
