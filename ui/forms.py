"""The hyperparameter form, built from gan_core's config fields.

Types, limits and help text come from `TrainConfig`'s field metadata, where every limit lives beside its field: this
file adds only labels and layout. Validation is the engine's own `TrainConfig.from_dict`; its ConfigError names the
field, and the message is shown right under that field's widget.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from decimal import Decimal
from enum import Enum
from typing import Any

import streamlit as st

from gan_core.config import FIELDS, ConfigError, Dataset, TrainConfig, coerce, field_type, limits

GROUPS: dict[str, tuple[str, ...]] = {
    "Data": ("dataset",),
    "Architecture": ("arch", "z_dim", "g_width", "g_depth", "d_width", "d_depth", "g_activation", "g_slope",
                     "d_activation", "d_slope", "g_batchnorm", "d_batchnorm", "conditional"),
    "Objective": ("loss", "g_objective", "gp_lambda", "d_steps"),
    "Optimisation": ("lr_g", "lr_d", "lr_final", "beta1", "beta2", "batch_size", "steps", "seed"),
    "Recording": ("probe_every", "sample_every", "checkpoint_every", "n_samples"),
}
# points_csv is the one field without a widget: it comes from the upload (see config_form's uploaded_points).

_COLUMNS: tuple[tuple[str, ...], ...] = (("Data", "Objective"), ("Architecture",), ("Optimisation",))
_FOLDED: tuple[str, ...] = ("Recording",)  # rarely changed: in a collapsed expander under the columns
assert sorted(g for groups in (*_COLUMNS, _FOLDED) for g in groups) == sorted(GROUPS)

LABELS: dict[str, str] = {
    "dataset": "Dataset",
    "arch": "Architecture",
    "z_dim": "Noise size z",
    "g_width": "G width",
    "g_depth": "G depth",
    "d_width": "D width",
    "d_depth": "D depth",
    "g_activation": "G activation",
    "g_slope": "G leaky slope",
    "d_activation": "D activation",
    "d_slope": "D leaky slope",
    "g_batchnorm": "Batch norm in G",
    "d_batchnorm": "Batch norm in D",
    "conditional": "Conditional (class label)",
    "loss": "Loss",
    "g_objective": "G objective",
    "gp_lambda": "Gradient penalty λ",
    "d_steps": "D steps per G step",
    "lr_g": "G learning rate",
    "lr_d": "D learning rate",
    "lr_final": "Final learning-rate fraction",
    "beta1": "Adam β1",
    "beta2": "Adam β2",
    "batch_size": "Batch size",
    "steps": "Steps",
    "seed": "Seed",
    "probe_every": "Probe every (steps)",
    "sample_every": "Samples every (steps)",
    "checkpoint_every": "Checkpoint every (steps)",
    "n_samples": "Samples per snapshot",
}

# Display names of enum values where plain "value with spaces" reads badly.
_OPTION_LABELS: dict[str, str] = {
    "points": "your CSV points", "mnist": "MNIST", "fashion-mnist": "Fashion-MNIST",
    "mlp": "MLP", "dcgan": "DCGAN",
    "relu": "ReLU", "leaky_relu": "leaky ReLU", "elu": "ELU",
    "bce": "BCE", "wgan_gp": "WGAN-GP",
    "non_saturating": "non-saturating",
}


def label(name: str) -> str:
    return LABELS.get(name, name)


def option_label(option: Enum) -> str:
    return _OPTION_LABELS.get(option.value, str(option.value).replace("_", " "))


def field_key(form_key: str, base: TrainConfig, name: str) -> str:
    """The widget key of one field: a different base config gives new keys, so its values replace the old widgets'."""
    identity = hashlib.sha256(json.dumps(base.to_dict(), sort_keys=True).encode()).hexdigest()[:10]
    return f"{form_key}:{identity}:{name}"


def field_widget(name: str, value: Any, key: str) -> Any:
    """One widget for one config field, chosen by the field's type, with its limits and help from the config."""
    kind = field_type(name)
    value = coerce(name, value)
    text = label(name)
    help_text = FIELDS[name].metadata.get("help")
    if issubclass(kind, Enum):
        options = list(kind)
        return st.selectbox(text, options, index=options.index(value), format_func=option_label, help=help_text, key=key)
    if kind is bool:
        return st.checkbox(text, value=value, help=help_text, key=key)
    lo, hi = limits(name)
    if kind is int:
        return whole_number(st, text, min_value=None if lo is None else int(lo), max_value=None if hi is None else int(hi),
                            value=value, step=1, help=help_text, key=key)
    if kind is float:
        # "%g" shows the shortest exact form (sprintf.js), so 1e-5 reads 0.00001 where the default "%0.2f" shows 0.00
        return st.number_input(text, min_value=None if lo is None else float(lo), max_value=None if hi is None else float(hi),
                               value=value, step=_step(value), format="%g", help=help_text, key=key)
    return st.text_input(text, value=value, help=help_text, key=key)


def whole_number(container: Any, label: str, *, key: str, min_value: int | None, max_value: int | None,
                 value: int | None = None, step: int = 1, **kwargs: Any) -> int:
    """`container.number_input` for a whole number from `min_value` to `max_value`.

    Drawn as a float field shown without decimals: a browser can send any value, and Streamlit's own int() of an
    infinite or NaN one for an int field raises before the page's code runs (a traceback to the sender). A float field's
    value that is not finite, or out of range, Streamlit resets to the default itself; one with a fraction (only a
    forged value can have one) gets the one-line message a typed value gets, and the default.

    `value` None: the field's value is kept in st.session_state[key] (set it as a float there)."""
    if value is not None:
        kwargs["value"] = float(value)
    number = container.number_input(label, min_value=None if min_value is None else float(min_value),
                                    max_value=None if max_value is None else float(max_value), step=float(step),
                                    format="%.0f", key=key, **kwargs)
    if not math.isfinite(number) or not float(number).is_integer():  # inf: Streamlit resets it first; NaN too
        allowed = (f"from {min_value:,} to {max_value:,}" if min_value is not None and max_value is not None
                   else "without decimals")
        container.error(f"{label}: {number:g} is not a whole number; give one {allowed}.", icon=":material/block:")
        return int(value if value is not None else (min_value or 0))
    return int(number)


def _step(value: float) -> float:
    """The unit of the value's last decimal digit, at most 0.1: + and − nudge 2e-4 by 1e-4, 0.999 by 0.001, 0.5 by 0.1."""
    exponent = Decimal(repr(value)).as_tuple().exponent
    assert isinstance(exponent, int)  # a finite config value
    return 10.0 ** min(exponent, -1)


def config_form(base: TrainConfig, *, key: str = "train", submit_label: str = "Start",
                uploaded_points: str = "", hidden: tuple[str, ...] = (), notes: Mapping[str, str] | None = None,
                on_link: Callable[[TrainConfig], None] | None = None) -> TrainConfig | None:
    """Render the form starting from `base`; on a valid submit return the new config, otherwise None.

    `uploaded_points` is the saved CSV path (gan_core.runs.uploads.save_points_upload) used when dataset is points.
    On an invalid submit the engine's message is shown under the field it names, and None is returned: nothing starts.
    `hidden`: fields not drawn (a teacher's link hides what today's lesson does not need); they keep base's values.
    `notes`: messages to show under fields from the start (a link's refused values). `on_link`: a second button,
    Copy link, that checks the form like Start and hands the setup to on_link instead of starting it.
    """
    values: dict[str, Any] = {}
    errors: dict[str, Any] = {}  # field -> the st.empty() under its widget
    notes = notes or {}

    def render(group: str) -> None:
        for name in GROUPS[group]:
            if name in hidden:
                continue
            values[name] = field_widget(name, getattr(base, name), field_key(key, base, name))
            errors[name] = st.empty()
            if name in notes:
                errors[name].warning(f"From the link: {notes[name]}", icon=":material/link_off:")

    def shown(group: str) -> bool:
        return any(name not in hidden for name in GROUPS[group])

    with st.form(key):
        for column, groups in zip(st.columns(len(_COLUMNS)), _COLUMNS, strict=True):
            with column:
                for group in filter(shown, groups):
                    st.markdown(f"**{group}**")
                    render(group)
        for group in filter(shown, _FOLDED):
            with st.expander(group, expanded=False):
                render(group)
        form_error = st.empty()
        buttons = st.columns([1, 1, 3]) if on_link is not None else [st]
        submitted = buttons[0].form_submit_button(submit_label, type="primary", key=field_key(key, base, "submit"))
        linked = on_link is not None and buttons[1].form_submit_button(
            "Copy link", icon=":material/link:", key=field_key(key, base, "link"),
            help="A link to this setup (the preset and what you changed): whoever opens it gets this form, filled in.")
    if not submitted and not linked:
        return None

    chosen = {**base.to_dict(), **values}
    try:
        if chosen["dataset"] is Dataset.POINTS and not uploaded_points:
            raise ConfigError("dataset", "draw or upload your 2D points first (Preset: my 2D points)")
        chosen["points_csv"] = uploaded_points if chosen["dataset"] is Dataset.POINTS else ""
        config = TrainConfig.from_dict(chosen)
    except ConfigError as err:
        message = str(err).removeprefix(f"{err.field}: ")
        if err.field in errors:
            errors[err.field].error(message)
            # the field may be far down a column or folded away: say where to look beside the button too
            form_error.warning(f"Not {'started' if submitted else 'linked'}: see “{label(err.field)}” above.")
        else:
            form_error.error(f"Not {'started' if submitted else 'linked'}: {err}")
        return None
    if linked:
        on_link(config)
        return None
    return config
