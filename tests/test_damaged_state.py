"""One odd value in a file a crash, a hand or a forger can damage breaks no page: `1e999` where a number is read, JSON
nested past the parser's depth, a sweep record missing its swept field, in predictions.json, comparisons.json, a sweep
record and a run's status.json. Every reader treats it as damaged (gan_core.runs.folder.DAMAGED): logged, the file
named, its documented fallback; and every page opens without an exception.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from gan_core.lessons.predictions import PREDICTIONS_FILE, Predictions
from gan_core.lessons.shared_comparisons import COMPARISONS_FILE
from gan_core.runs.folder import RunStore, read_json_section
from gan_core.sweeps.record import SWEEPS_DIR, Sweep, SweepCell, list_sweeps
from gan_core.sweeps.spec import SweepSpec
from tests.tiny import TINY

APP = str(Path(__file__).resolve().parents[1] / "dashboard.py")
PAGES = ["home", "vae_vs_gan", "bce_loss", "training", "activations", "batch_norm", "mode_collapse", "controllable",
         "sweep"]
DEEP = "[" * 100_000 + "]" * 100_000  # past the JSON parser's depth: RecursionError, not ValueError
HUGE = "1e999"  # a float that is infinity: int() of it is an OverflowError
INF = 12345.678  # written as HUGE by _write


def _write(path: Path, data: object) -> None:
    path.write_text(json.dumps(data).replace(str(INF), HUGE))


def _sweep(fields_in_cells: bool = True, seeds: str = "[0]") -> str:
    spec = SweepSpec.of("ring-bce", [("lr_g", [1e-3, 5e-4])], [0], {"steps": 20})
    cells = tuple(SweepCell(c.name, spec.settings(c.config) if fields_in_cells else {}, 0, f"gone-{i}")
                  for i, c in enumerate(spec.cells()))
    text = json.dumps(Sweep("odd-1", 1_000.0, spec.preset, spec.fields, spec.seeds, cells, None, spec.to_dict())
                      .to_dict())
    return text.replace('"seeds": [0]', f'"seeds": {seeds}')


def _odd_values(runs: Path) -> None:
    """1e999 where an id, a seed or a time is read; a sweep whose cells lack the swept field."""
    runs.mkdir(parents=True, exist_ok=True)
    shown = {"runs": {"a": "x-1"}, "seed": INF, "fingerprint": "f", "started": INF}
    _write(runs / PREDICTIONS_FILE, {"polls": {"batchnorm": {"id": INF, "question": "?", "choices": ["a", "b"],
                                                             "open": True, "opened": 0, "answers": {}}}})
    _write(runs / COMPARISONS_FILE, {"comparisons": {"batchnorm": {"last_seed": INF, "shown": [shown]},
                                                     "dying-relu": {"last_seed": 0, "shown": [{**shown, "seed": 0}]}}})
    (runs / SWEEPS_DIR).mkdir()
    (runs / SWEEPS_DIR / "huge-1.json").write_text(_sweep(seeds=f"[{HUGE}]"))
    (runs / SWEEPS_DIR / "fieldless-1.json").write_text(_sweep(fields_in_cells=False))
    store = RunStore(runs / "odd-status").create(TINY)
    store.write_status({"status": "failed", "message": "x" * 10_000, "created": float("inf"), "step": float("inf"),
                        "owner": ["not", "a", "string"]})


def _nested(runs: Path) -> None:
    """Every shared file, and a run's status.json, nested past the parser's depth."""
    runs.mkdir(parents=True, exist_ok=True)
    for name in (PREDICTIONS_FILE, COMPARISONS_FILE):
        (runs / name).write_text(DEEP)
    (runs / SWEEPS_DIR).mkdir()
    (runs / SWEEPS_DIR / "deep-1.json").write_text(DEEP)
    store = RunStore(runs / "deep-status").create(TINY)
    (store.path / "status.json").write_text(DEEP)


@pytest.mark.parametrize("damage", [_odd_values, _nested], ids=["1e999-and-a-missing-field", "nested"])
@pytest.mark.usefixtures("fresh_manager")
def test_every_page_opens_over_damaged_state_files(damage, tmp_path: Path) -> None:
    damage(tmp_path / "runs")
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    for page in PAGES:
        app.switch_page(f"app_pages/{page}.py").run()
        assert not app.exception, (page, [e.value for e in app.exception][:1])


def test_each_reader_treats_odd_values_as_damage_and_names_the_file(tmp_path: Path, caplog) -> None:
    runs = tmp_path / "runs"
    _odd_values(runs)
    with caplog.at_level(logging.WARNING):
        assert Predictions(runs).poll("batchnorm") is None
        assert [s.id for s in list_sweeps(runs)] == []
        status = RunStore(runs / "odd-status").read_status()
    assert "predictions.json" in caplog.text and "huge-1.json" in caplog.text and "fieldless-1.json" in caplog.text
    assert "swept field 'lr_g'" in caplog.text
    assert status["created"] == float("inf")  # read as it is; the run's reader falls back (below)

    from gan_core.runs.reload import load_run

    run, owner = load_run(runs / "odd-status")
    assert run.created < float("inf") and owner is None and len(run.error) <= 500


def test_nested_json_is_damage_not_a_recursion_error(tmp_path: Path, caplog) -> None:
    runs = tmp_path / "runs"
    _nested(runs)
    with caplog.at_level(logging.WARNING):
        assert read_json_section(runs / COMPARISONS_FILE, "comparisons", "none shown") is None
        assert Predictions(runs).poll("batchnorm") is None
        assert list_sweeps(runs) == []
        assert RunStore(runs / "deep-status").read_status() == {}
    assert "RecursionError" in caplog.text and "deep-1.json" in caplog.text and "status.json" in caplog.text
