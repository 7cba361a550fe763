"""Home: what a GAN is, in one picture and two sentences, and one click to watch one learn."""

import streamlit as st

from gan_core.config import Dataset, get_preset
from gan_core.data import available
from gan_core.lessons import game
from gan_core.runs.state import RunSnapshot
from ui import course, live, panels
from ui.figures import home

# MNIST's 28×28 digits read well on a projector; the bundled 8×8 ones need no download and train anywhere
DEFAULT_PRESET = "mnist-quick" if available(Dataset.MNIST, live.get_manager().data_dir) else "digits"

st.title("How a GAN learns")
st.graphviz_chart(home.gan_diagram(), width="stretch")
d_goal, g_goal = st.columns(2)
d_goal.markdown(":blue[**The discriminator D**] tells real examples from fakes: it wants D(x) → 1 on real data and "
                "D(G(z)) → 0 on fakes.")
g_goal.markdown(":orange[**The generator G**] turns random noise z into fakes and wants D to call them real: "
                "D(G(z)) → 1.")
preset = get_preset(DEFAULT_PRESET)


def start_default() -> None:
    live.start(preset.config, DEFAULT_PRESET)


# the button beside its one line, right under the picture: on a 1280x720 projector both stay above the fold
press, about = st.columns([1, 3], vertical_alignment="center")
press.button("Train the default GAN", type="primary", on_click=start_default, icon=":material/play_arrow:")
about.markdown(f"**Watch one learn:** {preset.description}. The grid shows what G makes from the same 64 noise "
               "vectors as it trains.")

snap = live.selected_snapshot()
if snap is not None and snap.config.dataset == preset.config.dataset:
    def render(s: RunSnapshot) -> None:
        live.show_status(s)
        grid, numbers = st.columns([2, 3])
        with grid:
            panels.samples_view(s, key="home", history=False)
        with numbers:
            panels.headline(s)
            panels.loss_chart(s, key="home", height=240)

    live.live(render, snap.id, key="home")
    st.page_link(course.page("app_pages/training.py"), label="Open it on the Training page: every chart, control and setting",
                 icon=":material/monitoring:")

st.subheader("The game they play")
st.markdown("They take turns: D learns from a batch of real examples and fakes, then G learns from D's verdict on its "
            "fakes. Neither may run far ahead: a D that wins outright rejects every fake with confidence and gives G "
            "little *useful* feedback. Under the original minimax loss G's gradient vanishes (the BCE loss page); "
            "under the non-saturating loss these runs use, G still gets a strong push, but only towards whatever D "
            "rates most real right now, which is how collapse starts (the Mode collapse page). The two must stay "
            "matched, learning at a similar pace. Together they play:")
st.latex(r"\min_G \max_D \; V(D, G) = \mathbb{E}_x[\log D(x)] + \mathbb{E}_z[\log(1 - D(G(z)))]")
BALANCED = f"{game.minimax_value(game.BALANCE, game.BALANCE):.3f}".replace("-", "−")  # a typographic minus
st.caption(f"A preview: the **BCE loss** page explains this game term by term, and what the expectations 𝔼 mean. D "
           f"maximises V, G minimises it. Where D can no longer tell real from fake it says ½ to everything, and "
           f"V = log ½ + log ½ = −log 4 ≈ {BALANCED}: the balance a good run heads towards.")
with st.expander("D and G as probability models"):
    st.markdown("D is a **classifier**: given an example's features X, it models **P(Y | X)**, the probability of "
                "its class Y (here: real or fake). G works the other way round. A **conditional** G models "
                "**P(X | Y)**: features given a class you ask for (\"draw a 7\", the Controllable generation page). "
                "An **unconditional** G, like the one above, is never given a class. Trained on one class only, "
                "P(X | Y) = P(X) and Y can be ignored, as the course notes say. Trained on all ten digits, as here, "
                "it models the mix, **P(X) = Σ_y P(X | y) P(y)**: every kind of example at once, with no say in which. "
                "The noise z is what makes each of its samples different.")


course.links("app_pages/home.py")
