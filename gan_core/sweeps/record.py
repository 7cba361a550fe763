"""A launched sweep: its runs started through a RunManager, and its record `sweeps/<id>.json` beside the runs.

The record names each cell's run, so after a restart the sweep is listed again with its runs (which the manager itself
queues again or reads back from their folders). It is written once, when the sweep starts, and never changed: what the
runs became is read from the runs themselves (gan_core.sweeps.outcomes). A record that cannot be read is logged and
skipped, so one damaged file costs only its sweep. A run deleted since is shown as gone, never an error.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gan_core.config import ConfigError, clip
from gan_core.runs.folder import DAMAGED, atomic_write_bytes, is_run_id, sanitize_name
from gan_core.runs.manager import RunManager
from gan_core.runs.roles import LOCAL, Actor
from gan_core.sweeps.spec import SweepSpec, shown

log = logging.getLogger(__name__)
SWEEPS_DIR = "sweeps"  # beside runs/uploads in the runs folder; no config.json in it, so it is never listed as a run
RECORD_VERSION = 1
_RUN_NAME_CHARS = 40  # + the manager's "-YYYYmmdd-HHMMSS-n" stays within a run id's 64 characters
_ids_lock = threading.Lock()  # two launches in the same second must not take the same sweep id


@dataclass(frozen=True)
class SweepCell:
    name: str  # "lr_g=0.001 · seed 0"
    settings: Mapping[str, Any]  # the grid fields' values (plain JSON values), in the grid's order
    seed: int
    run_id: str


@dataclass(frozen=True)
class Sweep:
    """A sweep as its record holds it. `spec` is the plain dict; `load_spec()` rebuilds the SweepSpec (it may fail
    for a record written before a preset or a limit changed: its cells and runs are still listed)."""

    id: str
    created: float  # seconds since the epoch
    preset: str
    fields: tuple[str, ...]
    seeds: tuple[int, ...]
    cells: tuple[SweepCell, ...]
    owner: str | None  # the token of the student session that launched it (roles.owner_token); None: the presenter's
    spec: Mapping[str, Any]

    @property
    def run_ids(self) -> list[str]:
        return [cell.run_id for cell in self.cells]

    def values(self, field: str) -> list[Any]:
        """The values swept for `field`, in the grid's order (a table's row or column labels)."""
        return list(dict.fromkeys(cell.settings[field] for cell in self.cells))

    def load_spec(self) -> SweepSpec:
        return SweepSpec.from_dict(self.spec)

    def to_dict(self) -> dict[str, Any]:
        return {"version": RECORD_VERSION, "id": self.id, "created": self.created, "preset": self.preset,
                "fields": list(self.fields), "seeds": list(self.seeds), "owner": self.owner, "spec": dict(self.spec),
                "cells": [{"name": c.name, "settings": dict(c.settings), "seed": c.seed, "run_id": c.run_id}
                          for c in self.cells]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Sweep:
        """Raises one of folder.DAMAGED for a record that is not one: every cell must name a run and set every swept
        field (the Explore page tabulates cells by them)."""
        cells = tuple(SweepCell(str(c["name"]), dict(c["settings"]), int(c["seed"]), str(c["run_id"]))
                      for c in data["cells"])
        fields = tuple(map(str, data["fields"]))
        if not all(is_run_id(c.run_id) for c in cells):
            raise ValueError("a cell's run id is not a run id")
        if missing := next((f for c in cells for f in fields if f not in c.settings), None):
            raise KeyError(f"a cell does not set the swept field {missing!r}")
        owner = data.get("owner")
        created = float(data["created"])
        if not math.isfinite(created):
            raise ValueError(f"created is {created}")
        return cls(str(data["id"]), created, str(data["preset"]), fields, tuple(int(s) for s in data["seeds"]), cells,
                   None if owner is None else str(owner), dict(data.get("spec") or {}))


def sweeps_dir(runs_dir: str | os.PathLike) -> Path:
    return Path(runs_dir) / SWEEPS_DIR


def launch(manager: RunManager, spec: SweepSpec, name: str | None = None, *, actor: Actor = LOCAL) -> Sweep:
    """Start every cell's run (all or none: RunManager.start_many checks the actor's quota and the queue for all of them)
    and write the sweep's record. Returns the sweep; its runs queue behind the manager's workers."""
    cells = spec.cells()
    folder = sweeps_dir(manager.runs_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError("sweep", f"cannot create {folder}: {err.strerror or err}") from None
    with _ids_lock:
        sweep_id = _new_id(folder, name or spec.preset)
        atomic_write_bytes(folder / f"{sweep_id}.json", b"{}")  # holds the id; replaced below, removed if refused
    try:
        run_ids = manager.start_many([(c.config, _run_name(spec, c.config)) for c in cells], actor=actor)
    except BaseException:
        (folder / f"{sweep_id}.json").unlink(missing_ok=True)
        raise
    sweep = Sweep(sweep_id, time.time(), spec.preset, spec.fields, spec.seeds,
                  tuple(SweepCell(c.name, spec.settings(c.config), c.config.seed, run_id)
                        for c, run_id in zip(cells, run_ids, strict=True)),
                  actor.owner, spec.to_dict())
    try:
        atomic_write_bytes(folder / f"{sweep_id}.json", json.dumps(sweep.to_dict(), indent=1).encode())
    except OSError as err:  # the runs train and are listed as runs; only the sweep's table is lost
        (folder / f"{sweep_id}.json").unlink(missing_ok=True)
        raise ConfigError("sweep", f"its {len(run_ids)} runs started, but its record could not be written "
                                   f"({err.strerror or err}): they are listed as separate runs") from None
    return sweep


def _new_id(folder: Path, name: str) -> str:
    base = f"{sanitize_name(name)[:_RUN_NAME_CHARS]}-{time.strftime('%Y%m%d-%H%M%S')}"
    sweep_id, n = base, 2
    while (folder / f"{sweep_id}.json").exists():
        sweep_id, n = f"{base}-{n}", n + 1
    return sweep_id


def _run_name(spec: SweepSpec, config: Any) -> str:
    """A cell's run name: its grid values and seed, short (e.g. lr_g-0-001-tanh-s0)."""
    parts = [f"{name}-{shown(getattr(config, name))}" if i == 0 else shown(getattr(config, name))
             for i, name in enumerate(spec.fields)]
    return sanitize_name("-".join([*parts, f"s{config.seed}"]))[:_RUN_NAME_CHARS].strip("-_") or "sweep"


def list_sweeps(runs_dir: str | os.PathLike) -> list[Sweep]:
    """Every sweep recorded in the runs folder, newest first; an unreadable record is logged and left out."""
    folder = sweeps_dir(runs_dir)
    try:
        paths = sorted(folder.glob("*.json"))
    except OSError:
        return []
    sweeps = [s for s in (_read(p) for p in paths) if s is not None]
    return sorted(sweeps, key=lambda s: (s.created, s.id), reverse=True)


def load_sweep(runs_dir: str | os.PathLike, sweep_id: str) -> Sweep:
    """The sweep named `sweep_id`; ConfigError when there is none (or its record cannot be read)."""
    if not is_run_id(sweep_id):  # also keeps a name from a URL from naming a file outside the folder
        raise ConfigError("sweep", f"{clip(repr(sweep_id))} is not a sweep id")
    sweep = _read(sweeps_dir(runs_dir) / f"{sweep_id}.json")
    if sweep is None:
        raise ConfigError("sweep", f"no readable sweep named {sweep_id!r} in {runs_dir}")
    return sweep


def _read(path: Path) -> Sweep | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except DAMAGED as err:
        log.warning("sweep record %s cannot be read (%s: %s): not listed", path, type(err).__name__, err)
        return None
    if data == {}:  # a launch in progress (or one cut short before its runs started): no sweep yet
        return None
    try:
        return Sweep.from_dict(data)
    except DAMAGED as err:
        log.warning("sweep record %s is not a sweep (%s: %s): not listed", path, type(err).__name__, err)
        return None
