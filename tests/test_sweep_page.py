"""The Sweep page ("Explore hyperparameters") under AppTest: the form refuses a bad grid naming the field, launches a
grid through the run manager (a student within the quota), draws a cell per run, and once the runs end the heatmap
and the table of outcomes."""

from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from gan_core.sweeps.record import list_sweeps
from tests.pages import page_app
from ui import live

PAGE = "app_pages/sweep.py"

pytestmark = pytest.mark.usefixtures("fresh_manager")


def _run(app: AppTest) -> AppTest:
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def _fill(app: AppTest, values: str, steps: int = 40, seeds: str = "0,1", field: str = "lr_g") -> None:
    next(n for n in app.number_input if n.label == "Steps per run").set_value(steps)
    next(t for t in app.text_input if t.label == "Seeds").set_value(seeds)
    next(s for s in app.selectbox if s.label == "Field").set_value(field)
    next(t for t in app.text_input if t.label == "Its values").set_value(values)


def _launch(app: AppTest) -> AppTest:
    next(b for b in app.button if b.label == "Launch the sweep").click()
    return _run(app)


def test_with_no_sweep_the_form_is_open_and_says_what_to_do():
    app = _run(page_app(PAGE))
    assert app.title[0].value == "Explore hyperparameters"
    assert any("No sweeps yet" in i.value for i in app.info)
    assert [b.label for b in app.button if b.label == "Launch the sweep"]


@pytest.mark.parametrize(("values", "field", "said"), [
    ("0.0002, lots", "lr_g", "lr_g"),
    ("", "lr_g", "lr_g"),
    ("0.001, 0.001", "lr_g", "listed twice"),
    (",".join(str(i) for i in range(1, 80)), "batch_size", "at most 64"),
])
def test_a_bad_grid_is_refused_naming_the_field_and_nothing_starts(values, field, said):
    app = _run(page_app(PAGE))
    _fill(app, values, field=field)
    _launch(app)
    errors = " ".join(e.value for e in app.error).replace("\\", "")  # Markdown escapes, shown as text
    assert said in errors, errors
    assert not live.get_manager().ids() and not list_sweeps(live.get_manager().runs_dir)


@pytest.mark.slow
def test_a_sweep_draws_its_cells_then_the_heatmap_of_outcomes():
    app = _run(page_app(PAGE))
    _fill(app, "0.0002, 0.001", steps=30, seeds="0,1")
    _launch(app)
    manager = live.get_manager()
    (sweep,) = list_sweeps(manager.runs_dir)
    assert len(sweep.cells) == 4 and any("Launched" in s.value for s in app.success)
    captions = " ".join(c.value for c in app.caption)
    assert all(cell.name in captions.replace("\\", "") for cell in sweep.cells)  # Markdown escapes shown as text
    assert len(_open_links(app)) == 4
    deadline = time.monotonic() + 120
    for run_id in sweep.run_ids:
        manager.wait(run_id, lambda s: not s.status.active, timeout=max(1.0, deadline - time.monotonic()))
    for _ in range(6):  # each look evaluates at most one newly finished cell
        _run(app)
    assert app.get("plotly_chart"), "no heatmap once the runs ended"
    heatmap = app.get("plotly_chart")[0].proto.spec
    assert '"modes covered"' in heatmap and "2 seeds" in heatmap
    assert "modes " in " ".join(c.value for c in app.caption)  # a cell's outcome: "modes k/8 · high quality …"
    table = app.dataframe[0].value
    assert list(table["seed"]) == [0, 1, 0, 1] and table["modes_covered"].notna().all()


def test_open_shows_the_cells_run_on_the_training_page():
    app = _run(page_app(PAGE))
    _fill(app, "0.0002, 0.001", steps=20, seeds="0")
    _launch(app)
    (sweep,) = list_sweeps(live.get_manager().runs_dir)
    link = _open_links(app)[1]  # a link to the Training page naming the cell's run (a browser follows it)
    assert link.page.endswith("training") and link.query_string == f"{live.LINK}={sweep.cells[1].run_id}"
    app.switch_page("app_pages/training.py")
    app.query_params[live.LINK] = sweep.cells[1].run_id
    _run(app)
    assert app.session_state[live.SELECTED] == sweep.cells[1].run_id
    assert any(h.value == f"Run {sweep.cells[1].run_id}" for h in app.subheader)  # the Training page shows it


def _open_links(app: AppTest) -> list:
    return [e.proto for e in app.get("page_link") if e.proto.label == "Open"]


def test_a_student_over_quota_starts_no_cell(monkeypatch):
    monkeypatch.setenv("GAN_PRESENTER_KEY", "a key nobody types")
    monkeypatch.setenv("GAN_SESSION_RUNS", "1")
    live.reset_manager()
    app = _run(page_app(PAGE))
    _fill(app, "0.0002, 0.001", seeds="0")
    _launch(app)
    errors = " ".join(e.value for e in app.error).replace("\\", "")  # Markdown escapes, shown as text
    assert "cannot start" in errors and "GAN_SESSION_RUNS" in errors, errors
    assert not live.get_manager().ids() and not list_sweeps(live.get_manager().runs_dir)


def test_a_link_fills_the_sweep_form_says_what_it_cannot_use_and_copy_link_writes_the_setup():
    """A setup in a link (issue 29): the Explore form reads and writes its state in the address bar."""
    app = page_app(PAGE)
    for name, value in {"preset": "ring-bce", "steps": "40", "seeds": "0,2", "field": "lr_g",
                        "values": "0.0005, 0.002", "field2": "colour"}.items():
        app.query_params[name] = value
    _run(app)
    assert next(t for t in app.text_input if t.label == "Seeds").value == "0,2"
    assert next(t for t in app.text_input if t.label == "Its values").value == "0.0005, 0.002"
    assert next(n for n in app.number_input if n.label == "Steps per run").value == 40
    assert any("From the link" in e.value and "colour" in e.value for e in app.error)  # named, and left out
    assert not list_sweeps(live.get_manager().runs_dir)  # nothing launched by opening a link

    next(s for s in app.selectbox if s.label == "Preset").set_value("grid-bce")
    next(b for b in app.button if b.label == "Copy link").click()
    _run(app)
    assert {k: app.query_params[k] for k in app.query_params} == {
        "preset": "grid-bce", "steps": "40", "seeds": "0,2", "field": "lr_g", "values": "0.0005, 0.002"}
    assert any("preset=grid-bce" in c.value for c in app.code)
    assert not list_sweeps(live.get_manager().runs_dir)

    next(t for t in app.text_input if t.label == "Its values").set_value("0.0005, fast")
    next(b for b in app.button if b.label == "Copy link").click()
    _run(app)
    assert any("fast" in e.value for e in app.error)  # a link is checked like a launch: no link to a bad grid
