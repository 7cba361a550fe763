"""A plotly figure sent to every browser as built once: its JSON written once per figure, not once per browser.

`st.plotly_chart` validates a figure and writes its JSON in every browser's script run: for a 2D run's plane (about
1,900 points and a 64 × 64 map) that is ~9 ms of a server's CPU per browser per refresh, the same work thirty times
over in a classroom. Here a figure is built and written once per name (ui.cache) and every browser's element carries
the same string.

What a browser does with it is unchanged: the element's id still follows the figure, as st.plotly_chart's does,
because Streamlit's chart keeps the first figure it was given under an id (a new figure under the same id would
never be drawn). So a live plane is still a new chart in each browser at every refresh (`python -m
benchmarks.browser_cpu`, README "What a page costs a browser").
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Hashable
from typing import Any

import plotly.graph_objects as go
import plotly.io
import streamlit as st
from streamlit.delta_generator import DeltaGenerator
from streamlit.elements.lib.form_utils import current_form_id
from streamlit.elements.lib.layout_utils import LayoutConfig
from streamlit.elements.lib.utils import compute_and_register_element_id
from streamlit.proto.PlotlyChart_pb2 import PlotlyChart as PlotlyChartProto

from ui import cache
from ui.style import PLOTLY_CONFIG

DEFAULT_HEIGHT = 450  # plotly.js's own: st.plotly_chart's height for a figure that sets none
THEME = "streamlit"  # st.plotly_chart's default theme, which every page used


def written(figure: go.Figure) -> tuple[str, int, str]:
    """The figure's JSON as st.plotly_chart writes it (unvalidated: our figures come from plotly's own classes, which
    validate as they are built), its height in pixels, and a digest of the JSON that names it in the element's id."""
    spec = plotly.io.to_json(figure, validate=False)
    height = figure.layout.height
    return spec, int(height) if height else DEFAULT_HEIGHT, hashlib.blake2b(spec.encode(), digest_size=16).hexdigest()


def plotly_chart(name: Hashable, build: Callable[[], go.Figure], *, key: str, dg: DeltaGenerator | None = None,
                 config: dict[str, Any] | None = None) -> None:
    """Draw the figure `build()` returns, built and written once per `name` for every browser; `name` must change
    whenever the figure would (e.g. (run, step, "plane")). `key` is the chart's key on the page; `dg` the container to
    draw in (by default the one `with` has opened, as for st.plotly_chart); `config` plotly's (ui.style's by default).
    """
    spec, height, digest = cache.cached(("plotly_json", name), lambda: written(build()))
    target = dg if dg is not None else st._main  # st._main: the container st.* calls draw in, honouring `with`
    config_json = json.dumps(PLOTLY_CONFIG if config is None else config)
    proto = PlotlyChartProto(spec=spec, config=config_json, theme=THEME, form_id=current_form_id(target))
    proto.id = compute_and_register_element_id("plotly_chart", user_key=key, dg=target, key_as_main_identity=False,
                                               plotly_spec=digest, plotly_config=config_json, theme=THEME)
    target._enqueue("plotly_chart", proto, layout_config=LayoutConfig(width="stretch", height=height))
