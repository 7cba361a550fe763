"""A lesson's comparison as the server's: started by anyone, shown to everyone, kept across restarts.

Every browser on a lesson page shows the latest comparison of that kind whose runs still exist. Pressing the button while
an identical comparison (the same configs) is queued, running, paused or finished shows that one instead of training it
again, so thirty students pressing it at once cost nothing; "Run it again" asks for a new seed explicitly.

What was started is kept in `<runs_dir>/comparisons.json`, rewritten atomically after each change, so a reload, a
restart or a `kill -9` shows the same comparison. The file only names runs: a damaged or missing file is no comparison,
and a comparison whose runs were deleted is none (the runs folder is the truth, the file an index into it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gan_core.config import ConfigError, TrainConfig
from gan_core.lessons.comparisons import COMPARISONS, Comparison
from gan_core.runs.folder import DAMAGED, atomic_write_bytes, is_run_id, read_json_section
from gan_core.runs.manager import RunManager
from gan_core.runs.roles import LOCAL, Actor
from gan_core.runs.status import Status

log = logging.getLogger(__name__)

COMPARISONS_FILE = "comparisons.json"
HISTORY = 20  # comparisons remembered per kind: older ones are only runs in the folder
# What "already there" means: a stopped, diverged or failed comparison is trained again instead of shown
REUSABLE = frozenset({Status.QUEUED, Status.RUNNING, Status.PAUSED, Status.FINISHED})


def fingerprint(configs: Mapping[str, TrainConfig]) -> str:
    """Which runs a comparison trains, as one short string: equal configs under equal labels, equal fingerprints."""
    text = json.dumps({label: c.to_dict() for label, c in configs.items()}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SharedComparison:
    """One comparison as started on this server: its runs, by variant label."""

    name: str
    seed: int
    runs: dict[str, str]  # label -> run id, in the comparison's order
    fingerprint: str
    started: float  # seconds since the epoch
    reused: bool = False  # start() found it already there instead of training it again

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed, "runs": self.runs, "fingerprint": self.fingerprint, "started": self.started}


def _entry(name: str, raw: Any) -> SharedComparison:
    """One entry of the file, checked (it is read back from disk: a hand edit or a torn disk may have changed it)."""
    runs = raw["runs"]
    if not (isinstance(runs, dict) and runs and all(isinstance(k, str) and isinstance(v, str) and is_run_id(v)
                                                     for k, v in runs.items())):
        raise ValueError("runs must map labels to run ids")
    started = float(raw["started"])
    if not math.isfinite(started):  # 1e999 reads as inf: no time to show
        raise ValueError(f"started is {started}")
    return SharedComparison(name, int(raw["seed"]), dict(runs), str(raw["fingerprint"]), started)


class SharedComparisons:
    """The server's comparisons over one RunManager; thread-safe (every browser session calls it)."""

    def __init__(self, manager: RunManager, comparisons: Mapping[str, Comparison] | None = None) -> None:
        self.manager = manager
        self.comparisons = COMPARISONS if comparisons is None else comparisons
        self.path = manager.runs_dir / COMPARISONS_FILE
        self._lock = threading.Lock()
        self._shown: dict[str, list[SharedComparison]] = {}  # per kind, oldest first
        self._last_seed: dict[str, int] = {}
        self._load()

    def _comparison(self, name: str) -> Comparison:
        if name not in self.comparisons:
            raise ConfigError("comparison", f"unknown comparison {name!r}; choose one of: {', '.join(self.comparisons)}")
        return self.comparisons[name]

    # -- the file ------------------------------------------------------------------------------------------------------
    def _load(self) -> None:
        """Read the file; anything unreadable in it is no comparison (logged), never an error for the page."""
        kinds = read_json_section(self.path, "comparisons", "no comparison is shown until one is started")
        if kinds is None:
            return
        for name, kind in kinds.items():
            try:
                self._shown[str(name)] = [_entry(str(name), raw) for raw in kind["shown"]][-HISTORY:]
                self._last_seed[str(name)] = int(kind["last_seed"])
            except DAMAGED as err:
                log.warning("%s: the %r comparisons cannot be read (%s): skipped", self.path, name, err)
                self._shown.pop(str(name), None)

    def _save(self) -> None:
        """Rewrite the file (called holding _lock). A write that fails keeps the comparison for this server's life."""
        data = {"comparisons": {name: {"last_seed": self._last_seed.get(name, 0),
                                       "shown": [entry.to_json() for entry in shown]}
                                for name, shown in self._shown.items()}}
        try:
            atomic_write_bytes(self.path, json.dumps(data, indent=1).encode())
        except OSError as err:
            log.warning("cannot save the lesson comparisons: %s", err)

    # -- what is shown -------------------------------------------------------------------------------------------------
    def _exists(self, entry: SharedComparison) -> bool:
        return all(run_id in self.manager for run_id in entry.runs.values())

    def _reusable(self, entry: SharedComparison) -> bool:
        """Already there: every run queued, running, paused or finished; or one still active (a comparison half
        stopped, or half brought back by a restart, is shown rather than trained beside itself)."""
        try:
            statuses = [self.manager.status(run_id) for run_id in entry.runs.values()]
            return all(s in REUSABLE for s in statuses) or any(s.active for s in statuses)
        except ConfigError:  # deleted between the two looks: not there, so not reusable
            return False

    def current(self, name: str) -> SharedComparison | None:
        """The comparison every browser shows: the latest of this kind whose runs all still exist."""
        self._comparison(name)
        self.manager.scan()  # folders restored or removed by hand are seen as the sidebar sees them
        with self._lock:
            shown = self._shown.get(name, [])
            return next((entry for entry in reversed(shown) if self._exists(entry)), None)

    def start(self, name: str, *, actor: Actor = LOCAL, again: bool = False) -> SharedComparison:
        """Show this comparison to everyone, training it only if it is not already there.

        Without `again`: an identical comparison (the base seed's configs) that is queued, running, paused or finished
        is made the shown one and returned with reused=True. With `again`: a new seed, unless the shown comparison is
        still active (another browser pressed "Run it again" a moment ago), which is returned with reused=True.
        Raises RunRefused (the actor's quota, the queue's bound) or ConfigError as RunManager.start_many does.
        """
        comparison = self._comparison(name)
        with self._lock:  # two presses at once: the second finds the first's runs
            shown = self._shown.setdefault(name, [])
            if again:
                latest = next((e for e in reversed(shown) if self._exists(e)), None)
                if latest is not None and self._active(latest):
                    return self._show(latest)
                seed = max(self._last_seed.get(name, comparison.base.seed), comparison.base.seed) + 1
            else:
                seed = comparison.base.seed
                wanted = fingerprint(comparison.configs(seed))
                same = [e for e in shown if e.fingerprint == wanted and self._exists(e) and self._reusable(e)]
                if same:
                    return self._show(same[-1])
            configs = comparison.configs(seed)
            suffix = "" if seed == comparison.base.seed else f"-seed{seed}"
            ids = self.manager.start_many([(config, f"{name}-{label}{suffix}") for label, config in configs.items()],
                                          actor=actor)
            entry = SharedComparison(name, seed, dict(zip(configs, ids, strict=True)), fingerprint(configs), time.time())
            shown.append(entry)
            del shown[:-HISTORY]
            self._last_seed[name] = max(seed, self._last_seed.get(name, seed))
            self._save()
            return entry

    def _active(self, entry: SharedComparison) -> bool:
        try:
            return any(self.manager.status(run_id).active for run_id in entry.runs.values())
        except ConfigError:  # deleted meanwhile: not active
            return False

    def _show(self, entry: SharedComparison) -> SharedComparison:
        """Make `entry` the latest of its kind (called holding _lock) and return it marked as reused."""
        shown = self._shown[entry.name]
        if shown[-1] is not entry:
            shown.remove(entry)
            shown.append(entry)
            self._save()
        return SharedComparison(entry.name, entry.seed, entry.runs, entry.fingerprint, entry.started, reused=True)
