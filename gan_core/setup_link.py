"""A setup in a link: a training setup as address-bar parameters, and back, checked like any other input.

TensorFlow Playground keeps its whole state in the URL, so a teacher shares a link instead of dictating settings. Here
a link names a preset and only the fields that differ from it, plus the seed (a run's setup is not complete without
it): `?preset=ring-bce&lr_g=0.001&seed=3`. `hide=lr_d,beta1` asks the form to hide fields a lesson does not need
(their values still come from the link or the preset).

Reading a link is forgiving where it can be and exact about what it refused: every bad value is kept out of the setup
and reported against its field, with the engine's own message (TrainConfig), so the form can show it under that field
while the rest of the link still applies. Nothing here starts anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from gan_core.config import FIELDS, PRESETS, ConfigError, TrainConfig, coerce

PRESET, HIDE = "preset", "hide"
NOT_IN_LINKS = ("points_csv",)  # a file on the server: a link cannot carry it (the points are drawn or uploaded)
LINK_FIELDS = tuple(name for name in FIELDS if name not in NOT_IN_LINKS)
MAX_ROUNDS = len(FIELDS)  # each round drops at least one refused value: the setup is found within this many


@dataclass(frozen=True)
class SetupLink:
    """What a link asks for: the preset, its setup (the link's valid values over the preset's), the refused values
    (field -> the engine's message, naming the link's value) and the fields to hide."""

    preset: str
    config: TrainConfig
    errors: dict[str, str] = field(default_factory=dict)
    hidden: tuple[str, ...] = ()


def text(value: Any) -> str:
    """A field's value as a link writes it: an enum's value, true/false, the shortest exact number."""
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def to_params(preset: str, config: TrainConfig, hidden: tuple[str, ...] = ()) -> dict[str, str]:
    """The link's parameters: the preset, the fields whose value differs from the preset's, the seed, and `hide`."""
    if preset not in PRESETS:
        raise ConfigError(PRESET, f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    base = PRESETS[preset].config
    params = {PRESET: preset}
    for name in LINK_FIELDS:
        value = getattr(config, name)
        if name == "seed" or value != getattr(base, name):
            params[name] = text(value)
    if hidden:
        params[HIDE] = ",".join(hidden)
    return params


def is_setup(params: Mapping[str, str]) -> bool:
    """Whether the address names a setup (a preset), not only a run."""
    return PRESET in params


def from_params(params: Mapping[str, str]) -> SetupLink:
    """The setup a link asks for. ConfigError only for an unknown preset (nothing to start from); every other bad
    value is in `.errors` under its field (unknown fields under their own name, and `hide` under "hide")."""
    preset = str(params.get(PRESET, "")).strip()
    if preset not in PRESETS:
        raise ConfigError(PRESET, f"the link's preset {preset!r} is not one of: {', '.join(PRESETS)}")
    errors: dict[str, str] = {}
    wanted: dict[str, Any] = {}
    for name, raw in params.items():
        if name in (PRESET, HIDE) or not _is_setup_key(name):
            continue
        if name not in LINK_FIELDS:
            errors[name] = f"the link's {name}={raw!r} is not a setting of a run"
            continue
        try:
            wanted[name] = coerce(name, raw)
        except ConfigError as err:
            errors[name] = _message(err)
    base = PRESETS[preset].config.to_dict()
    for _ in range(MAX_ROUNDS):  # a value fine alone can clash with another (the engine names which): drop it
        try:
            config = TrainConfig.from_dict({**base, **wanted})
            break
        except ConfigError as err:
            if err.field not in wanted:  # the clash is with one of the preset's own values: drop the link's others
                errors[err.field] = _message(err)
                wanted.clear()
                continue
            errors[err.field] = _message(err)
            del wanted[err.field]
    else:  # (unreachable: each round drops one value, and the preset alone is valid)
        config = PRESETS[preset].config
    hidden, unknown = _hidden(params.get(HIDE, ""))
    if unknown:
        errors[HIDE] = f"hide names no setting of a run: {', '.join(unknown)}"
    return SetupLink(preset, config, errors, hidden)


def _is_setup_key(name: str) -> bool:
    """Parameters that belong to other features (the run shown, ?run=) are not the setup's."""
    return name != "run"


def _hidden(raw: str) -> tuple[tuple[str, ...], list[str]]:
    names = [n.strip() for n in str(raw).split(",") if n.strip()]
    return tuple(n for n in names if n in LINK_FIELDS), [n for n in names if n not in LINK_FIELDS]


def _message(err: ConfigError) -> str:
    return str(err).removeprefix(f"{err.field}: ")
