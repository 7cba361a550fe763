"""ui/plotly_chart.py as Streamlit runs it (AppTest): a figure is built and written once for every session, and the
element each session gets is what st.plotly_chart would send (its JSON, its height, an id that follows the figure)."""

from __future__ import annotations

import json

import plotly.graph_objects as go
import plotly.io
import pytest
from streamlit.testing.v1 import AppTest

from ui import cache

pytestmark = pytest.mark.usefixtures("one_thread")


def _page() -> None:
    import plotly.graph_objects as go
    import streamlit as st

    from ui import plotly_chart as charts

    charts.BUILDS = getattr(charts, "BUILDS", 0)

    def build(level: float) -> go.Figure:
        charts.BUILDS += 1
        return go.Figure(go.Scatter(x=[0, 1], y=[0, level], name="line"), layout={"height": 321})

    level = st.slider("level", 0.0, 1.0, 0.5, key="level")
    charts.plotly_chart(("test_line", level), lambda: build(level), key="line")
    left, _ = st.columns(2)
    charts.plotly_chart(("test_line", level), lambda: build(level), key="in_column", dg=left)


def _charts(app: AppTest) -> list:
    return list(app.get("plotly_chart"))


@pytest.fixture(autouse=True)
def _clean_cache():
    from ui import plotly_chart as charts

    charts.BUILDS = 0
    with cache._cache_lock:
        cache._cache.clear()
    yield


def test_two_sessions_share_one_build_and_get_what_st_plotly_chart_sends():
    from ui import plotly_chart as charts

    first, second = AppTest.from_function(_page), AppTest.from_function(_page)
    first.run()
    second.run()
    assert not first.exception and not second.exception
    assert charts.BUILDS == 1  # one figure for both sessions and both charts
    expected = go.Figure(go.Scatter(x=[0, 1], y=[0, 0.5], name="line"), layout={"height": 321})
    for app in (first, second):
        main, column = _charts(app)
        assert json.loads(main.proto.spec) == json.loads(plotly.io.to_json(expected, validate=False))
        assert main.proto.theme == "streamlit"
        assert json.loads(main.proto.config) == {"displayModeBar": False}
        assert main.proto.id != column.proto.id  # two keys, two elements
    # the same figure, the same element id in every session: a browser keeps the chart it has
    assert [c.proto.id for c in _charts(first)] == [c.proto.id for c in _charts(second)]
    # the column's chart is in the column
    assert len(first.columns[0].get("plotly_chart")) == 1


def test_a_new_figure_is_a_new_element_and_the_first_comes_back_unbuilt():
    from ui import plotly_chart as charts

    app = AppTest.from_function(_page)
    app.run()
    before = _charts(app)[0]
    app.slider(key="level").set_value(0.9).run()
    after = _charts(app)[0]
    assert charts.BUILDS == 2
    assert json.loads(after.proto.spec)["data"][0]["y"] == [0, 0.9]
    # Streamlit's chart keeps the first figure it got under an id: a new figure must come with a new id to be drawn
    assert after.proto.id != before.proto.id
    app.slider(key="level").set_value(0.5).run()
    assert _charts(app)[0].proto.id == before.proto.id  # back to the first figure: its element again, no new build
    assert charts.BUILDS == 2


def _both() -> None:
    import plotly.graph_objects as go
    import streamlit as st

    from ui.plotly_chart import plotly_chart
    from ui.style import PLOTLY_CONFIG

    figure = go.Figure(go.Scatter(x=[0, 1], y=[0, 1]), layout={"height": 321, "uirevision": "plane"})
    st.plotly_chart(figure, key="theirs", config=PLOTLY_CONFIG)
    plotly_chart("same", lambda: figure, key="ours")


def test_the_element_is_the_one_st_plotly_chart_sends(monkeypatch):
    """Spec, config, theme and the element's size as Streamlit's own command sends them (what the browser draws)."""
    from streamlit.delta_generator import DeltaGenerator

    sent: list[tuple] = []
    enqueue = DeltaGenerator._enqueue

    def record(self, delta_type, element_proto, layout_config=None, **kwargs):
        sent.append((delta_type, element_proto, layout_config))
        return enqueue(self, delta_type, element_proto, layout_config=layout_config, **kwargs)

    monkeypatch.setattr(DeltaGenerator, "_enqueue", record)
    app = AppTest.from_function(_both)
    app.run()
    assert not app.exception
    (_, theirs, their_size), (_, ours, our_size) = [s for s in sent if s[0] == "plotly_chart"]
    assert (ours.spec, ours.config, ours.theme, ours.form_id) == (theirs.spec, theirs.config, theirs.theme,
                                                                  theirs.form_id)
    assert (our_size.width, our_size.height) == (their_size.width, their_size.height) == ("stretch", 321)


def test_a_figure_without_a_height_gets_plotly_s_default():
    from ui.plotly_chart import DEFAULT_HEIGHT, written

    spec, height, digest = written(go.Figure(go.Bar(x=[1], y=[2])))
    assert height == DEFAULT_HEIGHT and json.loads(spec)["data"][0]["type"] == "bar"
    assert written(go.Figure(go.Bar(x=[1], y=[2])))[2] == digest  # the id's digest follows the content only
    assert written(go.Figure(go.Bar(x=[1], y=[3])))[2] != digest
