"""SweepSpec: which runs a sweep makes. A preset, one or two grid fields each with a list of values, seeds, and fields
fixed for every cell; each value is coerced and checked by TrainConfig itself, so a grid obeys the same limits as the
form and `train --set`.

Bad input raises ConfigError naming the field and what is allowed: an unknown field, a value of the wrong type or out
of range, an empty list, a value or field given twice, more than MAX_FIELDS fields, more than MAX_CELLS cells.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, NamedTuple

from gan_core.config import FIELDS, ConfigError, TrainConfig, coerce, get_preset, show

# One cell is one run. 64 digits runs of the preset's 2,500 steps take ~25 min on one local worker (~20 s each): a
# lesson's worth. A bigger grid is more likely a typo (a value list pasted twice) than a plan, and costs a class its
# queue; on a cluster, split it into sweeps of at most this many.
MAX_CELLS = 64
MAX_FIELDS = 2  # rows and columns of the outcome table a page draws (seeds are averaged or listed within a cell)
GRID_HELP = "FIELD=v1,v2"


class Cell(NamedTuple):
    name: str  # e.g. "lr_g=0.001 · g_activation=tanh · seed 0"
    config: TrainConfig


def plain(value: Any) -> Any:
    """A field value as JSON and a summary hold it: enums as their text."""
    return value.value if isinstance(value, Enum) else value


def shown(value: Any) -> str:
    """A grid value in a cell's name: short and exact (0.001, tanh, true)."""
    value = plain(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


@dataclass(frozen=True)
class SweepSpec:
    """The grid to train. Construct with `SweepSpec.of(...)` (any sequences or a mapping) or directly; values are
    coerced to their fields' types and everything is checked on construction."""

    preset: str
    grid: tuple[tuple[str, tuple[Any, ...]], ...]  # (field, values) in the order given: rows, then columns
    seeds: tuple[int, ...] = (0,)
    fixed: tuple[tuple[str, Any], ...] = ()  # set in every cell (the CLI's --set and --steps)

    @classmethod
    def of(cls, preset: str, grid: Mapping[str, Sequence[Any]] | Sequence[tuple[str, Sequence[Any]]],
           seeds: Sequence[int] = (0,), fixed: Mapping[str, Any] | None = None) -> SweepSpec:
        pairs = list(grid.items()) if isinstance(grid, Mapping) else list(grid)
        return cls(preset, tuple((f, tuple(v)) for f, v in pairs), tuple(seeds), tuple((fixed or {}).items()))

    def __post_init__(self) -> None:
        base = get_preset(self.preset).config
        fixed = {}
        for name, value in self.fixed:
            if name == "seed":
                raise ConfigError("seed", "a sweep's seeds are given as seeds (--seeds 0,1), not as a fixed field")
            fixed[name] = coerce(name, value)
        base = base.replace(**fixed)  # a bad fixed value is named before the grid's
        grid = _check_grid(self.grid, self.seeds)
        both = [name for name, _ in grid if name in fixed]
        if both:
            raise ConfigError(both[0], "both fixed (--set) and swept in the grid; give it in one place")
        seeds = _check_seeds(self.seeds, base)
        # frozen: the coerced forms replace what the caller passed, once, before anyone reads them
        object.__setattr__(self, "grid", grid)
        object.__setattr__(self, "seeds", seeds)
        object.__setattr__(self, "fixed", tuple(fixed.items()))
        for name, values in grid:
            for value in values:
                base.replace(**{name: value})  # each value within its field's limits, named alone
        self.cells()  # and every combination trainable (e.g. arch=dcgan needs 28×28 images)

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.grid)

    @property
    def size(self) -> int:
        return math.prod(len(values) for _, values in self.grid) * len(self.seeds)

    def base_config(self) -> TrainConfig:
        return get_preset(self.preset).config.replace(**dict(self.fixed))

    def cells(self) -> list[Cell]:
        """One (name, config) per grid point and seed; the last field varies fastest, then the seed."""
        base = self.base_config()
        cells = []
        for point in itertools.product(*(values for _, values in self.grid), self.seeds):
            *values, seed = point
            settings = dict(zip(self.fields, values, strict=True))
            name = " · ".join([*(f"{f}={shown(v)}" for f, v in settings.items()), f"seed {seed}"])
            cells.append(Cell(name, base.replace(**settings, seed=seed)))
        return cells

    def settings(self, config: TrainConfig) -> dict[str, Any]:
        """The grid fields' values in a cell's config, as plain JSON values."""
        return {name: plain(getattr(config, name)) for name in self.fields}

    def to_dict(self) -> dict[str, Any]:
        return {"preset": self.preset, "grid": [{"field": f, "values": [plain(v) for v in vs]} for f, vs in self.grid],
                "seeds": list(self.seeds), "fixed": {k: plain(v) for k, v in self.fixed}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SweepSpec:
        try:
            grid = [(axis["field"], axis["values"]) for axis in data["grid"]]
            return cls.of(data["preset"], grid, data.get("seeds", (0,)), data.get("fixed") or {})
        except (KeyError, TypeError) as err:
            raise ConfigError("sweep", f"not a sweep's spec ({type(err).__name__}: {show(str(err))})") from None


def _check_grid(grid: Sequence[Any], seeds: Sequence[Any]) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    if not grid:
        raise ConfigError("grid", f"give one or two fields to sweep, each with a list of values ({GRID_HELP})")
    if len(grid) > MAX_FIELDS:
        names = ", ".join(show(name) for name, _ in grid)
        raise ConfigError("grid", f"at most {MAX_FIELDS} fields (a table's rows and columns); got {len(grid)}: {names}")
    seen: set[str] = set()
    for name, values in grid:
        if name not in FIELDS:
            raise ConfigError(name, f"unknown field; known fields are {', '.join(FIELDS)}")
        if name == "seed":
            raise ConfigError("seed", "give a sweep's seeds as seeds (--seeds 0,1), not as a grid field")
        if name in seen:
            raise ConfigError(name, f"given twice in the grid; list all its values once ({GRID_HELP})")
        seen.add(name)
        if not values:
            raise ConfigError(name, f"no values to sweep; give at least one ({GRID_HELP})")
    # counted before any value is coerced: a pasted list of a million values is refused at once
    cells = math.prod(len(values) for _, values in grid) * max(1, len(seeds))
    if cells > MAX_CELLS:
        seeds_text = f"{len(seeds)} seed{'' if len(seeds) == 1 else 's'}"
        sizes = " × ".join([*(f"{len(v):,} {name} values" for name, v in grid), seeds_text])
        raise ConfigError("grid", f"{sizes} make {cells:,} cells (runs); at most {MAX_CELLS} in one sweep")
    checked = []
    for name, values in grid:
        coerced: list[Any] = []
        for value in values:
            value = coerce(name, value)
            if value in coerced:
                raise ConfigError(name, f"{shown(value)} is listed twice; give each value once")
            coerced.append(value)
        checked.append((name, tuple(coerced)))
    return tuple(checked)


def _check_seeds(seeds: Sequence[Any], base: TrainConfig) -> tuple[int, ...]:
    if not seeds:
        raise ConfigError("seeds", "no seeds; give at least one, e.g. 0 or 0,1,2")
    checked: list[int] = []
    for seed in seeds:
        seed = coerce("seed", seed)
        base.replace(seed=seed)  # within the seed field's limits
        if seed in checked:
            raise ConfigError("seeds", f"{seed} is listed twice; give each seed once")
        checked.append(seed)
    return tuple(checked)


def parse_grid(texts: Sequence[str], option: str = "--grid") -> list[tuple[str, list[str]]]:
    """`FIELD=v1,v2` texts as (field, [value texts]); values are coerced by SweepSpec."""
    grid = []
    for text in texts:
        name, sep, values = text.partition("=")
        if not sep or not name.strip():
            raise ConfigError(option, f"{show(text)} is not {GRID_HELP}")
        items = [v.strip() for v in values.split(",")] if values.strip() else []
        if any(not item for item in items):
            raise ConfigError(name.strip(), f"an empty value in {show(values)}; separate values with commas ({GRID_HELP})")
        grid.append((name.strip(), items))
    return grid


def parse_seeds(text: str) -> list[int]:
    """`0,1,2` as seeds; checked against the seed field's limits by SweepSpec."""
    seeds = []
    for item in text.split(","):
        try:
            seeds.append(int(item.strip()))
        except ValueError:
            raise ConfigError("seeds", f"{show(item.strip())} is not a whole number; give seeds as 0,1,2") from None
    return seeds
