"""The BCE lesson page (AppTest) and its figures."""

from __future__ import annotations

import math

import pytest
from streamlit.testing.v1 import AppTest

from tests.pages import page_app
from tests.tiny import tiny
from ui import live
from ui.figures import bce_loss

PAGE = "app_pages/bce_loss.py"

pytestmark = pytest.mark.usefixtures("fresh_manager")


def _metric(app: AppTest, label: str) -> str:
    return next(m.value for m in app.metric if m.label == label)


def test_the_slider_and_the_label_move_the_loss():
    app = page_app(PAGE, 30).run()
    assert not app.exception, [e.value for e in app.exception]
    assert float(_metric(app, "loss")) == pytest.approx(-math.log(0.9), rel=1e-3)  # y = 1, h = 0.9
    app.slider(key="bce_h").set_value(0.99).run()
    assert float(_metric(app, "loss")) == pytest.approx(0.01005, rel=1e-3)  # −ln 0.99
    app.toggle(key="bce_y").set_value(False).run()  # the same prediction on a fake example: confidently wrong
    assert float(_metric(app, "loss")) == pytest.approx(-math.log(0.01), rel=1e-3)
    assert "No run yet" in app.info[0].value


def test_the_batch_cost_is_the_mean_of_the_rows():
    app = page_app(PAGE, 30).run()
    # default batch y = 1, 1, 0, 0 and h = 0.9, 0.2, 0.05, 0.6: J = (−ln .9 − ln .2 − ln .95 − ln .4) / 4
    expected = -(math.log(0.9) + math.log(0.2) + math.log(0.95) + math.log(0.4)) / 4
    assert float(_metric(app, "J(θ): the mean loss")) == pytest.approx(expected, rel=1e-3)
    app.toggle(key="bce_logits").set_value(True).run()  # logits 2.2, −1.4, −3.0, 0.4
    sig = [1 / (1 + math.exp(-v)) for v in (2.2, -1.4, -3.0, 0.4)]
    expected = -(math.log(sig[0]) + math.log(sig[1]) + math.log(1 - sig[2]) + math.log(1 - sig[3])) / 4
    assert float(_metric(app, "J(θ): the mean loss")) == pytest.approx(expected, rel=1e-3)
    assert not app.exception


def test_a_live_bce_run_shows_its_terms():
    run_id = live.start(tiny("ring-bce", steps=30, batch_size=32), "bce")
    live.get_manager().wait(run_id, timeout=60)
    app = page_app(PAGE, 30).run()
    assert not app.exception, [e.value for e in app.exception]
    real, fake = float(_metric(app, "real term −log D(x)")), float(_metric(app, "fake term −log(1 − D(G(z)))"))
    assert float(_metric(app, "D's loss: their mean")) == pytest.approx((real + fake) / 2, rel=0.01)


def test_a_wgan_run_is_not_read_as_bce():
    run_id = live.start(tiny("ring-wgan", steps=5, batch_size=32), "wgan")
    live.get_manager().wait(run_id, timeout=60)
    app = page_app(PAGE, 30).run()
    assert not app.exception
    assert any("not BCE" in i.value for i in app.info)


def test_figures_plot_the_explain_functions():
    fig = bce_loss.bce_curves(1, 0.99)
    assert fig.data[2].y[0] == pytest.approx(0.01005, rel=1e-3)
    assert fig.data[0].line.width > fig.data[1].line.width  # the chosen label's curve is bold
    grads = bce_loss.g_gradients()
    h = grads.data[0].x
    assert grads.data[0].y[0] == pytest.approx(h[0])  # minimax: |∂/∂l| = D(G(z)), vanishing at the left edge
    assert grads.data[1].y[0] == pytest.approx(1 - h[0])


def test_the_page_defines_its_symbols_the_sign_and_the_logit_in_its_text():
    app = page_app(PAGE, 30).run()
    assert not app.exception
    captions = " ".join(c.value for c in app.caption)
    for symbol in ("**h** = h(x, θ)", "**y**, the true label", "**θ**, the model's parameters", "**x⁽ⁱ⁾**",
                   "**m**, the number of examples in a batch"):
        assert symbol in captions, symbol
    assert "→ −∞ is bad" in captions and "leading minus turns that into a positive cost" in captions
    text = " ".join(m.value for m in app.markdown)
    assert "called the **logit**" in text  # in the text, not only in a tooltip
    assert "*expectation*" in text and "J(θ_d) = −V / 2" in text
    assert any("V(D, G) = \\mathbb{E}_x" in el.value for el in app.latex)
    worked = next(el.value for el in app.latex if "e.g." in el.value)
    assert "V = -0.580" in worked and "J = 0.290" in worked  # ln 0.8 + ln 0.7, and minus half of it
