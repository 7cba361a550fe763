"""A setup in a link (gan_core.setup_link, the Training page's New run form): the preset and what differs from it in
the address bar, read back into the form with every refused value under its field; `hide=` hides fields."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from gan_core import setup_link
from gan_core.config import PRESETS, ConfigError, TrainConfig
from ui import live
from ui.forms import field_key

APP = str(Path(__file__).resolve().parents[1] / "dashboard.py")


def test_a_link_names_the_preset_what_differs_from_it_and_the_seed_and_reads_back_the_same_setup():
    config = PRESETS["ring-bce"].config.replace(lr_g=1e-3, g_batchnorm=False, seed=7)
    params = setup_link.to_params("ring-bce", config, hidden=("lr_d",))
    assert params == {"preset": "ring-bce", "lr_g": "0.001", "g_batchnorm": "false", "seed": "7", "hide": "lr_d"}
    link = setup_link.from_params(params)
    assert link.config == config and link.errors == {} and link.hidden == ("lr_d",)
    as_is = setup_link.to_params("digits", PRESETS["digits"].config)
    assert as_is == {"preset": "digits", "seed": str(PRESETS["digits"].config.seed)}  # the seed, always


def test_a_bad_value_is_refused_under_its_field_and_the_rest_of_the_link_still_applies():
    link = setup_link.from_params({"preset": "ring-bce", "lr_g": "0.001", "beta1": "abc", "steps": "-5",
                                   "colour": "red", "hide": "lr_d,nope", "run": "some-run"})
    assert link.config.lr_g == 0.001
    base = PRESETS["ring-bce"].config
    assert link.config.beta1 == base.beta1 and link.config.steps == base.steps  # the preset's, not the link's
    assert set(link.errors) == {"beta1", "steps", "colour", "hide"}
    assert "abc" in link.errors["beta1"] and "-5" in link.errors["steps"]
    assert "nope" in link.errors["hide"] and link.hidden == ("lr_d",)
    assert "run" not in link.errors  # ?run= is the run shown, not part of the setup


def test_a_link_to_no_preset_is_refused_naming_the_presets():
    with pytest.raises(ConfigError) as err:
        setup_link.from_params({"preset": "nope", "lr_g": "0.001"})
    assert err.value.field == "preset" and "ring-bce" in str(err.value)
    assert not setup_link.is_setup({"run": "a-run"})  # an old ?run= link is no setup


def test_every_field_round_trips_through_its_text():
    config = PRESETS["grid-bce"].config
    for name, value in config.to_dict().items():
        if name in setup_link.LINK_FIELDS:
            assert TrainConfig.from_dict({**config.to_dict(), name: setup_link.text(value)}) == config


@pytest.mark.usefixtures("fresh_manager")
def test_the_form_opens_filled_from_a_link_copies_its_setup_and_starts_it():
    app = AppTest.from_file(APP, default_timeout=60)
    app.switch_page("app_pages/training.py")
    for name, value in {"preset": "ring-bce", "lr_g": "0.001", "beta1": "abc", "steps": "30", "g_width": "8",
                        "d_width": "8", "hide": "lr_d,z_dim"}.items():
        app.query_params[name] = value
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.selectbox(key="preset").value == "ring-bce"  # the dialog opened on the link's preset
    link = setup_link.from_params({k: app.query_params[k] for k in app.query_params})
    lr_g = app.number_input(key=field_key("train", link.config, "lr_g"))
    assert lr_g.value == 0.001
    assert not [w for w in app.number_input if w.key == field_key("train", link.config, "lr_d")]  # hidden
    assert any("From the link" in w.value and "abc" in w.value for w in app.warning)  # under Adam β1

    next(b for b in app.button if b.label == "Copy link").click().run()
    assert not app.exception, [e.value for e in app.exception]
    shared = {k: app.query_params[k] for k in app.query_params}
    assert shared == {"preset": "ring-bce", "lr_g": "0.001", "steps": "30", "g_width": "8", "d_width": "8",
                      "seed": str(PRESETS["ring-bce"].config.seed), "hide": "lr_d,z_dim"}  # no refused beta1
    assert any("preset=ring-bce" in c.value and "lr_g=0.001" in c.value for c in app.code)  # the link to copy

    next(b for b in app.button if b.label == "Start").click().run()
    assert not app.exception, [e.value for e in app.exception]
    run_id = app.session_state[live.SELECTED]
    config = live.get_manager().snapshot(run_id).config
    assert (config.lr_g, config.steps, config.g_width) == (0.001, 30, 8)
    assert {k for k in app.query_params} == {"run"}  # the address names the new run again
