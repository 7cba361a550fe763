"""Explore hyperparameters: a grid of runs (one or two fields × seeds), drawn live as small multiples, then a heatmap.

The sweep itself is gan_core.sweeps: its spec checks the grid with the config's own limits, its record survives a
restart, and a finished cell is evaluated once (cached in its run folder) whoever looks first. On a laptop the cells
queue behind the worker limit; on a Ray cluster they fan out. A student's sweep counts against the session's quota.
"""

from __future__ import annotations

from functools import partial

import streamlit as st

from gan_core.config import FIELDS, PRESETS, ConfigError, get_preset
from gan_core.runs.roles import RunRefused
from gan_core.runs.status import Status
from gan_core.sweeps import outcomes
from gan_core.sweeps.record import Sweep, launch, list_sweeps
from gan_core.sweeps.spec import MAX_CELLS, SweepSpec, parse_grid, parse_seeds
from ui import addressbar, cache, course, follow, live, roles
from ui.figures import sweep as figures
from ui.forms import label, whole_number
from ui.plotly_chart import plotly_chart
from ui.text import md_escape

SHOWN = "sweep_shown"  # session_state: the sweep this browser looks at
NO_FIELD = "(none)"
SWEEPABLE = [name for name in FIELDS if name not in ("seed", "dataset", "points_csv")]
COLUMNS = 4  # cells per row of the small multiples
EXAMPLES = {"lr_g": "0.0002, 0.001", "lr_d": "0.0002, 0.001", "g_activation": "relu, leaky_relu, tanh",
            "batch_size": "32, 128", "loss": "bce, wgan_gp"}
REFRESH_S = 2.0  # a grid of small pictures reads as live at this rate, and costs each browser half the script runs

manager = live.get_manager()
st.title("Explore hyperparameters")
st.write("Pick one or two settings and a few values for each: every combination (and seed) trains as its own run. "
         "The grid fills in as they train; when they end, the heatmap shows which settings worked.")


def grid_text(field: str, values: str) -> list[tuple[str, list[str]]]:
    return parse_grid([f"{field}={values}"], option=field)


# the form's state in the address bar (a setup link, ui.addressbar): parameter -> the widget's key
LINKED = {"preset": "sweep_preset", "steps": "sweep_steps", "seeds": "sweep_seeds", "field": "sweep_field",
          "values": "sweep_values", "field2": "sweep_field2", "values2": "sweep_values2"}
FORM = "sweep"
DEFAULTS = {"sweep_preset": "ring-bce", "sweep_steps": 1_000.0, "sweep_seeds": "0", "sweep_field": "lr_g",
            "sweep_values": EXAMPLES["lr_g"], "sweep_field2": NO_FIELD, "sweep_values2": ""}


def open_link() -> None:
    """A link with this form's setup fills the form (once per link); what it cannot use is said, naming the field."""
    params = addressbar.params()
    if not addressbar.opened(FORM, "preset" in params):
        return
    for name, raw in params.items():
        if name not in LINKED:
            continue
        key, problem = LINKED[name], None
        if name == "preset" and raw not in PRESETS:
            problem = f"{raw!r} is not one of: {', '.join(PRESETS)}"
        elif name in ("field", "field2") and raw not in (SWEEPABLE if name == "field" else [NO_FIELD, *SWEEPABLE]):
            problem = f"{raw!r} is not a field a sweep can change"
        elif name == "steps":
            try:
                st.session_state[key] = float(int(raw))
            except ValueError:
                problem = f"{raw!r} is not a whole number"
            continue
        if problem:
            st.error(f"From the link: {label(name)}: {md_escape(problem)}", icon=":material/link_off:")
        else:
            st.session_state[key] = raw


def _spec(values: dict) -> SweepSpec:
    grid = grid_text(values["sweep_field"], values["sweep_values"])
    if values["sweep_field2"] != NO_FIELD:
        grid += grid_text(values["sweep_field2"], values["sweep_values2"])
    return SweepSpec.of(values["sweep_preset"], grid, parse_seeds(values["sweep_seeds"]),
                        {"steps": int(values["sweep_steps"])})


def sweep_form() -> SweepSpec | None:
    """The form; on a valid Launch, the spec (the number of runs was shown beside the button). Copy link puts the
    form's setup in the address bar and shows the link."""
    for key, value in DEFAULTS.items():
        st.session_state.setdefault(key, value)
    with st.form("sweep_form"):
        preset_col, steps_col, seeds_col = st.columns([2, 1, 1])
        preset_col.selectbox("Preset", list(PRESETS), key="sweep_preset",
                             help="The GAN every cell starts from; the fields below change it.")
        whole_number(steps_col, "Steps per run", min_value=10, max_value=100_000, step=100, key="sweep_steps",
                     help="Short runs make a quick grid. Measured when the presets were tuned: the 2D BCE presets "
                     "about 6-8 s per 1,000 steps (one CPU thread), the WGAN-GP ones about 35 s (2 cores).")
        seeds_col.text_input("Seeds", key="sweep_seeds",
                             help="Comma-separated, e.g. 0,1,2: each setting trains once per seed.")
        f1, v1 = st.columns([1, 2])
        f1.selectbox("Field", SWEEPABLE, format_func=label, key="sweep_field")
        v1.text_input("Its values", key="sweep_values", help="Comma-separated values of the field.")
        f2, v2 = st.columns([1, 2])
        f2.selectbox("Second field (optional)", [NO_FIELD, *SWEEPABLE], key="sweep_field2",
                     format_func=lambda n: n if n == NO_FIELD else label(n))
        v2.text_input("Its values ", key="sweep_values2",
                      help="Comma-separated; leave the second field at (none) for a one-field sweep.")
        launch_col, link_col, _ = st.columns([2, 1, 2])
        pressed = launch_col.form_submit_button("Launch the sweep", type="primary", icon=":material/grid_view:")
        linked = link_col.form_submit_button("Copy link", icon=":material/link:",
                                             help="A link to this sweep's setup: whoever opens it gets this form, "
                                                  "filled in.")
    if not pressed and not linked:
        return None
    values = {key: st.session_state[key] for key in DEFAULTS}
    try:
        spec = _spec(values)
    except ConfigError as err:
        st.error(md_escape(str(err)), icon=":material/error:")  # names the field and what is allowed
        return None
    if linked:
        setup = {name: str(int(values[key])) if name == "steps" else str(values[key]) for name, key in LINKED.items()
                 if name not in ("field2", "values2") or values["sweep_field2"] != NO_FIELD}
        addressbar.show(addressbar.write(FORM, setup))
        return None
    return spec


# the grid is the picture this page is about: drawn above the form (in a container filled below), the form folded away
# once there is a sweep to show, so on a 1280x720 projector the grid is what the room sees
shown_area = st.container()
with st.expander("New sweep", expanded=not list_sweeps(manager.runs_dir) or "preset" in st.query_params,
                 icon=":material/add:"):  # (a setup link opens it)
    st.caption(f"At most {MAX_CELLS} runs in one sweep. Fields: any setting of the Training page's form "
               f"({', '.join(EXAMPLES)} are good first tries).")
    open_link()
    spec = sweep_form()
    if spec is not None:
        addressbar.clear(FORM)  # launched: the address no longer holds a form's setup
        try:
            launched = launch(manager, spec, actor=roles.actor())
        except RunRefused as err:
            live.refused(err)
        except ConfigError as err:
            st.error(md_escape(str(err)), icon=":material/error:")
        else:
            st.session_state[SHOWN] = launched.id
            st.success(f"Launched **{launched.id}**: {len(launched.cells)} runs, queued behind the server's workers.")

sweeps = list_sweeps(manager.runs_dir)
if not sweeps:
    shown_area.info("No sweeps yet: pick a field and its values below and press **Launch the sweep**.")
    course.links("app_pages/sweep.py")
    follow.end_page()

by_id = {s.id: s for s in sweeps}
if st.session_state.get(SHOWN) not in by_id:
    st.session_state[SHOWN] = sweeps[0].id
shown_id = shown_area.selectbox("Sweep", list(by_id), key=SHOWN,
                                format_func=lambda i: f"{i} · {by_id[i].preset} · {len(by_id[i].cells)} runs")
sweep: Sweep = by_id[shown_id]
is_2d = get_preset(sweep.preset).config.dataset.is_2d


def draw_cell(row: outcomes.CellRow) -> None:
    """A cell's latest samples, its setting, and its status or outcome; a button to open its run."""
    cell = row.cell
    if row.status is None:
        st.caption(f"**{md_escape(cell.name)}**: the run was deleted")
        return
    snap = live.shared_snapshot(cell.run_id)
    record = snap.latest_samples
    if record is not None:
        picture = cache.cached((snap.id, "sweep_cell", record.step, id(record)), partial(figures.cell_picture, snap))
        st.image(cache.image_url(picture), width=figures.CELL_SIZE)
    ending = row.describe() if row.outcomes else f"{row.status.value}, step {row.step:,}/{snap.total:,}"
    st.caption(f"**{md_escape(cell.name)}**  \n{md_escape(ending)}")
    # a link, not a button that switches page: a switch asked from inside this polling fragment could leave the
    # Training page undrawn (seen once in a full local run: its sidebar drawn, its body never), where a link is a plain
    # navigation the browser makes, and the run it names is selected there (ui.live.follow_link)
    st.page_link(course.page("app_pages/training.py"), label="Open", icon=":material/open_in_new:",
                 query_params={live.LINK: cell.run_id}, help="Show this run on the Training page")


def unevaluated(rows: list[outcomes.CellRow]) -> list[outcomes.CellRow]:
    return [r for r in rows if r.status is Status.FINISHED and r.outcomes is None]


def cells_view() -> None:
    """Small multiples while the cells train; the heatmap and the table once any has an outcome. Each look evaluates
    at most one newly finished cell (~1 s), so no browser's refresh waits for a whole grid's evaluation."""
    rows = outcomes.rows(manager, sweep, evaluate=False)
    todo = unevaluated(rows)
    if todo:
        index = rows.index(todo[0])
        rows[index] = outcomes.row(manager, todo[0].cell, evaluate=True)
    done = sum(r.ended for r in rows)
    st.progress(done / len(rows), text=f"{done} of {len(rows)} runs ended")
    for start in range(0, len(rows), COLUMNS):
        for row, col in zip(rows[start:start + COLUMNS], st.columns(COLUMNS), strict=False):
            with col:
                draw_cell(row)
    if any(r.outcomes for r in rows):
        keys = figures.outcome_keys(is_2d)
        key = st.segmented_control("Outcome", keys, default=keys[0], format_func=lambda k: figures.OUTCOMES[k][0],
                                   key="sweep_outcome") or keys[0]
        grid = outcomes.outcome_grid(sweep, rows, key)
        modes_total = next((r.outcomes.get("modes_total") for r in rows if r.outcomes), None)
        name = ("sweep_heatmap", key, grid.row_field, grid.row_values, grid.column_field, grid.column_values,
                grid.mean.tobytes(), grid.seeds.tobytes(), modes_total)  # the figure's every input
        plotly_chart(name, partial(figures.outcome_heatmap, grid, modes_total), key="sweep_heatmap")
        with st.expander("Every cell's numbers"):
            st.dataframe(outcomes.table(sweep, rows), hide_index=True)
    if pending and not (any(not r.ended for r in rows) or unevaluated(rows)):
        st.rerun()  # everything ended and evaluated: the whole page once more, and polling stops


statuses = outcomes.rows(manager, sweep, evaluate=False)
pending = any(not r.ended for r in statuses) or bool(unevaluated(statuses))
with shown_area:
    st.fragment(cells_view, run_every=REFRESH_S if pending else None)()

course.links("app_pages/sweep.py")
