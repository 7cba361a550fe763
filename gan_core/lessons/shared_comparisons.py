"""A lesson's comparison as the room's: started by anyone, shown to everyone, kept across restarts.

Every browser on a lesson page shows the latest comparison of that kind whose runs still exist. Pressing the button while
an identical comparison (the same configs) is queued, running, paused or finished shows that one instead of training it
again, so thirty students pressing it at once cost nothing; "Run it again" asks for a new seed explicitly.

What was started is a row of the classroom store (gan_core.classroom.store), so every app process on the runs folder
shows the same comparison, and a reload, a restart or a `kill -9` too. A press claims its comparison first (a row
without runs yet) under the room's write lock: a press in another process meanwhile waits for those runs instead of
training them again. A row only names runs: a comparison whose runs were deleted is none (the runs folder is the truth,
the store an index into it). `comparisons.json`, from before the store, is read once and kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gan_core.classroom.recent import Recent
from gan_core.classroom.store import Cursor
from gan_core.config import ConfigError, TrainConfig
from gan_core.lessons.comparisons import COMPARISONS, Comparison
from gan_core.runs.folder import DAMAGED, is_run_id, read_json_section
from gan_core.runs.manager import RunManager
from gan_core.runs.roles import LOCAL, Actor
from gan_core.runs.status import Status

log = logging.getLogger(__name__)

COMPARISONS_FILE = "comparisons.json"
HISTORY = 20  # comparisons remembered per kind: older ones are only runs in the folder
# What "already there" means: a stopped, diverged or failed comparison is trained again instead of shown
REUSABLE = frozenset({Status.QUEUED, Status.RUNNING, Status.PAUSED, Status.FINISHED})
CLAIM_S = 30.0  # a press's claim (a row without runs) older than this was left by a process that died: ignored
CLAIM_POLL_S = 0.2
FRESH_S = 0.25  # the comparison shown, as read this recently (another process's press shows this much later)
SCHEMA = (
    # one row per comparison started; `shown` orders them (the latest shown is the one every browser shows)
    "CREATE TABLE IF NOT EXISTS comparisons (id TEXT PRIMARY KEY, name TEXT NOT NULL, seed INTEGER NOT NULL, "
    "runs TEXT NOT NULL, fingerprint TEXT NOT NULL, started DOUBLE PRECISION NOT NULL, "
    "shown DOUBLE PRECISION NOT NULL)",
)


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
    id: str = ""  # its row in the store


def _entry(name: str, raw: Any, row_id: str = "") -> SharedComparison:
    """One entry of the file, checked (it is read back from disk: a hand edit or a torn disk may have changed it)."""
    runs = raw["runs"]
    if not (isinstance(runs, dict) and runs and all(isinstance(k, str) and isinstance(v, str) and is_run_id(v)
                                                     for k, v in runs.items())):
        raise ValueError("runs must map labels to run ids")
    started = float(raw["started"])
    if not math.isfinite(started):  # 1e999 reads as inf: no time to show
        raise ValueError(f"started is {started}")
    return SharedComparison(name, int(raw["seed"]), dict(runs), str(raw["fingerprint"]), started, id=row_id)


class SharedComparisons:
    """The room's comparisons over one RunManager (rows of its classroom store); thread-safe."""

    def __init__(self, manager: RunManager, comparisons: Mapping[str, Comparison] | None = None) -> None:
        self.manager = manager
        self.comparisons = COMPARISONS if comparisons is None else comparisons
        self.path = manager.runs_dir / COMPARISONS_FILE  # read once, into the store, on the room's first start
        self.store = manager.store
        self._lock = threading.Lock()  # this process's presses, one at a time (the store orders the processes')
        # every browser on a lesson reads which comparison is shown on each run: one read per process per FRESH_S
        self._recent: Recent[list[SharedComparison]] = Recent(FRESH_S)
        self.store.ensure("comparisons", SCHEMA)
        self.store.import_once(COMPARISONS_FILE, self._read_file)

    def _comparison(self, name: str) -> Comparison:
        if name not in self.comparisons:
            raise ConfigError("comparison", f"unknown comparison {name!r}; choose one of: {', '.join(self.comparisons)}")
        return self.comparisons[name]

    # -- the store -----------------------------------------------------------------------------------------------------
    def _read_file(self, cursor: Cursor) -> None:
        """comparisons.json, from before the room had a store: anything unreadable in it is no comparison (logged)."""
        kinds = read_json_section(self.path, "comparisons", "no comparison is shown until one is started")
        for name, kind in (kinds or {}).items():
            try:
                entries = [_entry(str(name), raw) for raw in kind["shown"]][-HISTORY:]
            except DAMAGED as err:
                log.warning("%s: the %r comparisons cannot be read (%s): skipped", self.path, name, err)
                continue
            for order, entry in enumerate(entries):  # shown in the file's order, the last one latest
                _insert(cursor, entry, shown=entry.started + order * 1e-6)

    def _rows(self, cursor: Cursor, name: str) -> tuple[list[SharedComparison], list[str]]:
        """The kind's comparisons, latest shown last; and the ids of live claims (presses still starting their runs)."""
        cursor.execute("SELECT id, seed, runs, fingerprint, started FROM comparisons WHERE name = ? ORDER BY shown",
                       (name,))
        entries, claims = [], []
        for row_id, seed, runs, mark, started in cursor.fetchall():
            raw = {"seed": seed, "runs": json.loads(runs), "fingerprint": mark, "started": started}
            if not raw["runs"]:
                if time.time() - started < CLAIM_S:
                    claims.append(row_id)
                continue
            try:
                entries.append(_entry(name, raw, row_id))
            except DAMAGED as err:
                log.warning("the stored %r comparison %s cannot be read (%s): skipped", name, row_id, err)
        return entries, claims

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
        shown = self._recent.get(name, lambda: self._shown(name))
        return next((entry for entry in reversed(shown) if self._exists(entry)), None)

    def _shown(self, name: str) -> list[SharedComparison]:
        with self.store.transaction(write=False) as cursor:
            return self._rows(cursor, name)[0]

    def start(self, name: str, *, actor: Actor = LOCAL, again: bool = False) -> SharedComparison:
        """Show this comparison to everyone, training it only if it is not already there.

        Without `again`: an identical comparison (the base seed's configs) that is queued, running, paused or finished
        is made the shown one and returned with reused=True. With `again`: a new seed, unless the shown comparison is
        still active (another browser pressed "Run it again" a moment ago), which is returned with reused=True.
        Raises RunRefused (the actor's quota, the queue's bound) or ConfigError as RunManager.start_many does.
        """
        comparison = self._comparison(name)
        with self._lock:
            deadline = time.monotonic() + CLAIM_S
            while True:
                decided = self._claim_or_reuse(name, comparison, again)
                if decided is not None:
                    break
                if time.monotonic() > deadline:  # a claim that never filled (its process died): ours now
                    decided = self._claim_or_reuse(name, comparison, again, ignore_claims=True)
                    break
                time.sleep(CLAIM_POLL_S)  # another process is starting this kind's runs: show those
            if isinstance(decided, SharedComparison):
                return decided
            claim, seed = decided
            configs = comparison.configs(seed)
            suffix = "" if seed == comparison.base.seed else f"-seed{seed}"
            try:
                ids = self.manager.start_many([(config, f"{name}-{label}{suffix}") for label, config in configs.items()],
                                              actor=actor)
            except BaseException:
                with self._recent.writing(self.store.transaction()) as cursor:
                    cursor.execute("DELETE FROM comparisons WHERE id = ?", (claim,))
                raise
            runs = dict(zip(configs, ids, strict=True))
            with self._recent.writing(self.store.transaction()) as cursor:
                cursor.execute("UPDATE comparisons SET runs = ? WHERE id = ?", (json.dumps(runs), claim))
                cursor.execute("SELECT id FROM comparisons WHERE name = ? ORDER BY shown DESC", (name,))
                for (old,) in cursor.fetchall()[HISTORY:]:
                    cursor.execute("DELETE FROM comparisons WHERE id = ?", (old,))
            return SharedComparison(name, seed, runs, fingerprint(configs), time.time(), id=claim)

    def _claim_or_reuse(self, name: str, comparison: Comparison, again: bool,
                        ignore_claims: bool = False) -> SharedComparison | tuple[str, int] | None:
        """Under the room's write lock: the comparison to show again (reused), or a claim (its row id) and the seed to
        train; None while another process's claim on this kind is still starting its runs."""
        self.manager.scan()
        with self._recent.writing(self.store.transaction()) as cursor:
            shown, claims = self._rows(cursor, name)
            if claims and not ignore_claims:
                return None
            cursor.execute("SELECT MAX(seed) FROM comparisons WHERE name = ?", (name,))
            last_seed = cursor.fetchall()[0][0]
            if again:
                latest = next((e for e in reversed(shown) if self._exists(e)), None)
                if latest is not None and self._active(latest):
                    return self._show(cursor, latest)
                seed = max(comparison.base.seed if last_seed is None else int(last_seed), comparison.base.seed) + 1
            else:
                seed = comparison.base.seed
                wanted = fingerprint(comparison.configs(seed))
                same = [e for e in shown if e.fingerprint == wanted and self._exists(e) and self._reusable(e)]
                if same:
                    return self._show(cursor, same[-1])
            claim = SharedComparison(name, seed, {}, fingerprint(comparison.configs(seed)), time.time(),
                                     id=uuid.uuid4().hex)
            _insert(cursor, claim, shown=claim.started)
            return claim.id, seed

    def _active(self, entry: SharedComparison) -> bool:
        try:
            return any(self.manager.status(run_id).active for run_id in entry.runs.values())
        except ConfigError:  # deleted meanwhile: not active
            return False

    @staticmethod
    def _show(cursor: Cursor, entry: SharedComparison) -> SharedComparison:
        """Make `entry` the latest of its kind and return it marked as reused."""
        cursor.execute("UPDATE comparisons SET shown = ? WHERE id = ?", (time.time(), entry.id))
        return SharedComparison(entry.name, entry.seed, entry.runs, entry.fingerprint, entry.started, reused=True,
                                id=entry.id)


def _insert(cursor: Cursor, entry: SharedComparison, shown: float) -> None:
    cursor.execute("INSERT INTO comparisons (id, name, seed, runs, fingerprint, started, shown) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)", (entry.id or uuid.uuid4().hex, entry.name, entry.seed,
                                                    json.dumps(entry.runs), entry.fingerprint, entry.started, shown))
