"""Training: pick a preset, change any hyperparameter, start a run, and watch both networks learn, live."""

from collections.abc import Callable
from pathlib import Path

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from gan_core import setup_link
from gan_core.config import FIELDS, PRESETS, ConfigError, TrainConfig
from gan_core.lessons import game
from gan_core.runs.folder import CHECKPOINT_FILE, METRICS_FILE
from gan_core.runs.state import RunSnapshot
from gan_core.runs.uploads import MAX_UPLOAD_BYTES, save_points_upload
from ui import addressbar, cache, course, downloads, draw, flows, follow, live, panels
from ui.checkpoint_upload import saved_generator_lab
from ui.figures import curves
from ui.forms import config_form, label
from ui.text import md_escape

DEFAULT_PRESET = "digits"  # embedded: trains in seconds with no download
NEW_RUN = "new_run_open"
UPLOAD = "my 2D points (upload a CSV)"
DRAW = "my 2D points (draw them)"
FORM = "train"  # this form's setup links (ui.addressbar)
LINK = "_train_setup_link"  # session_state: the setup link opened (gan_core.setup_link.SetupLink)
OWN = (DRAW, UPLOAD)  # the choices that are not presets: 2D points of the learner's own
MB = 1024 * 1024  # Streamlit's upload sizes are in MiB
UPLOAD_BASE = "ring-bce"  # the 2D hyperparameters an uploaded point cloud starts from
COMPARE_COLUMNS = {"G loss (smoothed)": "g_loss_smooth", "D loss (smoothed)": "d_loss_smooth", "D(x)": "d_real",
                   "D(G(z))": "d_fake"}

manager = live.get_manager()
st.title("Training")
st.caption("Pick a preset, change what you like, press Start. Every browser on this server sees the same runs.")


def base_config(choice: str) -> TrainConfig | None:
    """The form's starting values: the preset's, or for drawn or uploaded points the 2D preset pointed at them."""
    if choice in PRESETS:
        return PRESETS[choice].config
    if choice == DRAW:
        drawn = draw.drawn_points()
        return None if drawn is None else PRESETS[UPLOAD_BASE].config.replace(dataset="points", points_csv=str(drawn))
    # the browser refuses a bigger file before sending it; the server refuses it too (server.maxUploadSize, the same)
    file = st.file_uploader("CSV of 2D points: two numeric columns (x, y), an optional header row", type=["csv"],
                            max_upload_size=MAX_UPLOAD_BYTES // MB, key="points_upload")
    if file is None:
        return None
    try:
        path = save_points_upload(file.name, file.getvalue())
    except ConfigError as err:
        st.error(md_escape(str(err).removeprefix("points_csv: ")))  # it names the file; names are user text
        return None
    st.success(f"{md_escape(file.name)} is ready: the form below trains on it (dataset = points).")
    return PRESETS[UPLOAD_BASE].config.replace(dataset="points", points_csv=str(path))


def set_dialog(open_: bool) -> None:
    st.session_state[NEW_RUN] = open_


def open_link() -> None:
    """A setup link (?preset=…&lr_g=…) opens the New run form filled in, once per link; old ?run= links are the
    sidebar's (ui.live)."""
    params = addressbar.params()
    if not addressbar.opened(FORM, setup_link.is_setup(params)):
        return
    try:
        link = setup_link.from_params(params)
    except ConfigError as err:
        addressbar.refused(str(err))
        return
    st.session_state[LINK] = link
    st.session_state["preset"] = link.preset
    set_dialog(True)


def _preset_changed() -> None:
    """Another preset: the link's values were the old one's, and the address bar follows the form."""
    st.session_state.pop(LINK, None)
    choice = st.session_state.get("preset")
    if setup_link.is_setup(addressbar.params()) and choice in PRESETS:
        addressbar.write(FORM, {setup_link.PRESET: choice})


def _copy_link(choice: str, hidden: tuple[str, ...]) -> Callable[[TrainConfig], None]:
    def share(config: TrainConfig) -> None:
        addressbar.show(addressbar.write(FORM, setup_link.to_params(choice, config, hidden)))
    return share


# A dialog keeps the page on the live run; its open state lives in session_state so it survives full reruns.
@st.dialog("Start a new run", width="large", on_dismiss=lambda: set_dialog(False))
def new_run() -> None:
    choice = st.selectbox("Preset", [*PRESETS, *OWN], key="preset", index=list(PRESETS).index(DEFAULT_PRESET),
                          format_func=lambda n: n if n in OWN else f"{n}: {PRESETS[n].description}",
                          on_change=_preset_changed)
    if choice in PRESETS:
        st.caption(f"Source: {PRESETS[choice].source}")
    link = st.session_state.get(LINK)
    link = link if link is not None and link.preset == choice else None
    base = link.config if link is not None else base_config(choice)
    if base is None:
        return
    if link is not None:
        elsewhere = {k: v for k, v in link.errors.items() if k not in FIELDS}  # not a field of the form
        changed = [label(k) for k in setup_link.to_params(choice, base) if k in FIELDS and k != "seed"]
        st.caption(f"Opened from a link: **{choice}**, seed {base.seed}"
                   + (f", changed: {', '.join(changed)}" if changed else ", as it is")
                   + (f"; {len(link.hidden)} settings hidden" if link.hidden else "") + ".")
        for message in elsewhere.values():
            st.warning(md_escape(message), icon=":material/link_off:")
    name = st.text_input("Run name (optional)", key="run_name", max_chars=40,
                         placeholder=choice if choice in PRESETS else "points")
    hidden = link.hidden if link is not None else ()
    config = config_form(base, key="train", uploaded_points=base.points_csv, hidden=hidden,
                         notes=link.errors if link is not None else None,
                         on_link=_copy_link(choice, hidden) if choice in PRESETS else None)
    if config is None:
        return
    try:
        started = live.start(config, name.strip() or (choice if choice in PRESETS else "points"))
    except ConfigError as err:
        st.error(md_escape(str(err)))  # may quote the run name typed
    else:
        if started is not None:  # None: this session may not start another (the reason is shown in the dialog)
            set_dialog(False)
            st.session_state.pop(LINK, None)
            addressbar.clear(FORM)  # the address names the new run again (the sidebar writes ?run=)
            st.rerun()


open_link()
st.button("New run", type="primary", icon=":material/add:", on_click=set_dialog, args=(True,), key="new_run")
if st.session_state.get(NEW_RUN):
    new_run()

BALANCE = game.balanced()  # D saying 0.5 to everything: what both BCE losses read there


def how_it_learns() -> None:
    """The course's "putting it all together": one step's two updates, what healthy curves do, what failing ones do."""
    st.subheader("How a run learns")
    st.markdown("Each training step is **k updates of D, then one update of G** (k is the run's `d_steps`, 1 unless "
                "you change it). Each update moves one network's weights and leaves the other frozen:")
    st.markdown(":blue[**D's update**]: a batch of real examples and a batch of G's fakes; BCE scores D's outputs "
                "against 1 for real and 0 for fake; only D's weights θ_d change.")
    st.graphviz_chart(flows.d_update_flow(), width="stretch")
    st.markdown(":orange[**G's update**]: new noise through G, then through D; BCE scores D's outputs against the "
                "label 1 (\"real\"), because G wants its fakes called real; only G's weights θ_g change.")
    st.graphviz_chart(flows.g_update_flow(), width="stretch")
    healthy, failing = st.columns(2)
    healthy.markdown(f"""**What the curves should do** (a BCE run)
- The losses do **not** go to 0: each network's gain is the other's loss, so they wobble and level off. A D that says
  0.5 to everything scores D loss = G loss = log 2 ≈ {BALANCE.d_loss:.3f}.
- Look for D learning fast at first: **D(x)** rising towards 1 and **D(G(z))** falling towards 0. As G's fakes
  improve they drift back towards each other, towards 0.5, where D can no longer tell real from fake. A short run may
  not get all the way there.""")
    failing.markdown("""**What a failing run looks like**
- **D wins**: D(x) stays near 1, D(G(z)) near 0, D's loss near 0 while G's climbs. G then gets little *useful*
  feedback: with the minimax loss its gradient vanishes (BCE loss page); with the non-saturating loss these runs use,
  it is pushed hard towards what D rates most real right now, and can collapse (Mode collapse page).
- **Mode collapse**: the curves can look calm while the samples all look alike: watch the samples too (Mode collapse
  page).
- **Diverged**: a loss became NaN or infinite; the run stops at its last good step and says so.""")


def keep_the_generator() -> None:
    """What is kept after training, and loading it back: new samples from its G, or training it on."""
    st.subheader("Save the parameters")
    st.markdown("After training, what you keep is **G's weights**: they turn new noise z into new samples. D was only "
                "G's teacher and can be dropped once training is over. Each run's **Checkpoint (.pt)** download (among "
                "its files, once a run is shown) holds both networks, their optimisers and the run's settings. Load one "
                "here to draw new samples from its G, or to **continue training** it: that needs D and the optimisers "
                "too, so the run goes on where it stopped, as a new run on this server.")
    saved_generator_lab()
    st.caption("A run of this server continues with **Resume**; a CLI run folder with "
               "`python -m gan_core train --out DIR --resume --steps N`.")


snap = live.selected_snapshot()
if snap is None:
    st.info("No runs yet: press **New run**, pick a preset and press Start.")
    how_it_learns()
    keep_the_generator()
    course.links("app_pages/training.py")
    follow.end_page()

st.subheader(f"Run {snap.id}")
live.controls(snap, key="train")


def run_files(s: RunSnapshot) -> None:
    """The run's files. The checkpoint (up to 192 MB) and the metrics are links streamed from disk, never read into
    the server's memory (ui/downloads); the samples picture is small and drawn on click."""
    folder = Path(s.path)
    cols = st.columns(3)
    file_link(cols[0], folder / METRICS_FILE, f"{s.id}-metrics.csv", "Metrics (CSV)", ":material/table:")
    no_samples = s.latest_samples is None and not s.status.active  # an active run has them by the time of a click
    cols[1].download_button("Samples (PNG)", data=lambda: panels.samples_png(manager.snapshot(s.id)),
                            file_name=f"{s.id}-samples.png", mime="image/png", disabled=no_samples,
                            icon=":material/image:", key="dl_samples")
    file_link(cols[2], folder / CHECKPOINT_FILE, f"{s.id}-checkpoint.pt", "Checkpoint (.pt)", ":material/save:",
              help=f"G's and D's weights and optimiser states: `python -m gan_core sample --run {folder} …` reads it.")


def file_link(where: DeltaGenerator, path: Path, name: str, label: str, icon: str, help: str | None = None) -> None:
    """A link that streams the file; its path (on this server's disk) when no link can be made."""
    url = downloads.published_url(path, name)
    if url is not None:
        where.link_button(label, url, icon=icon, help=help)
    elif path.is_file():
        where.caption(f"{label}: too big to serve here; on the server it is `{path}`")
    else:
        where.link_button(label, "#", icon=icon, help=help, disabled=True)


def render(s: RunSnapshot) -> None:
    live.show_status(s)
    panels.headline(s)
    # what G makes first: on a projector (1280×720) the samples, or the 2D plane, are the picture above the fold
    st.markdown("**Samples**" + (" and D's view of the plane" if s.config.dataset.is_2d else ""))
    panels.samples_view(s, key="train")
    panels.curves_row(s, key="train")


live.live(render, snap.id, key="train")
# Outside the live panel: publishing a link to the newest metrics.csv and checkpoint every second for every browser made
# a hard link per file version per viewer. The links are of the files as this page was drawn (a finished run's page is
# drawn again when it ends, so its links are to its final files).
st.markdown("**Downloads**" + (" (as of this page's last full draw: reload for newer files)" if snap.status.active else ""))
run_files(snap)
how_it_learns()
keep_the_generator()

with st.expander("Settings of this run"):
    st.json(snap.config.to_dict(), expanded=True)

st.subheader("Compare runs")
others = [i for i in manager.ids() if i != snap.id]
# nothing is followed until runs are picked: each followed chart costs the server a script run per browser per second
chosen = st.multiselect(f"Compare {snap.id} with", others, key=f"compare_runs_{snap.id}", placeholder="Pick runs",
                        help="Runs of any status; their curves follow them while they train.")
column = st.segmented_control("Curve", list(COMPARE_COLUMNS), default="G loss (smoothed)", key="compare_column")


def compare(snaps: dict[str, RunSnapshot]) -> None:
    curve = COMPARE_COLUMNS[column or "G loss (smoothed)"]
    runs = list(snaps.values())
    cache.vega_chart(("compare", curve, *((s.id, s.version) for s in runs)),
                      lambda: curves.compare_chart([(s.id, s.metrics) for s in runs], curve, max_points=curves.MAX_POINTS),
                      key="compare_chart")


if chosen:
    followed = [snap.id, *(i for i in chosen if i in manager)]
    live.live_many(compare, {i: i for i in followed}, key="compare")  # follows them while any trains
elif others:
    st.caption(f"Pick runs to overlay their curves on {snap.id}'s.")
else:
    st.caption("Start another run to compare its curves with this one's.")

course.links("app_pages/training.py")
