"""TrainConfig: presets, round-trips, coercion of typed text, and ConfigError naming the field at fault."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gan_core.config import (
    FIELDS,
    MAX_PARAMETERS,
    PRESETS,
    Activation,
    Arch,
    ConfigError,
    Dataset,
    GObjective,
    Loss,
    TrainConfig,
    coerce,
    field_type,
    get_preset,
    limits,
    weight_counts,
)

REPO_ROOT = Path(__file__).resolve().parents[1]

PRESET_NAMES = [
    "ring-bce", "ring-wgan", "grid-bce", "grid-wgan", "digits", "digits-conditional", "digits-collapse", "digits-collapse-wgan",
    "first-gan", "mnist-quick", "dcgan", "wgan-gp", "conditional",
]


def test_preset_names_are_the_documented_ones() -> None:
    assert list(PRESETS) == PRESET_NAMES


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_every_preset_builds_validates_and_round_trips(name: str) -> None:
    preset = get_preset(name)
    assert preset.name == name and preset.description and preset.source
    config = preset.config
    assert isinstance(config, TrainConfig)
    plain = config.to_dict()
    assert set(plain) == set(FIELDS)
    assert TrainConfig.from_dict(json.loads(json.dumps(plain))) == config  # survives config.json


def test_course_presets_train_on_mnist_and_toy_presets_on_mixtures() -> None:
    for name in ("first-gan", "dcgan", "wgan-gp", "conditional"):
        assert PRESETS[name].config.dataset is Dataset.MNIST
    for name in ("dcgan", "wgan-gp", "conditional"):
        assert PRESETS[name].config.arch is Arch.DCGAN
    assert PRESETS["ring-bce"].config.dataset is Dataset.RING
    assert PRESETS["grid-wgan"].config.loss is Loss.WGAN_GP
    assert PRESETS["digits-conditional"].config.conditional
    assert PRESETS["conditional"].config.conditional


def test_unknown_preset_names_the_preset() -> None:
    with pytest.raises(ConfigError) as err:
        get_preset("nope")
    assert err.value.field == "preset" and "ring-bce" in str(err.value)


def test_defaults_validate_and_round_trip() -> None:
    config = TrainConfig()
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert all(not isinstance(v, (Dataset, Arch, Activation, Loss, GObjective)) for v in config.to_dict().values())


def test_to_dict_writes_enum_values() -> None:
    plain = PRESETS["first-gan"].config.to_dict()
    assert plain["dataset"] == "mnist" and plain["arch"] == "mlp" and plain["g_activation"] == "relu"


def test_coerce_cli_text() -> None:
    assert coerce("lr_g", "1e-3") == pytest.approx(1e-3)
    assert coerce("z_dim", " 16 ") == 16 and isinstance(coerce("z_dim", "16"), int)
    assert coerce("z_dim", 16.0) == 16 and isinstance(coerce("z_dim", 16.0), int)
    assert coerce("g_batchnorm", "true") is True
    assert coerce("g_batchnorm", "False") is False
    assert coerce("g_batchnorm", "0") is False
    assert coerce("g_activation", "leaky-relu") is Activation.LEAKY_RELU
    assert coerce("g_activation", "LEAKY_RELU") is Activation.LEAKY_RELU
    assert coerce("dataset", "fashion_mnist") is Dataset.FASHION_MNIST
    assert coerce("dataset", "fashion-mnist") is Dataset.FASHION_MNIST
    assert coerce("loss", "wgan-gp") is Loss.WGAN_GP
    assert coerce("points_csv", "a.csv") == "a.csv"


def test_from_dict_accepts_cli_text_for_every_kind() -> None:
    config = TrainConfig.from_dict({"lr_g": "1e-3", "d_batchnorm": "true", "d_activation": "leaky-relu",
                                    "dataset": "fashion_mnist", "z_dim": "8"})
    assert config.lr_g == pytest.approx(1e-3)
    assert config.d_batchnorm is True
    assert config.d_activation is Activation.LEAKY_RELU
    assert config.dataset is Dataset.FASHION_MNIST
    assert config.z_dim == 8


def test_replace_coerces_and_validates() -> None:
    config = TrainConfig().replace(lr_d="0.01", g_activation="tanh")
    assert config.lr_d == pytest.approx(0.01) and config.g_activation is Activation.TANH
    with pytest.raises(ConfigError) as err:
        TrainConfig().replace(batch_size=1)
    assert err.value.field == "batch_size"


def test_every_field_has_help_and_a_known_type() -> None:
    for name, f in FIELDS.items():
        assert f.metadata["help"], name
        assert field_type(name) in (int, float, bool, str) or issubclass(field_type(name), (Dataset, Arch, Activation,
                                                                                            Loss, GObjective))
        lo, hi = limits(name)
        if lo is not None and hi is not None:
            assert lo <= getattr(TrainConfig(), name) <= hi, name


def _raises_for(field_name: str, values: dict) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_dict(values)
    assert err.value.field == field_name
    assert str(err.value).startswith(f"{field_name}: ")
    return err.value


def test_unknown_field_is_named() -> None:
    err = _raises_for("learning_rate", {"learning_rate": 0.1})
    assert "lr_g" in str(err)  # lists the known fields


@pytest.mark.parametrize(
    "name, value",
    [
        ("z_dim", "abc"),
        ("z_dim", 1.5),
        ("z_dim", "2.5"),
        ("z_dim", True),
        ("batch_size", None),
        ("lr_g", "fast"),
        ("lr_g", [0.1]),
        ("lr_d", False),
        ("g_batchnorm", "maybe"),
        ("conditional", 2),
        ("points_csv", 3),
    ],
)
def test_wrong_types_name_the_field(name: str, value: object) -> None:
    _raises_for(name, {name: value})


@pytest.mark.parametrize(
    "name, value",
    [
        ("lr_g", 0.0),
        ("lr_g", -1e-3),
        ("lr_d", 2.0),
        ("batch_size", 1),
        ("batch_size", 0),
        ("z_dim", 0),
        ("z_dim", -3),
        ("d_slope", -0.1),
        ("g_slope", 1.5),
        ("beta1", 1.0),
        ("d_steps", 0),
        ("g_depth", 9),
        ("seed", -1),
        ("lr_g", math.nan),
        ("lr_d", "nan"),
        ("gp_lambda", math.inf),
        ("beta2", "-inf"),
        ("z_dim", math.inf),
        ("z_dim", math.nan),
    ],
)
def test_out_of_range_and_non_finite_values_name_the_field(name: str, value: object) -> None:
    _raises_for(name, {name: value})


def test_limits_are_inclusive_at_both_ends() -> None:
    TrainConfig(batch_size=2, z_dim=1, d_slope=0.0, g_slope=1.0, lr_g=1e-7, lr_d=1.0)


@pytest.mark.parametrize(
    "name, value",
    [("dataset", "cifar10"), ("arch", "resnet"), ("loss", "hinge"), ("g_activation", "gelu"),
     ("d_activation", ""), ("g_objective", "maximin"), ("dataset", 3)],
)
def test_bad_enum_values_name_the_field_and_list_the_choices(name: str, value: object) -> None:
    err = _raises_for(name, {name: value})
    assert next(iter(field_type(name))).value in str(err)


def test_constructor_rejects_raw_strings_for_enums_and_wrong_types() -> None:
    with pytest.raises(ConfigError) as err:
        TrainConfig(dataset="ring")  # type: ignore[arg-type]  # from_dict coerces; the constructor does not
    assert err.value.field == "dataset"
    with pytest.raises(ConfigError) as err:
        TrainConfig(z_dim=8.0)  # type: ignore[arg-type]
    assert err.value.field == "z_dim"
    with pytest.raises(ConfigError) as err:
        TrainConfig(g_batchnorm=1)  # type: ignore[arg-type]
    assert err.value.field == "g_batchnorm"


@pytest.mark.parametrize(
    "field_name, values",
    [
        ("arch", {"arch": "dcgan", "dataset": "ring"}),
        ("arch", {"arch": "dcgan", "dataset": "grid"}),
        ("arch", {"arch": "dcgan", "dataset": "digits"}),
        ("conditional", {"conditional": True, "dataset": "ring"}),
        ("conditional", {"conditional": True, "dataset": "points", "points_csv": "p.csv"}),
        ("points_csv", {"dataset": "points"}),
        ("points_csv", {"dataset": "points", "points_csv": "   "}),
        ("points_csv", {"dataset": "digits", "points_csv": "p.csv"}),
        ("g_objective", {"loss": "wgan_gp", "g_objective": "minimax"}),
        ("g_objective", {"loss": "least_squares", "g_objective": "minimax"}),
    ],
)
def test_impossible_combinations_name_the_field(field_name: str, values: dict) -> None:
    _raises_for(field_name, values)


def test_possible_combinations_are_accepted() -> None:
    TrainConfig.from_dict({"arch": "dcgan", "dataset": "fashion-mnist"})
    TrainConfig.from_dict({"conditional": True, "dataset": "digits"})
    TrainConfig.from_dict({"dataset": "points", "points_csv": "p.csv"})  # the file is read by data.py, not here
    TrainConfig.from_dict({"loss": "bce", "g_objective": "minimax"})


def test_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainConfig().z_dim = 3  # type: ignore[misc]


def test_data_range_follows_arch_and_dataset() -> None:
    assert PRESETS["ring-bce"].config.data_range is None
    assert PRESETS["digits"].config.data_range == (0.0, 1.0)
    assert PRESETS["first-gan"].config.data_range == (0.0, 1.0)
    assert PRESETS["dcgan"].config.data_range == (-1.0, 1.0)


@pytest.mark.parametrize("value", [10**400, -(10**400)], ids=["1e400", "-1e400"])
@pytest.mark.parametrize("name", ["z_dim", "lr_g"])
def test_huge_integers_are_a_config_error(name: str, value: int) -> None:
    # e.g. `--set z_dim=1000…000` or a hand-edited config.json: a ConfigError, not an OverflowError from math/float
    _raises_for(name, {name: value})


# -- property: any dict over the real field names either builds a config that round-trips, or raises ConfigError --

def _enum_text(name: str) -> st.SearchStrategy:
    kind = field_type(name)
    if isinstance(kind, type) and issubclass(kind, (Dataset, Arch, Activation, Loss, GObjective)):
        return st.sampled_from([m.value for m in kind] + [m.value.replace("_", "-") for m in kind])
    return st.nothing()


_ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["1e-3", "true", "off", "nan", "-inf", "3", " 7 ", "0.5", "leaky-relu", "fashion_mnist",
                     "dcgan", "ring", "wgan_gp", "minimax", "x.csv", ""]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@st.composite
def _config_dicts(draw: st.DrawFn) -> dict:
    names = draw(st.lists(st.sampled_from(sorted(FIELDS)), unique=True, max_size=len(FIELDS)))
    return {name: draw(st.one_of(_ANY_VALUE, _enum_text(name))) for name in names}


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # examples: the profile's (tests/conftest.py)
@given(_config_dicts())
def test_from_dict_builds_or_raises_config_error(values: dict) -> None:
    try:
        config = TrainConfig.from_dict(values)
    except ConfigError as err:
        assert err.field in FIELDS
        return
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


@pytest.mark.parametrize(("values", "field_name"), [
    ({"g_width": 2048, "g_depth": 8}, "g_width"),  # each in range, together 46 billion weights
    ({"dataset": "mnist", "d_width": 2048, "d_depth": 4}, "d_width"),
    ({"dataset": "mnist", "arch": "dcgan", "g_width": 2048}, "g_width"),
])
def test_networks_too_big_to_build_are_refused_before_any_memory_is_taken(values: dict, field_name: str) -> None:
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict(values)
    assert info.value.field == field_name and "M weights" in str(info.value) and "lower" in str(info.value)


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("variant", [{}, {"g_batchnorm": False, "d_batchnorm": True}, {"g_width": 24, "d_width": 40}])
def test_counted_weights_are_the_built_networks_weights(name: str, variant: dict) -> None:
    """The size check counts from gan_core.shapes without torch; the networks are built from the same lists."""
    from gan_core.train.models import build_models

    config = PRESETS[name].config.replace(**variant)
    g, d = build_models(config, config.dataset.shape, 10)
    assert weight_counts(config) == (sum(p.numel() for p in g.parameters()), sum(p.numel() for p in d.parameters()))


@pytest.mark.server
def test_models_import_first_and_config_stays_light() -> None:
    """models imports config, which checks its presets as it loads: neither may need the other half-imported, and
    loading config must not pull in torch's compiler (it once cost every start 1.4 s)."""
    code = "import sys, gan_core.train.models, gan_core.config; print('torch._dynamo' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_dataset_shape_is_what_the_loader_gives() -> None:
    """The size check builds the networks for Dataset.shape: it must be the shape training then sees."""
    from gan_core.data import load_dataset

    for name in ("ring", "grid", "digits"):
        config = TrainConfig.from_dict({"dataset": name})
        assert load_dataset(config).shape == config.dataset.shape


# The largest networks the form allows (found by searching widths and depths under MAX_PARAMETERS): the memory benchmark
# trains and downloads this config (benchmarks/memory.py LARGEST).
LARGEST = {"dataset": "ring", "z_dim": 512, "g_width": 1873, "g_depth": 2, "d_width": 1998, "d_depth": 2}


def test_the_largest_allowed_networks_fit_the_limit_and_one_more_unit_is_refused_naming_the_width() -> None:
    g, d = weight_counts(TrainConfig.from_dict(LARGEST))
    assert MAX_PARAMETERS - 1000 < g <= MAX_PARAMETERS and MAX_PARAMETERS - 1000 < d <= MAX_PARAMETERS
    # a checkpoint keeps each weight and Adam's two moments in float32: it must stay under Streamlit's 200 MiB static
    # file limit, or the dashboard could not offer it for download from disk (ui/downloads.py)
    assert (g + d) * 3 * 4 < 200 * 1024 * 1024
    for width in ("g_width", "d_width"):
        with pytest.raises(ConfigError) as info:
            TrainConfig.from_dict({**LARGEST, width: LARGEST[width] + 1})
        assert info.value.field == width
        assert "8.0 M weights, more than the 8 M allowed" in str(info.value), str(info.value)
