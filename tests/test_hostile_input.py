"""Hostile input: random values, names, files and checkpoints get a result or a clear error, never a crash or an escape.

Property tests (hypothesis) over the config schema, the CLI, CSV uploads and run names: each either succeeds or raises
(or, for the CLI, exits 2 with) a ConfigError-style message that names the field on one printable line. Nothing is
written outside the runs folder. Crafted checkpoints and user text shown on pages: test_hostile_files.py.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import uuid
from collections.abc import Iterator
from enum import Enum
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from gan_core import cli
from gan_core.config import FIELDS, PRESETS, ConfigError, TrainConfig, field_type, get_preset, limits
from gan_core.data import load_dataset, load_points_csv
from gan_core.runs import train_run
from gan_core.runs.folder import RunStore
from gan_core.runs.manager import RunManager
from gan_core.runs.uploads import UPLOADS_DIR, save_points_upload
from gan_core.train.trainer import resolve_device
from tests.tiny import tiny

REPO_ROOT = Path(__file__).resolve().parents[1]
SAFE_NAME = re.compile(r"^[a-z0-9_-]{1,64}$")
SAVED_UPLOAD = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}-[0-9a-f]{12}\.csv$")
MAX_MESSAGE = 700  # the longest message: an unknown field, listing every known one
PROPERTY = settings(deadline=None,  # examples: the profile's (tests/conftest.py: fewer in the quick tier)
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

pytestmark = pytest.mark.usefixtures("one_thread")


def _assert_clear(err: BaseException, fields: set[str], printable: bool = True) -> None:
    """A ConfigError naming one of `fields`, with a non-empty message on one printable line of sensible length.

    `printable=False` for messages that quote torch's own error, which carries ANSI bold codes (still one line)."""
    assert isinstance(err, ConfigError), f"{type(err).__name__}: {err}"
    assert err.field in fields, (err.field, str(err))
    text = str(err)
    assert (text.isprintable() or not printable) and len(text.splitlines()) == 1, repr(text)
    assert len(text) <= MAX_MESSAGE, len(text)
    _, sep, message = text.partition(": ")
    assert sep and message.strip(), repr(text)


# -- values of every kind -----------------------------------------------------------------------------------------------
ODD_TEXT = st.sampled_from([
    "", " ", "\n", "\t7", "\x00", "\u202e", "\u2028", "\ufeff1", "\udcff", "١٢", "１２", "𝟙𝟚", "¹", "ⅷ", "1_000", "0x10",
    "1e3", "1e400", "-1e400", " 7 ", "+5", "-0", "-0.0", "nan", "NaN", "-inf", "Infinity", "True", "yes", "ON", "0",
    "İ", "ß", "ﬁ", "ǅ", "ring\u0301", "RING", "Fashion_MNIST", "leaky-relu", "wgan-gp", "../../etc/passwd", "/abs",
    "C:\\x", "<script>alert(1)</script>", "**x**", "[a](javascript:alert(1))", "9" * 5000, "x" * 300,
])
HUGE_INTS = st.sampled_from([2**31 - 1, 2**31, 2**63, -(2**63) - 1, 10**400, -(10**400), 10**5000])
HUGE_INT_TEXT = st.sampled_from(["2147483647", "2147483648", "9223372036854775808", "1" + "0" * 400, "-" + "9" * 5000])
ODD_FLOATS = st.sampled_from([-0.0, 0.0, 5e-324, 1e-308, 1e308, -1e308, math.inf, -math.inf, math.nan, 1e-7, 0.9999])
ANY_VALUE = st.one_of(
    st.none(), st.booleans(), st.integers(), HUGE_INTS, st.floats(), ODD_FLOATS, st.text(max_size=12), ODD_TEXT,
    st.binary(max_size=8), st.lists(st.one_of(st.integers(), HUGE_INTS), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2), st.tuples(st.integers()),
)


def _plausible(name: str) -> st.SearchStrategy:
    """Values near a field's allowed ones, so many random configs are valid and the combinations get checked too."""
    kind = field_type(name)
    if kind is bool:
        return st.one_of(st.booleans(), st.sampled_from(["true", "off", "1", "no"]))
    if kind is str:
        return st.sampled_from(["", "x.csv", "  "])
    if isinstance(kind, type) and issubclass(kind, str):  # the enums
        values = [m.value for m in kind]
        return st.sampled_from(values + [v.upper() for v in values] + [v.replace("_", "-") for v in values]
                               + [v.replace("-", "_") for v in values] + [f" {v} " for v in values])
    lo, hi = limits(name)
    lo, hi = (0 if lo is None else lo), (1e9 if hi is None else hi)
    if kind is int:
        ints = st.integers(int(lo) - 2, int(hi) + 2)
        return st.one_of(ints, ints.map(str), ints.map(float))
    floats = st.floats(lo - 0.5, hi + 0.5, allow_nan=False)
    return st.one_of(floats, floats.map(repr), st.sampled_from([lo, hi]))


def _valid(name: str) -> st.SearchStrategy:
    """Values inside a field's limits, in any of the spellings accepted (the combinations may still be impossible)."""
    kind = field_type(name)
    if kind is str:
        return st.just("")
    if kind is bool or issubclass(kind, Enum):
        return _plausible(name)
    lo, hi = limits(name)
    if kind is int:
        ints = st.integers(int(lo), int(min(hi, 10**6)))
        return st.one_of(ints, ints.map(str))
    floats = st.floats(lo, hi)
    return st.one_of(floats, floats.map(repr))


def _value(name: str) -> st.SearchStrategy:
    return st.one_of(_plausible(name), _plausible(name), ANY_VALUE)


@st.composite
def config_dicts(draw: st.DrawFn) -> dict:
    """Half the time valid values for every field but perhaps one, so valid configs are common; else anything."""
    names = draw(st.lists(st.sampled_from(sorted(FIELDS)), unique=True, max_size=len(FIELDS)))
    if draw(st.booleans()):
        values = {name: draw(_valid(name)) for name in names}
        if names and draw(st.booleans()):
            values[names[0]] = draw(_value(names[0]))
        return values
    values = {name: draw(_value(name)) for name in names}
    if draw(st.integers(0, 9)) == 0:  # now and then a key that is not a field
        values[draw(st.one_of(st.text(max_size=10), ODD_TEXT, st.integers()))] = draw(ANY_VALUE)
    return values


# -- 1. the config schema -----------------------------------------------------------------------------------------------
@PROPERTY
@given(config_dicts())
def test_from_dict_gives_a_valid_config_or_a_clear_config_error(values: dict) -> None:
    try:
        config = TrainConfig.from_dict(values)
    except Exception as err:  # noqa: BLE001 - the property: only ConfigError, and a clear one
        _assert_clear(err, set(FIELDS) | {str(k) for k in values})
        return
    event("valid config")
    assert TrainConfig.from_dict(config.to_dict()) == config


@PROPERTY
@given(st.sampled_from(sorted(PRESETS)), config_dicts().map(lambda d: {str(k): v for k, v in d.items()}))
def test_replace_on_any_preset_gives_a_valid_config_or_a_clear_config_error(preset: str, changes: dict) -> None:
    base = get_preset(preset).config
    try:
        config = base.replace(**changes)
    except Exception as err:  # noqa: BLE001
        _assert_clear(err, set(FIELDS) | set(changes))
        return
    event("valid config")
    for name in FIELDS:
        if name not in changes:
            assert getattr(config, name) == getattr(base, name)


@PROPERTY
@given(st.one_of(st.text(max_size=20), ODD_TEXT))
def test_unknown_preset_names_are_a_clear_config_error(name: str) -> None:
    assume(name not in PRESETS)
    with pytest.raises(ConfigError) as info:
        get_preset(name)
    _assert_clear(info.value, {"preset"})


# -- 2. the command line ------------------------------------------------------------------------------------------------
class _NoModelTrainer:
    """What open_run needs of a Trainer, with the real device and data checks but no model: a random config may ask
    for widths no test machine can hold, and nothing here trains."""

    def __init__(self, config: TrainConfig, device: str = "cpu", data_dir: str | None = None) -> None:
        self.config, self.device = config, resolve_device(device)
        self.data = load_dataset(config, data_dir)
        self.step_count, self.elapsed_s = 0, 0.0

    def load_state_dict(self, state: dict) -> None:
        self.step_count = int(state["step"])


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> list:
    """The CLI runs for real up to training (argument parsing, the config, the data, the run folder); the training loop
    and torch's global thread count are stubbed. Returns the list of (config, steps) the CLI would have trained."""
    trained: list = []
    monkeypatch.setattr(train_run, "Trainer", _NoModelTrainer)
    monkeypatch.setattr(cli, "train_to", lambda store, trainer, until, on_step=None: trained.append(
        (trainer.config, until)) or until)
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    return trained


# real argv never holds NUL, so generated command-line text does not either
ARG_TEXT = st.one_of(st.text(st.characters(blacklist_characters="\x00"), max_size=12),
                     ODD_TEXT.filter(lambda s: "\x00" not in s))


@st.composite
def set_pairs(draw: st.DrawFn) -> str:
    key = draw(st.one_of(st.sampled_from(sorted(FIELDS)), st.sampled_from(sorted(FIELDS)), ARG_TEXT))
    if key in FIELDS:
        value = draw(st.one_of(_plausible(key).map(str), ARG_TEXT))
    else:
        value = draw(ARG_TEXT)
    return draw(st.sampled_from([f"{key}={value}", f" {key} = {value}", key, f"={value}"]))


SMALL = ["--set", "steps=3"]  # so an accepted --resume or a default preset never asks for much


EMBEDDED = sorted(n for n, p in PRESETS.items() if p.config.dataset.value in ("ring", "grid", "digits"))
FREE = sorted(set(FIELDS) - {"dataset", "arch", "conditional", "points_csv", "loss", "g_objective"})  # any value fits


@st.composite
def train_argv(draw: st.DrawFn) -> list[str]:
    if draw(st.booleans()):  # a command line that should train: an embedded preset, in-range overrides
        argv = ["train", "--preset", draw(st.sampled_from(EMBEDDED))]
        for name in draw(st.lists(st.sampled_from(FREE), unique=True, max_size=5)):
            argv += ["--set", f"{name}={draw(_valid(name))}"]
        if draw(st.booleans()):
            argv += ["--steps", str(draw(st.integers(1, 10**6)))]
        return argv
    argv = ["train", "--preset", draw(st.one_of(st.sampled_from(sorted(PRESETS)), ARG_TEXT))]
    for pair in draw(st.lists(set_pairs(), max_size=5)):
        argv += ["--set", pair]
    number = st.one_of(st.integers(-5, 10**8).map(str), HUGE_INT_TEXT, ARG_TEXT)
    for option in ("--steps", "--seed", "--threads"):
        if draw(st.booleans()):
            argv += [option, draw(number)]
    if draw(st.booleans()):
        argv += ["--device", draw(st.sampled_from(["auto", "cpu", "cuda", "tpu", ""]))]
    if draw(st.integers(0, 4)) == 0:
        argv += ["--resume"]
    if draw(st.integers(0, 9)) == 0:
        argv += [draw(st.sampled_from(["--bogus", "extra", "--set"]))]
    return argv


def _run_cli(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(argv)
    return code, err.getvalue()


def _assert_one_line_naming(stderr: str, names: set[str]) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in stderr, stderr
    assert lines[0].isprintable(), repr(lines[0])
    assert any(n and n in lines[0] for n in names), lines[0]


CLI_NAMES = set(FIELDS) | {"preset", "device", "run", "name", "argument", "--set", "--steps", "--seed", "--threads",
                           "--out", "--resume", "--device", "--n", "label"}


@PROPERTY
@given(train_argv())
def test_cli_train_exits_0_or_2_with_one_line_naming_the_field(no_fsync: None, no_training: list, tmp_path: Path,
                                                               argv: list[str]) -> None:
    out = tmp_path / uuid.uuid4().hex
    no_training.clear()
    code, stderr = _run_cli([*argv, "--out", str(out)])
    event(f"exit {code}")
    assert code in (0, cli.EXIT_BAD_INPUT), (code, stderr)
    if code == cli.EXIT_BAD_INPUT:
        keys = {p.partition("=")[0].strip() for p in argv if "=" in p}
        _assert_one_line_naming(stderr, CLI_NAMES | keys)
        assert not (out / "config.json").exists() or "--resume" in argv
    else:
        (config, steps), = no_training
        assert RunStore(out).read_config() == config and steps == config.steps


@PROPERTY
@given(st.sampled_from(["sample", "eval"]), st.lists(st.sampled_from(["--n", "--seed", "--label", "--out", "--run"]),
                                                      max_size=4), st.lists(ARG_TEXT, min_size=4, max_size=4))
def test_cli_sample_and_eval_of_no_run_exit_2(no_training: list, tmp_path: Path, command: str, options: list[str],
                                              values: list[str]) -> None:
    argv = [command, "--run", str(tmp_path / "no-run")]
    for option, value in zip(options, values, strict=False):
        argv += [option, value]
    if command == "sample":
        argv += ["--n", "2", "--out", str(tmp_path / "x.npy")]
    code, stderr = _run_cli(argv)
    assert code == cli.EXIT_BAD_INPUT, stderr
    _assert_one_line_naming(stderr, CLI_NAMES | {str(tmp_path)})
    assert not list(tmp_path.glob("**/*.npy"))


# -- 3. uploads ---------------------------------------------------------------------------------------------------------
HOSTILE_NAMES = st.sampled_from([
    "../../etc/passwd", "../x.csv", "/etc/passwd", "/tmp/abs.csv", "C:\\x", "C:\\Windows\\x.csv", "..\\..\\w.csv",
    "\x00", "a\x00b.csv", ".", "..", "", " ", ".csv", "..csv", ".hidden.csv", "名前.csv", "🙂.csv", "\u202egpj.csv",
    "a\nb.csv", "\udcff.csv", "x" * 5000 + ".csv", "CON", "nul.csv", "~/.ssh/id_rsa", "%2e%2e%2fetc", "a/../../b.csv",
    "<script>alert(1)</script>.csv", "[a](javascript:alert(1)).csv",
])
FILE_NAMES = st.one_of(HOSTILE_NAMES, st.text(max_size=30), st.text(max_size=20).map(lambda s: s + ".csv"),
                       st.builds(lambda a, b: a + "/" + b, st.text(max_size=10), st.text(max_size=10)))

CELL = st.one_of(st.floats().map(repr), st.integers().map(str), HUGE_INT_TEXT, ODD_TEXT, st.text(max_size=6),
                 st.sampled_from(["nan", "inf", "-inf", "1e400", "1e-400", "0x1p3", "1,5", "\"1\"", "1 2", ""]),
                 st.floats(-100, 100).map(lambda x: f"{x:.3f}"))


@st.composite
def csv_bytes(draw: st.DrawFn) -> bytes:
    choice = draw(st.integers(0, 6))
    if choice == 6:  # a good file, in any of the shapes accepted
        rows = draw(st.lists(st.tuples(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6)), min_size=2, max_size=20))
        end = draw(st.sampled_from(["\n", "\r\n"]))
        text = draw(st.sampled_from(["", "x,y" + end, "\ufeff"])) + end.join(f"{x!r}, {y!r}" for x, y in rows)
        return text.encode()
    if choice == 0:
        return draw(st.binary(max_size=300))
    if choice == 1:
        return draw(st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff\xfe1\x002\x00", b"1,2\n" * 3, b"x,y\n",
                                     b"1," + b"2" * 200_000 + b"\n3,4\n", b"\"1,2\n3,4\n", b"1,2\r3,4\r", b"1,2\n3,4",
                                     b"\xef\xbb\xbfx,y\n1,2\n3,4\n", b"1\x00,2\n3,4\n"]))
    sep = draw(st.sampled_from([",", ";", "\t", ", ", "|", ",,"]))
    end = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    if choice == 2:  # numbers: the files that work, or nearly
        if draw(st.booleans()):
            sep, end = ",", draw(st.sampled_from(["\n", "\r\n"]))
        rows = draw(st.lists(st.tuples(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3)), max_size=20))
        text = end.join(f"{x!r}{sep}{y!r}" for x, y in rows)
    else:
        rows = draw(st.lists(st.lists(CELL, max_size=3), max_size=8))
        text = end.join(sep.join(r) for r in rows)
    header = draw(st.sampled_from(["", "", "x,y" + end, "\ufeff", "\ufeffx,y" + end]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-16", "latin-1"]))
    return (header + text).encode(encoding, errors="replace")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile")


def _only_inside(root: Path, allowed: Path) -> None:
    """Every path under `root` is `allowed` or below it (or one of its parents)."""
    allowed = allowed.resolve()
    for p in root.rglob("*"):
        r = p.resolve()
        assert r == allowed or allowed in r.parents or r in allowed.parents, p


@PROPERTY
@given(FILE_NAMES, csv_bytes())
def test_uploads_are_saved_inside_the_uploads_folder_or_refused_clearly(no_fsync: None, sandbox: Path, filename: str,
                                                                         data: bytes) -> None:
    box = sandbox / f"up-{uuid.uuid4().hex}"
    runs = box / "runs"
    try:
        path = save_points_upload(filename, data, runs_dir=runs)
    except Exception as err:  # noqa: BLE001
        _assert_clear(err, {"points_csv"})
        assert not list((runs / UPLOADS_DIR).glob("*"))  # a refused file is not kept (nor its temp file)
    else:
        event("saved")
        assert path.resolve().parent == (runs / UPLOADS_DIR).resolve()
        assert SAVED_UPLOAD.match(path.name), path.name
        assert path.read_bytes() == data
        points = load_points_csv(path)
        assert points.size >= 2 and torch.isfinite(points.x).all()
    _only_inside(box, runs / UPLOADS_DIR)


@PROPERTY
@given(csv_bytes())
def test_load_points_csv_reads_or_refuses_clearly(sandbox: Path, data: bytes) -> None:
    file = sandbox / f"direct-{uuid.uuid4().hex}.csv"
    file.write_bytes(data)
    try:
        points = load_points_csv(file)
    except Exception as err:  # noqa: BLE001
        _assert_clear(err, {"points_csv"})
    else:
        assert points.size >= 2 and torch.isfinite(points.x).all()


# -- 4. run names -------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def name_manager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunManager]:
    """A manager whose start() creates the run folder but queues nothing: the name is what is under test."""
    manager = RunManager(runs_dir=tmp_path_factory.mktemp("names") / "runs", max_runs=1, processes=False)
    manager._queue_run = lambda run: None  # type: ignore[method-assign]
    yield manager
    manager.shutdown()
    _only_inside(manager.runs_dir.parent, manager.runs_dir)
    # the run folders (the room's own files sit beside them)
    assert all(SAFE_NAME.match(p.name) for p in manager.runs_dir.iterdir() if p.is_dir())


@pytest.fixture
def no_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hundreds of run folders: skip the disk sync of each atomic write (not what these tests are about)."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)


RUN_NAMES = st.one_of(HOSTILE_NAMES, st.text(max_size=80), st.none(),
                      st.sampled_from(["My Run", "run.d", "a/b", "-", "_", "__init__", "-rf", "~", "$HOME", "`id`"]))
TINY = tiny("ring-bce", width=8, steps=5)


@PROPERTY
@given(RUN_NAMES)
def test_run_names_never_leave_the_runs_folder(no_fsync: None, name_manager: RunManager, name: str | None) -> None:
    runs = name_manager.runs_dir
    try:
        run_id = name_manager.start(TINY, name)
    except Exception as err:  # noqa: BLE001
        _assert_clear(err, {"name"})
    else:
        event("started")
        assert SAFE_NAME.match(run_id), run_id
        folder = runs / run_id
        assert folder.resolve().parent == runs.resolve() and (folder / "config.json").is_file()
        assert RunStore(folder).read_config() == TINY
    assert [p.name for p in runs.parent.iterdir()] == ["runs"]  # and the fixture checks every folder in the end
