"""The hyperparameter form (AppTest: no browser): widgets from the config fields, the engine's limits and messages."""

from __future__ import annotations

from enum import Enum
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from gan_core.config import FIELDS, PRESETS, Arch, Dataset, Loss, field_type, limits
from ui.forms import GROUPS, LABELS, field_key


def _form_script() -> None:
    import streamlit as st

    from gan_core.config import get_preset
    from ui.forms import config_form

    preset = st.session_state.setdefault("preset", "digits")
    cfg = config_form(get_preset(preset).config, uploaded_points=st.session_state.get("uploaded", ""))
    st.session_state["result"] = None if cfg is None else cfg.to_dict()


def _app(preset: str = "digits", uploaded: str = "") -> AppTest:
    app = AppTest.from_function(_form_script, default_timeout=30)
    app.session_state["preset"] = preset
    app.session_state["uploaded"] = uploaded
    app.run()
    assert not app.exception
    return app


def _widget(app: AppTest, preset: str, name: str) -> Any:
    key = field_key("train", PRESETS[preset].config, name)
    kind = field_type(name)
    if issubclass(kind, Enum):
        return app.selectbox(key=key)
    return app.checkbox(key=key) if kind is bool else app.number_input(key=key)


def _submit(app: AppTest, preset: str = "digits") -> AppTest:
    app.button(key=field_key("train", PRESETS[preset].config, "submit")).click().run()
    assert not app.exception
    return app


def _after(app: AppTest, key: str) -> Any:
    """The element right after the widget with this key, in the same container."""

    def walk(block: Any) -> tuple[bool, Any]:
        kids = [block.children[i] for i in sorted(block.children)]
        for i, node in enumerate(kids):
            if getattr(node, "key", None) == key:
                return True, kids[i + 1] if i + 1 < len(kids) else None
            if getattr(node, "children", None):
                found, nxt = walk(node)
                if found:
                    return True, nxt
        return False, None

    found, nxt = walk(app.main)
    assert found, key
    return nxt


def test_groups_cover_every_field_but_the_upload_once() -> None:
    shown = [name for names in GROUPS.values() for name in names]
    assert sorted(shown) == sorted(set(FIELDS) - {"points_csv"})
    assert set(LABELS) <= set(FIELDS)


@pytest.mark.parametrize("preset", ["digits", "ring-wgan", "first-gan"])
def test_one_widget_per_field_with_the_presets_values_limits_and_help(preset: str) -> None:
    app = _app(preset=preset)
    config = PRESETS[preset].config
    shown = [name for names in GROUPS.values() for name in names]
    assert len(app.selectbox) + len(app.checkbox) + len(app.number_input) == len(shown)
    for name in shown:
        widget = _widget(app, preset, name)
        assert widget.value == getattr(config, name), name
        assert widget.help == FIELDS[name].metadata["help"]
        assert widget.label == LABELS[name]
        if widget.type == "number_input":
            assert (widget.min, widget.max) == limits(name), name
    assert app.session_state["result"] is None  # nothing is returned before a submit
    assert not app.error


def test_submitting_valid_values_returns_the_validated_config() -> None:
    app = _app()
    _widget(app, "digits", "z_dim").set_value(16)
    _widget(app, "digits", "loss").set_value(Loss.WGAN_GP)
    _widget(app, "digits", "conditional").check()
    result = _submit(app).session_state["result"]
    expected = PRESETS["digits"].config.replace(z_dim=16, loss="wgan_gp", conditional=True).to_dict()
    assert result == expected
    assert not app.error and not app.warning


def test_submitting_unchanged_returns_the_preset() -> None:
    assert _submit(_app(preset="ring-bce"), "ring-bce").session_state["result"] == PRESETS["ring-bce"].config.to_dict()


def test_a_small_learning_rate_round_trips_exactly() -> None:
    app = _app()
    lr = _widget(app, "digits", "lr_g")
    assert lr.proto.format == "%g"  # the default "%0.2f" would show 1e-5 as 0.00
    lr.set_value(1e-5)
    _widget(app, "digits", "lr_d").set_value(3e-7)
    result = _submit(app).session_state["result"]
    assert result["lr_g"] == 1e-5 and result["lr_d"] == 3e-7


@pytest.mark.parametrize(("field", "value", "words"), [
    ("conditional", True, "needs labelled data"),
    ("arch", Arch.DCGAN, "digits are 8×8"),
])
def test_an_invalid_combination_is_shown_under_its_field_and_nothing_is_returned(field: str, value: Any, words: str) -> None:
    app = _app(preset="digits" if field == "arch" else "ring-bce")
    preset = app.session_state["preset"]
    widget = _widget(app, preset, field)
    widget.set_value(value)
    _submit(app, preset)
    assert app.session_state["result"] is None
    assert len(app.error) == 1 and words in app.error[0].value
    following = _after(app, field_key("train", PRESETS[preset].config, field))
    assert following is not None and following.type == "error" and words in following.value


def test_points_without_an_upload_is_an_error_on_the_dataset() -> None:
    app = _app(preset="ring-bce")
    _widget(app, "ring-bce", "dataset").set_value(Dataset.POINTS)
    _submit(app, "ring-bce")
    assert app.session_state["result"] is None
    following = _after(app, field_key("train", PRESETS["ring-bce"].config, "dataset"))
    assert following.type == "error" and "draw or upload your 2D points first" in following.value


def test_points_with_an_upload_uses_the_saved_file(tmp_path: Any) -> None:
    from gan_core.runs.uploads import save_points_upload

    path = str(save_points_upload("p.csv", b"0,0\n1,1\n", runs_dir=tmp_path))
    app = _app(preset="ring-bce", uploaded=path)
    _widget(app, "ring-bce", "dataset").set_value(Dataset.POINTS)
    result = _submit(app, "ring-bce").session_state["result"]
    assert result["dataset"] == "points" and result["points_csv"] == path


def test_the_upload_is_ignored_for_other_datasets() -> None:
    result = _submit(_app(preset="ring-bce", uploaded="somewhere.csv"), "ring-bce").session_state["result"]
    assert result["dataset"] == "ring" and result["points_csv"] == ""


def test_another_preset_resets_the_widgets_to_its_values() -> None:
    app = _app(preset="digits")
    _widget(app, "digits", "z_dim").set_value(7)
    assert _submit(app).session_state["result"]["z_dim"] == 7
    app.run()
    assert _widget(app, "digits", "z_dim").value == 7  # a submitted edit survives reruns
    app.session_state["preset"] = "ring-bce"
    app.run()
    assert _widget(app, "ring-bce", "z_dim").value == PRESETS["ring-bce"].config.z_dim
    assert _submit(app, "ring-bce").session_state["result"] == PRESETS["ring-bce"].config.to_dict()


def test_recording_is_folded_and_its_widgets_live_in_the_expander() -> None:
    app = _app()
    (expander,) = app.expander
    assert expander.label == "Recording" and not expander.proto.expanded
    keys = [field_key("train", PRESETS["digits"].config, name) for name in GROUPS["Recording"]]
    assert [widget.key for widget in expander.number_input] == keys


def _whole_number_page() -> None:
    import streamlit as st

    from ui.forms import whole_number

    steps = whole_number(st, "More steps", min_value=1, max_value=1_000_000, value=500, key="more")
    st.write(f"steps = {steps}")


@pytest.mark.parametrize("forged", [float("inf"), float("-inf"), float("nan"), 2.5, 1e12])
def test_a_forged_whole_number_never_shows_a_traceback(forged):
    """A browser can send any double for a whole-number field (Streamlit's own int() of inf, for an int field, raised
    before the page's code ran). Not finite or out of range: the default, as Streamlit resets it; a fraction: the
    one-line message a typed value gets, and the default."""
    app = AppTest.from_function(_whole_number_page, default_timeout=30)
    app.run()
    app.number_input(key="more").set_value(forged).run()
    assert not app.exception, [e.value for e in app.exception]
    assert "steps = 500" in app.markdown[0].value
    if forged == 2.5:
        assert [e.value for e in app.error] == ["More steps: 2.5 is not a whole number; give one from 1 to 1,000,000."]
    else:
        assert not app.error
    app.number_input(key="more").set_value(1200).run()  # a typed value still works
    assert "steps = 1200" in app.markdown[0].value and not app.error
