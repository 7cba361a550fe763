"""The Training page's 2D plane (ui/panels.samples_view) as Streamlit runs it (AppTest): the figure it sends, its layer
switches, and a run folder written before G's manifold was recorded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from gan_core.config import get_preset
from gan_core.runs.train_run import open_run, train_to
from tests.test_saved_runs import FIXTURES, RING
from ui import live, panels

APP = str(Path(__file__).resolve().parents[1] / "dashboard.py")

pytestmark = pytest.mark.usefixtures("fresh_manager", "one_thread")


def _open(run_id: str) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60)
    app.switch_page("app_pages/training.py")
    app.query_params[live.LINK] = run_id
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def _plane_traces(app: AppTest) -> list[str]:
    figures = [json.loads(c.proto.spec) for c in app.get("plotly_chart")]
    (plane,) = [f for f in figures if f["layout"].get("uirevision") == "plane"]
    return [t.get("name") for t in plane["data"]]


def test_each_layer_switches_off_alone():
    store, trainer = open_run(live.get_manager().runs_dir / "ring", get_preset("ring-bce").config.replace(
        steps=4, sample_every=2, g_width=8, d_width=8, n_samples=64))
    train_to(store, trainer)
    app = _open("ring")
    everything = _plane_traces(app)
    assert {"D's output", "G's manifold", "G's push", "real data", "generated"} <= set(everything)
    boxes = {c.label: c for c in app.checkbox if c.key.startswith("train_layer")}
    assert list(boxes) == list(panels.LAYERS) and all(c.value for c in boxes.values())
    for label in panels.LAYERS:
        app.checkbox(key=boxes[label].key).uncheck().run()
        names = _plane_traces(app)
        assert label not in names and set(everything) - set(names) <= {label, "G's push (outline)"}, label
        app.checkbox(key=boxes[label].key).check().run()
    assert _plane_traces(app) == everything


def test_a_folder_from_before_the_manifold_draws_every_other_layer():
    shutil.copytree(FIXTURES / RING, live.get_manager().runs_dir / RING)
    app = _open(RING)
    names = _plane_traces(app)
    assert "G's manifold" not in names
    assert {"D's output", "G's push", "real data", "generated"} <= set(names)
