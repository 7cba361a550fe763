"""python -m gan_core sweep: a bad grid is one line and exit 2, the output folder is checked before anything trains,
every cell trains and the summary is written, also after an interruption; a Ray address is passed only when given."""

from __future__ import annotations

import csv
import json

import pytest

from gan_core.cli import EXIT_BAD_INPUT, main
from gan_core.config import ConfigError
from gan_core.runs.folder import RunStore
from tests.test_cli import _one_error_line

pytestmark = pytest.mark.usefixtures("one_thread")


# -- sweep -------------------------------------------------------------------------------------------------------------
SWEEP_TINY = ["--set", "g_width=16", "--set", "d_width=16", "--set", "batch_size=32", "--set", "checkpoint_every=20",
              "--set", "n_samples=16", "--steps", "30", "--workers", "1", "--device", "cpu"]


@pytest.mark.parametrize("args, needles", [
    (["--grid", "lr_g=1e-3,abc"], ["lr_g: 'abc' is not a number"]),
    (["--grid", "lr_g=2"], ["lr_g: 2.0 is outside the allowed range"]),
    (["--grid", "nope=1,2"], ["nope: unknown field"]),
    (["--grid", "lr_g="], ["lr_g: no values to sweep"]),
    (["--grid", "lr_g"], ["--grid: 'lr_g' is not FIELD=v1,v2"]),
    (["--grid", "lr_g=1e-3", "--grid", "lr_g=2e-3"], ["lr_g: given twice in the grid"]),
    (["--grid", "lr_g=1e-3", "--grid", "lr_d=1e-3", "--grid", "z_dim=2"], ["grid: at most 2 fields"]),
    (["--grid", "lr_g=" + ",".join(f"{i}e-4" for i in range(1, 9)), "--grid", "z_dim=1,2,3,4,5,6,7,8,9"],
     ["grid: 8 lr_g values × 9 z_dim values × 1 seed make 72 cells (runs); at most 64"]),
    (["--grid", "lr_g=1e-3", "--seeds", "0,x"], ["seeds: 'x' is not a whole number"]),
    (["--grid", "lr_g=1e-3", "--seeds", "1,1"], ["seeds: 1 is listed twice"]),
    (["--grid", "seed=1,2"], ["seed: give a sweep's seeds as seeds"]),
    ([], ["grid: give one or two fields"]),
    (["--grid", "lr_g=1e-3", "--workers", "0"], ["--workers: must be between 1"]),
])
def test_sweep_bad_grid_exits_2_with_one_line(tmp_path, capsys, args, needles):
    out = tmp_path / "sweep"
    assert main(["sweep", "--preset", "ring-bce", *args, "--out", str(out)]) == EXIT_BAD_INPUT
    _one_error_line(capsys, "error: ", *needles)
    assert not out.exists()  # nothing is made before the whole grid is checked


def test_sweep_out_is_checked_before_anything_trains(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(["sweep", "--preset", "ring-bce", "--grid", "lr_g=1e-3", "--out", str(a_file)]) == EXIT_BAD_INPUT
    _one_error_line(capsys, "--out:", "is a file")
    done = tmp_path / "done"
    done.mkdir()
    (done / "summary.json").write_text("{}")
    assert main(["sweep", "--preset", "ring-bce", "--grid", "lr_g=1e-3", "--out", str(done)]) == EXIT_BAD_INPUT
    _one_error_line(capsys, "--out:", "already holds a sweep's summary")
    assert sorted(p.name for p in done.iterdir()) == ["summary.json"]


def test_sweep_passes_a_ray_address_only_when_given(tmp_path, capsys, monkeypatch):
    from gan_core.runs import manager as manager_module

    seen: list[dict] = []

    class Recorder:  # stands in for RunManager: what the CLI hands it is the question, not what it trains
        def __init__(self, runs_dir, *, max_runs=None, device="auto", data_dir=None, ray_address="not passed") -> None:
            seen.append({"runs_dir": runs_dir, "max_runs": max_runs, "ray_address": ray_address})
            raise ConfigError("ray_address", "cluster unreachable")

    monkeypatch.setattr(manager_module, "RunManager", Recorder)
    base = ["sweep", "--preset", "ring-bce", "--grid", "lr_g=1e-3", "--workers", "3"]
    assert main([*base, "--out", str(tmp_path / "a"), "--ray-address", "ray://127.0.0.1:10001"]) == EXIT_BAD_INPUT
    _one_error_line(capsys, "ray_address: cluster unreachable")
    assert seen == [{"runs_dir": tmp_path / "a", "max_runs": 3, "ray_address": "ray://127.0.0.1:10001"}]

    assert main([*base, "--out", str(tmp_path / "b")]) == EXIT_BAD_INPUT
    _one_error_line(capsys, "ray_address: cluster unreachable")
    assert seen[-1]["ray_address"] == "not passed"  # the manager's own default decides (GAN_RAY_ADDRESS, else local)


def test_sweep_trains_every_cell_and_writes_the_summary(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GAN_WORKERS", "threads")  # the cells' training is the subject; worker processes are tested
    out = tmp_path / "sweep"
    args = ["sweep", "--preset", "ring-bce", "--grid", "lr_g=1e-3,5e-4", "--seeds", "0,1", *SWEEP_TINY]
    assert main([*args, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    progress = [line for line in err.splitlines() if line.startswith("[")]
    assert len(progress) == 4 and {line[:5] for line in progress} == {"[1/4]", "[2/4]", "[3/4]", "[4/4]"}
    assert all(": finished at step 30 · modes " in line and "high quality" in line for line in progress), progress
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [(r["lr_g"], r["seed"]) for r in rows] == [("0.001", "0"), ("0.001", "1"), ("0.0005", "0"), ("0.0005", "1")]
    for r in rows:
        assert r["status"] == "finished" and r["step"] == "30" and r["modes_total"] == "8"
        assert 0 <= int(r["modes_covered"]) <= 8 and 0 <= float(r["high_quality_fraction"]) <= 1
        assert RunStore(out / r["run_id"]).load_checkpoint()["step"] == 30
        assert RunStore(out / r["run_id"]).read_config().g_width == 16
    summary = json.loads((out / "summary.json").read_text())
    assert [r["run_id"] for r in summary["rows"]] == [r["run_id"] for r in rows]
    assert summary["sweep"]["spec"]["fixed"]["steps"] == 30
    assert (out / "sweeps" / f"{summary['sweep']['id']}.json").is_file()  # the dashboard lists it, on GAN_RUNS_DIR=out
    assert main([*args, "--out", str(out)]) == EXIT_BAD_INPUT  # a second sweep into the same folder is refused


def test_sweep_interrupted_stops_every_cell_and_still_writes_the_summary(tmp_path, capsys, monkeypatch):
    from gan_core.sweeps import outcomes

    monkeypatch.setenv("GAN_WORKERS", "threads")

    def interrupted(manager, sweep, on_end=None, **_):
        manager.wait(sweep.run_ids[0], lambda s: s.step > 0, timeout=60)  # the first cell is training, the rest wait
        raise KeyboardInterrupt

    monkeypatch.setattr(outcomes, "follow", interrupted)
    out = tmp_path / "sweep"
    args = ["sweep", "--preset", "ring-bce", "--grid", "lr_g=1e-3,5e-4,2e-4", *SWEEP_TINY, "--steps", "100000"]
    assert main([*args, "--out", str(out)]) == 130
    assert "interrupted: summary of 3 cells" in capsys.readouterr().err
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [r["status"] for r in rows] == ["stopped"] * 3  # none left queued for a dashboard opened on --out later
    assert int(rows[0]["step"]) > 0 and RunStore(out / rows[0]["run_id"]).load_checkpoint()["step"] > 0
    for r in rows:
        assert json.loads((out / r["run_id"] / "status.json").read_text())["status"] == "stopped"
