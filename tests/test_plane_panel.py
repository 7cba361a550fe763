"""The Training page's 2D plane (ui/panels.samples_view) as Streamlit runs it (AppTest): the figure it sends, its layer
switches, and a run folder written before G's manifold was recorded."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import numpy as np
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


def _figure(app: AppTest, revision: str) -> dict:
    (figure,) = [f for f in (json.loads(c.proto.spec) for c in app.get("plotly_chart"))
                 if f["layout"].get("uirevision") == revision]
    return figure


def _points(figure: dict, name: str) -> int:
    (trace,) = [t for t in figure["data"] if t.get("name") == name]
    x = trace["x"]  # plotly sends a numpy array as base64 bytes ("bdata") of its dtype
    return len(x) if isinstance(x, list) else len(base64.b64decode(x["bdata"])) // np.dtype(x["dtype"]).itemsize


def test_the_filter_switch_draws_raw_and_d_filtered_samples_side_by_side():
    store, trainer = open_run(live.get_manager().runs_dir / "ring", get_preset("ring-bce").config.replace(
        steps=40, sample_every=20, g_width=8, d_width=8, n_samples=64))
    train_to(store, trainer)
    app = _open("ring")
    revisions = {json.loads(c.proto.spec)["layout"].get("uirevision") for c in app.get("plotly_chart")}
    assert revisions == {"plane"}  # off by default: the big plane alone
    app.toggle(key="train_rejection").set_value(True).run()
    assert not app.exception, [e.value for e in app.exception]
    raw, kept = _figure(app, "drs_generated"), _figure(app, "drs_kept by D")
    assert _points(raw, "generated") == 64 and _points(kept, "kept by D") == 64
    assert {"D's output", "real data", "modes"} <= {t.get("name") for t in kept["data"]}
    assert "G's push" not in {t.get("name") for t in kept["data"]}
    captions = " ".join(c.value for c in app.caption)
    assert "From the checkpoint at step 40" in captions and "D kept" in captions
    titles = " ".join(m.value for m in app.markdown)
    assert "**Kept by D**: " in titles and "of 8 modes" in titles
    _plane_traces(app)  # the big plane is still the one "plane"
    app.toggle(key="train_rejection").set_value(False).run()
    assert {json.loads(c.proto.spec)["layout"].get("uirevision") for c in app.get("plotly_chart")} == {"plane"}


def test_a_critic_run_says_why_it_has_no_filtered_view():
    store, trainer = open_run(live.get_manager().runs_dir / "wring", get_preset("ring-wgan").config.replace(
        steps=2, sample_every=2, g_width=8, d_width=8, n_samples=32))
    train_to(store, trainer)
    app = _open("wring")
    app.toggle(key="train_rejection").set_value(True).run()
    assert not app.exception
    assert any("needs a BCE discriminator" in c.value and "wgan_gp" in c.value for c in app.caption)
    assert {json.loads(c.proto.spec)["layout"].get("uirevision") for c in app.get("plotly_chart")} == {"plane"}
