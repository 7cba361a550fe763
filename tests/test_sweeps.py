"""gan_core.sweeps: a grid's validation (every way a grid can be wrong is one line naming the field), its cells, a sweep
launched through the RunManager and listed again after a restart, and each cell's outcomes, evaluated once and cached."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

from gan_core.config import ConfigError, GObjective, get_preset
from gan_core.evaluation import evaluate as evaluate_module
from gan_core.runs.manager import RunManager
from gan_core.runs.roles import Actor, RunRefused, owner_token
from gan_core.runs.status import Status
from gan_core.sweeps import outcomes
from gan_core.sweeps.record import SWEEPS_DIR, Sweep, SweepCell, launch, list_sweeps, load_sweep
from gan_core.sweeps.spec import MAX_CELLS, SweepSpec, parse_grid, parse_seeds

pytestmark = pytest.mark.usefixtures("one_thread")

# what tests/tiny.py's TINY sets, as a sweep's fixed fields: a ring run of 40 steps takes well under a second
TINY = {"g_width": 16, "d_width": 16, "batch_size": 32, "steps": 40, "checkpoint_every": 20, "probe_every": 5,
        "sample_every": 10, "n_samples": 32}


def spec(grid=None, seeds=(0,), fixed=None, preset="ring-bce") -> SweepSpec:
    return SweepSpec.of(preset, {"lr_g": [1e-3, 5e-4]} if grid is None else grid, seeds,
                        TINY if fixed is None else fixed)


@pytest.fixture
def manager(tmp_path: Path):
    m = RunManager(tmp_path / "runs", max_runs=2, processes=False)
    yield m
    m.shutdown()


# -- the spec ----------------------------------------------------------------------------------------------------------
def test_cells_cover_the_grid_in_order():
    s = spec({"lr_g": ["1e-3", 5e-4], "g_activation": ["relu", "leaky-relu"]}, seeds=[0, 1])
    cells = s.cells()
    assert s.size == len(cells) == 8
    assert s.fields == ("lr_g", "g_activation")
    assert cells[0].name == "lr_g=0.001 · g_activation=relu · seed 0"
    assert cells[1].name == "lr_g=0.001 · g_activation=relu · seed 1"  # the seed varies fastest, then the last field
    assert cells[-1].name == "lr_g=0.0005 · g_activation=leaky_relu · seed 1"
    last = cells[-1].config
    assert (last.lr_g, last.g_activation.value, last.seed, last.steps, last.g_width) == (5e-4, "leaky_relu", 1, 40, 16)
    assert last.lr_d == get_preset("ring-bce").config.lr_d  # everything else is the preset's
    assert s.settings(last) == {"lr_g": 5e-4, "g_activation": "leaky_relu"}
    assert len({c.config for c in cells}) == 8


def test_spec_round_trips_through_its_dict():
    s = spec({"g_objective": ["minimax", "non_saturating"]}, seeds=[3])
    again = SweepSpec.from_dict(json.loads(json.dumps(s.to_dict())))
    assert again == s
    assert again.grid == (("g_objective", (GObjective.MINIMAX, GObjective.NON_SATURATING)),)


@pytest.mark.parametrize(("grid", "seeds", "fixed", "field", "needle"), [
    ({"learning_rate": [1e-3]}, [0], {}, "learning_rate", "unknown field; known fields are"),
    ({"lr_g": ["fast"]}, [0], {}, "lr_g", "'fast' is not a number"),
    ({"lr_g": [5.0]}, [0], {}, "lr_g", "outside the allowed range 1e-07 to 1"),
    ({"g_activation": ["swish"]}, [0], {}, "g_activation", "is not one of: relu, leaky_relu"),
    ({"g_depth": [2.5]}, [0], {}, "g_depth", "is not an integer"),
    ({"lr_g": []}, [0], {}, "lr_g", "no values to sweep"),
    ([("lr_g", [1e-3]), ("lr_g", [2e-3])], [0], {}, "lr_g", "given twice in the grid"),
    ({"lr_g": ["1e-3", 0.001]}, [0], {}, "lr_g", "0.001 is listed twice"),
    ({}, [0], {}, "grid", "give one or two fields"),
    ({"lr_g": [1e-3], "lr_d": [1e-3], "z_dim": [8]}, [0], {}, "grid", "at most 2 fields"),
    ({"lr_g": [i / 1000 for i in range(1, 9)], "lr_d": [i / 1000 for i in range(1, 9)]}, [0, 1], {}, "grid",
     f"8 lr_g values × 8 lr_d values × 2 seeds make 128 cells (runs); at most {MAX_CELLS}"),
    ({"seed": [1, 2]}, [0], {}, "seed", "not as a grid field"),
    ({"lr_g": [1e-3]}, [], {}, "seeds", "no seeds"),
    ({"lr_g": [1e-3]}, [1, 1], {}, "seeds", "1 is listed twice"),
    ({"lr_g": [1e-3]}, [-1], {}, "seed", "outside the allowed range"),
    ({"lr_g": [1e-3]}, [0], {"lr_g": 1e-4}, "lr_g", "both fixed (--set) and swept"),
    ({"lr_g": [1e-3]}, [0], {"seed": 4}, "seed", "seeds are given as seeds"),
    ({"lr_g": [1e-3]}, [0], {"z_dim": 0}, "z_dim", "outside the allowed range"),
    ({"loss": ["bce", "wgan_gp"]}, [0], {"g_objective": "minimax"}, "g_objective", "minimax only applies to loss=bce"),
])
def test_a_bad_grid_is_one_line_naming_the_field(grid, seeds, fixed, field, needle):
    with pytest.raises(ConfigError) as caught:
        SweepSpec.of("ring-bce", grid, seeds, fixed)
    message = str(caught.value)
    assert "\n" not in message
    assert caught.value.field == field, message
    assert message.startswith(f"{field}: ") and needle in message, message


def test_a_combination_the_config_refuses_names_its_field():
    with pytest.raises(ConfigError, match=r"^arch: dcgan needs 28×28 images"):
        SweepSpec.of("digits", {"arch": ["mlp", "dcgan"]})
    with pytest.raises(ConfigError, match=r"^preset: unknown preset 'nope'"):
        SweepSpec.of("nope", {"lr_g": [1e-3]})


def test_a_huge_list_is_refused_before_its_values_are_read():
    with pytest.raises(ConfigError, match=r"1,000,000 lr_g values × 1 seed make 1,000,000 cells"):
        SweepSpec.of("ring-bce", {"lr_g": ["x"] * 1_000_000})


def test_grid_and_seed_texts():
    assert parse_grid(["lr_g=1e-3, 2e-4", "g_activation=relu"]) == [("lr_g", ["1e-3", "2e-4"]),
                                                                    ("g_activation", ["relu"])]
    assert parse_grid(["lr_g="]) == [("lr_g", [])]  # SweepSpec then says it has no values
    assert parse_seeds("0, 1,2") == [0, 1, 2]
    for text, match in [("lr_g", r"^--grid: 'lr_g' is not FIELD=v1,v2"), ("=1,2", r"^--grid: '=1,2' is not"),
                        ("lr_g=1,,2", r"^lr_g: an empty value in '1,,2'")]:
        with pytest.raises(ConfigError, match=match):
            parse_grid([text])
    with pytest.raises(ConfigError, match=r"^seeds: 'one' is not a whole number; give seeds as 0,1,2"):
        parse_seeds("0,one")


# -- launched through a manager ----------------------------------------------------------------------------------------
def test_a_four_cell_sweep_end_to_end(manager: RunManager, tmp_path: Path):
    s = spec(seeds=[0, 1])
    sweep = launch(manager, s, "lr sweep")
    assert sweep.id.startswith("lr-sweep-") and len(sweep.cells) == 4
    assert [c.run_id for c in sweep.cells] == sweep.run_ids and all(r in manager for r in sweep.run_ids)
    assert sweep.values("lr_g") == [1e-3, 5e-4]
    assert (manager.runs_dir / SWEEPS_DIR / f"{sweep.id}.json").is_file()
    seen = []
    rows = outcomes.follow(manager, sweep, seen.append, poll_s=0.05, timeout=120)
    assert sorted(r.cell.run_id for r in seen) == sorted(sweep.run_ids)  # each cell reported once, as it ended
    assert [r.cell for r in rows] == list(sweep.cells)
    for r in rows:
        assert r.status is Status.FINISHED and r.step == 40 and r.ended
        assert r.figures().keys() == {"modes_covered", "modes_total", "high_quality_fraction"}
        assert r.outcomes["modes_total"] == 8 and 0 <= r.outcomes["modes_covered"] <= 8
        assert r.describe().startswith("modes ") and "high quality" in r.describe()
        assert (manager.runs_dir / r.cell.run_id / outcomes.OUTCOMES_FILE).is_file()
    csv_path, json_path = outcomes.write_summary(tmp_path, sweep, rows)
    table = list(csv.DictReader(csv_path.open()))
    assert [t["run_id"] for t in table] == sweep.run_ids
    assert list(table[0])[:7] == ["cell", "lr_g", "seed", "run_id", "status", "step", "message"]
    assert {t["status"] for t in table} == {"finished"} and {t["seed"] for t in table} == {"0", "1"}
    assert [float(t["high_quality_fraction"]) for t in table] == [r.outcomes["high_quality_fraction"] for r in rows]
    summary = json.loads(json_path.read_text())
    assert summary["sweep"]["id"] == sweep.id and summary["rows"][0]["outcomes"]["reverse_kl"] >= 0


def test_a_sweep_is_listed_again_after_a_restart(manager: RunManager):
    sweep = launch(manager, spec())
    outcomes.follow(manager, sweep, poll_s=0.05, timeout=120)
    manager.shutdown()
    again = RunManager(manager.runs_dir, max_runs=1, processes=False)
    try:
        assert [s.id for s in list_sweeps(again.runs_dir)] == [sweep.id]
        loaded = load_sweep(again.runs_dir, sweep.id)
        assert loaded == sweep and loaded.load_spec() == spec()
        rows = outcomes.rows(again, loaded, evaluate=False)  # read from the cache the first manager's follow wrote
        assert [r.status for r in rows] == [Status.FINISHED] * 2 and all(r.outcomes for r in rows)
    finally:
        again.shutdown()


def test_outcomes_are_cached_until_the_checkpoint_changes(manager: RunManager, monkeypatch: pytest.MonkeyPatch):
    sweep = launch(manager, spec({"lr_g": [1e-3]}))
    first = outcomes.follow(manager, sweep, poll_s=0.05, timeout=120)[0].outcomes
    calls = []
    real = evaluate_module.evaluate_run
    monkeypatch.setattr(outcomes, "evaluate_run", lambda *a, **k: calls.append(1) or real(*a, **k))
    run_dir = manager.runs_dir / sweep.run_ids[0]
    assert outcomes.run_outcomes(run_dir) == first and calls == []  # a page's next look reads the cache
    checkpoint = run_dir / "checkpoint.pt"
    stat = checkpoint.stat()
    os.utime(checkpoint, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # as a resumed run rewrites it
    assert outcomes.run_outcomes(run_dir) == first and calls == [1]  # same weights, same fixed seed: same numbers
    os.utime(checkpoint, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    assert outcomes.run_outcomes(run_dir, compute=False) is None and calls == [1]  # stale: a page's cheap look
    assert outcomes.rows(manager, sweep, evaluate=False)[0].outcomes is None and calls == [1]
    (run_dir / outcomes.OUTCOMES_FILE).write_text("{not json")
    assert outcomes.run_outcomes(run_dir) == first and calls == [1, 1]


def test_a_digits_cell_has_classes_covered_and_fcd(manager: RunManager):
    fixed = {"g_width": 16, "d_width": 16, "batch_size": 32, "steps": 20, "checkpoint_every": 20, "n_samples": 16}
    sweep = launch(manager, SweepSpec.of("digits", {"g_batchnorm": [True]}, fixed=fixed))
    [r] = outcomes.follow(manager, sweep, poll_s=0.05, timeout=180)
    assert r.figures().keys() == {"classes_covered", "fcd"}
    assert 0 <= r.outcomes["classes_covered"] <= 10 and r.outcomes["fcd"] >= 0
    assert r.describe().startswith("classes ") and "/10 · FCD " in r.describe()


def test_a_students_sweep_over_the_quota_starts_nothing(tmp_path: Path):
    m = RunManager(tmp_path / "runs", max_runs=1, processes=False, session_runs=2)
    try:
        with pytest.raises(RunRefused, match="this needs 4 runs at once; a student may have 2 active runs"):
            launch(m, spec(seeds=[0, 1]), actor=Actor("student-1", presenter=False))
        assert m.ids() == [] and list_sweeps(m.runs_dir) == []
        assert list((m.runs_dir / SWEEPS_DIR).iterdir()) == []  # no placeholder left behind
        sweep = launch(m, spec({"lr_g": [1e-3]}, seeds=[0, 1]), actor=Actor("student-1", presenter=False))
        token = owner_token("student-1")
        assert sweep.owner == token and {m.owner(r) for r in sweep.run_ids} == {token}
        assert "student-1" not in (m.runs_dir / SWEEPS_DIR / f"{sweep.id}.json").read_text()
        for run_id in sweep.run_ids:
            m.stop(run_id)
    finally:
        m.shutdown()


def test_deleted_runs_and_damaged_records(manager: RunManager, caplog: pytest.LogCaptureFixture):
    sweep = launch(manager, spec())
    outcomes.follow(manager, sweep, poll_s=0.05, timeout=120)
    manager.delete(sweep.run_ids[0])
    rows = outcomes.rows(manager, sweep)
    assert rows[0].status is None and rows[0].outcomes is None and rows[0].ended
    assert outcomes.table(sweep, rows)[0]["status"] == "deleted" and rows[1].status is Status.FINISHED
    folder = manager.runs_dir / SWEEPS_DIR
    (folder / "broken-1.json").write_text("{\"id\": 3")
    (folder / "other-1.json").write_text(json.dumps({"id": "x", "cells": [{"run_id": "../etc"}]}))
    assert [s.id for s in list_sweeps(manager.runs_dir)] == [sweep.id]  # the others are logged and left out
    assert "broken-1.json cannot be read" in caplog.text and "other-1.json is not a sweep" in caplog.text
    for bad in ("../runs", "broken-1", "missing-2"):
        with pytest.raises(ConfigError, match=r"^sweep: "):
            load_sweep(manager.runs_dir, bad)


def test_outcome_grid_averages_seeds_per_grid_point():
    s = spec({"lr_g": [1e-3, 5e-4], "g_activation": ["relu", "tanh", "elu"]}, seeds=[0, 1])
    cells = tuple(SweepCell(c.name, s.settings(c.config), c.config.seed, f"run-{i}") for i, c in enumerate(s.cells()))
    sweep = Sweep("grid-1", 0.0, s.preset, s.fields, s.seeds, cells, None, s.to_dict())
    covered = {"run-0": 2, "run-1": 4, "run-2": 8, "run-6": 5}  # the others (run-3: tanh, seed 1, …) have none yet
    rows = [outcomes.CellRow(c, Status.FINISHED, 40, "", {"modes_covered": covered[c.run_id]} if c.run_id in covered
                             else None) for c in cells]
    grid = outcomes.outcome_grid(sweep, rows, "modes_covered")
    assert (grid.row_field, grid.row_values) == ("lr_g", (1e-3, 5e-4))
    assert (grid.column_field, grid.column_values) == ("g_activation", ("relu", "tanh", "elu"))
    assert grid.mean[0, 0] == 3.0 and grid.seeds[0, 0] == 2  # run-0 and run-1: relu, seeds 0 and 1
    assert grid.mean[0, 1] == 8.0 and grid.seeds[0, 1] == 1  # run-2 alone: tanh seed 0
    assert grid.mean[1, 0] == 5.0  # run-6: lr 5e-4, relu, seed 0
    assert np.isnan(grid.mean[0, 2]) and grid.seeds[0, 2] == 0
    one = outcomes.outcome_grid(
        Sweep("one-1", 0.0, "ring-bce", ("lr_g",), (0,), cells[:1], None, {}), rows[:1], "modes_covered")
    assert one.column_field is None and one.column_values == () and one.mean.tolist() == [[2.0]]


def test_a_runs_folder_without_sweeps_lists_none(tmp_path: Path):
    assert list_sweeps(tmp_path) == [] and list_sweeps(tmp_path / "missing") == []


def test_summary_spells_booleans_as_the_config_does(tmp_path: Path):
    s = spec({"g_batchnorm": [True, False]})
    cells = tuple(SweepCell(c.name, s.settings(c.config), 0, f"run-{i}") for i, c in enumerate(s.cells()))
    sweep = Sweep("bn-1", 0.0, s.preset, s.fields, s.seeds, cells, None, s.to_dict())
    rows = [outcomes.CellRow(c, Status.DIVERGED, 7, "diverged: d_loss is nan", None) for c in cells]
    csv_path, json_path = outcomes.write_summary(tmp_path, sweep, rows)
    table = list(csv.DictReader(csv_path.open()))
    assert [(t["g_batchnorm"], t["status"], t["message"]) for t in table] == [
        ("true", "diverged", "diverged: d_loss is nan"), ("false", "diverged", "diverged: d_loss is nan")]
    assert [r["g_batchnorm"] for r in json.loads(json_path.read_text())["rows"]] == [True, False]  # JSON keeps its own
