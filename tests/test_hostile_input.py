"""Hostile input: random values, names, files and checkpoints get a result or a clear error, never a crash or an escape.

Property tests (hypothesis) over the config schema, the CLI, CSV uploads and run names: each either succeeds or raises
(or, for the CLI, exits 2 with) a ConfigError-style message that names the field on one printable line. Nothing is
written outside the runs folder. Checkpoints are only read with weights_only=True (checked on the source, so a new
torch.load without it fails here), and a pickle crafted to run code on load is refused by every loader. User text never
reaches the page as HTML or as markdown formatting.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import io
import math
import os
import re
import string
import uuid
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from gan_core import cli
from gan_core.config import FIELDS, PRESETS, ConfigError, TrainConfig, field_type, get_preset, limits
from gan_core.data import load_dataset, load_points_csv
from gan_core.runs import train_run
from gan_core.runs.folder import CHECKPOINT_FILE, RunStore
from gan_core.runs.manager import RunManager
from gan_core.runs.status import Status
from gan_core.runs.uploads import UPLOADS_DIR, save_points_upload
from gan_core.train.records import CheckpointError
from gan_core.train.trainer import Trainer, resolve_device
from tests.tiny import tiny
from ui.text import md_escape

REPO_ROOT = Path(__file__).resolve().parents[1]
SAFE_NAME = re.compile(r"^[a-z0-9_-]{1,64}$")
SAVED_UPLOAD = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}-[0-9a-f]{12}\.csv$")
MAX_MESSAGE = 700  # the longest message: an unknown field, listing every known one
PROPERTY = settings(max_examples=150, deadline=None,
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
    assert all(SAFE_NAME.match(p.name) for p in manager.runs_dir.iterdir())


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


# -- 5. checkpoints -----------------------------------------------------------------------------------------------------
def _calls(paths: list[Path]) -> Iterator[tuple[Path, ast.Call]]:
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Call):
                yield path, node


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else "?"


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


ENGINE_AND_UI = sorted([*(REPO_ROOT / "gan_core").rglob("*.py"), *(REPO_ROOT / "ui").rglob("*.py"),
                        *(REPO_ROOT / "app_pages").rglob("*.py"), REPO_ROOT / "dashboard.py"])


def test_every_torch_load_uses_weights_only_and_nothing_unpickles() -> None:
    loads, bad = 0, []
    for path, call in _calls(ENGINE_AND_UI):
        name, where = _dotted(call.func), f"{path.relative_to(REPO_ROOT)}:{call.lineno}"
        if name in ("torch.load", "torch.serialization.load") or name.endswith("torch.load"):
            loads += 1
            if not _is_true(_keyword(call, "weights_only")):
                bad.append(f"{where}: {name} without weights_only=True")
        elif name.split(".")[-1] in ("load", "loads") and name.split(".")[0] in ("pickle", "cPickle", "dill", "joblib",
                                                                                "marshal", "shelve", "cloudpickle"):
            bad.append(f"{where}: {name} unpickles")
        elif name in ("np.load", "numpy.load") and _keyword(call, "allow_pickle") is not None \
                and not (isinstance(_keyword(call, "allow_pickle"), ast.Constant)
                         and _keyword(call, "allow_pickle").value is False):
            bad.append(f"{where}: {name} with allow_pickle")
    for path in ENGINE_AND_UI:  # `from torch import load` would hide a call from the check above
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module in ("torch", "torch.serialization", "pickle"):
                if any(a.name in ("load", "loads", "Unpickler") for a in node.names):
                    bad.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}: imports {node.module}'s loader")
    assert loads >= 3, "the scan found the store's, the classifier's and the VAE's torch.load"
    assert not bad, bad


class _RunsCode:
    """Unpickling this calls a builtin on the marker path: what a crafted checkpoint would do with os.system."""

    def __init__(self, func: object, *args: object) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


def _crafted(marker: Path) -> dict[str, object]:
    """Checkpoints that run code when unpickled without weights_only, each in a different place."""
    touch = _RunsCode(builtins.exec, f"open({str(marker)!r}, 'w').close()")
    system = _RunsCode(os.system, f"touch {marker}")
    return {
        "top-level": touch,
        "in-the-dict": {"format": 1, "step": 1, "payload": system},
        "as-a-weight": {"format": 1, "step": 1, "generator": {"blocks.0.layer.weight": touch}, "discriminator": {}},
        "as-the-config": {"format": 1, "step": 1, "config": _RunsCode(builtins.eval, f"open({str(marker)!r}, 'w')")},
    }


CKPT_CONFIG = tiny("digits", width=8, g_depth=1, d_depth=1, batch_size=8, steps=5,
                   n_samples=4)


@pytest.fixture(scope="module")
def crafted_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Path]]:
    """runs/<kind>: a run folder whose checkpoint.pt is each crafted pickle; marker: the file they would create."""
    base = tmp_path_factory.mktemp("crafted")
    marker = base / "pwned"
    runs = base / "runs"
    folders = {}
    for kind, payload in _crafted(marker).items():
        store = RunStore(runs / kind).create(CKPT_CONFIG)
        torch.save(payload, store.path / CHECKPOINT_FILE)
        folders[kind] = store.path
    return marker, runs, folders


def _assert_refused(err: BaseException, marker: Path) -> None:
    assert not marker.exists(), "the crafted checkpoint ran its code"
    assert isinstance(err, CheckpointError), f"{type(err).__name__}: {err}"
    text = str(err)
    assert CHECKPOINT_FILE in text and "cannot be read safely" in text and len(text.splitlines()) == 1, text
    assert "\x1b" not in text and "could run code" in text and len(text) < 400, text  # short, no terminal colours


@pytest.mark.parametrize("kind", list(_crafted(Path("m"))))
def test_crafted_checkpoint_is_refused_by_every_loader(crafted_runs, tmp_path: Path, kind: str) -> None:
    from gan_core.lessons.saved_generator import clear_memo, load_generator  # imports the classifier module

    marker, _, folders = crafted_runs
    run = folders[kind]
    with pytest.raises(CheckpointError) as info:
        RunStore(run).load_checkpoint()
    _assert_refused(info.value, marker)
    with pytest.raises(CheckpointError) as info:
        train_run.open_run(run)  # the resume path of the CLI and of the dashboard's workers
    _assert_refused(info.value, marker)
    clear_memo()
    with pytest.raises(CheckpointError) as info:
        load_generator(run)  # the controllable-generation page
    _assert_refused(info.value, marker)
    for argv in (["sample", "--run", str(run), "--n", "2", "--out", str(tmp_path / "x.npy")], ["eval", "--run", str(run)],
                 ["train", "--preset", "digits", "--out", str(run), "--resume"]):
        code, stderr = _run_cli(argv)
        assert code == cli.EXIT_BAD_INPUT and not marker.exists(), stderr
        _assert_one_line_naming(stderr, {CHECKPOINT_FILE})
        assert "cannot be read safely" in stderr
    assert not (tmp_path / "x.npy").exists()


def test_crafted_cache_files_are_refused(tmp_path: Path) -> None:
    from gan_core.evaluation import classifier
    from gan_core.lessons import vae

    marker = tmp_path / "pwned"
    for i, payload in enumerate(_crafted(marker).values()):
        path = tmp_path / f"cache-{i}.pt"
        torch.save(payload, path)
        with pytest.raises(Exception):  # noqa: B017 - ModelCache retrains on any error; the point is the marker
            classifier._load(path, SimpleNamespace(name="digits", x=torch.zeros(3), shape=(1, 8, 8)))
        with pytest.raises(Exception):  # noqa: B017
            vae._load(path, {"shape": [1, 8, 8], "latent_dim": 2})
        assert not marker.exists()


def test_the_dashboard_refuses_a_crafted_checkpoint_at_scan_and_at_resume(crafted_runs) -> None:
    marker, runs, folders = crafted_runs
    good = RunStore(runs / "good").create(CKPT_CONFIG)
    good.save_checkpoint(Trainer(CKPT_CONFIG).state_dict())
    manager = RunManager(runs_dir=runs, max_runs=1, processes=False)
    try:
        for kind in folders:  # found by the scan: failed, saying why, and not resumable
            snap = manager.snapshot(kind)
            assert snap.status is Status.FAILED and not snap.resumable and "cannot be read safely" in snap.message
            with pytest.raises(ConfigError) as info:
                manager.resume(kind)
            _assert_clear(info.value, {"run"}, printable=False)
        assert manager.snapshot("good").resumable
        torch.save(_crafted(marker)["in-the-dict"], good.path / CHECKPOINT_FILE)  # swapped after the scan
        manager.resume("good")
        snap = manager.wait("good", lambda s: not s.status.active, timeout=60)
        assert snap.status is Status.FAILED and "cannot be read safely" in snap.message, snap.message
    finally:
        manager.shutdown()
    assert not marker.exists()


# -- 6. no user text as HTML or markdown --------------------------------------------------------------------------------
def test_html_is_only_ever_a_literal_string() -> None:
    bad, seen = [], 0
    for path, call in _calls([p for p in ENGINE_AND_UI if "gan_core" not in p.parts]):
        seen += 1
        name = _dotted(call.func)
        unsafe = _keyword(call, "unsafe_allow_html")
        html_call = name.split(".")[-1] == "html"  # st.html, components.html, st.components.v1.html
        if html_call or (unsafe is not None and not (isinstance(unsafe, ast.Constant) and unsafe.value is False)):
            body = call.args[0] if call.args else _keyword(call, "body")
            if not (isinstance(body, ast.Constant) and isinstance(body.value, str)):
                bad.append(f"{path.relative_to(REPO_ROOT)}:{call.lineno}: {name} renders non-literal HTML")
    assert seen > 100, "the scan reached the pages"
    assert not bad, bad


def _unescape(text: str) -> str:
    """Read md_escape's output as markdown would: a backslash before punctuation is dropped, nothing else is markup."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\":
            assert i + 1 < len(text) and text[i + 1] in string.punctuation, text
            out.append(text[i + 1])
            i += 2
        else:
            assert text[i] not in string.punctuation, f"unescaped {text[i]!r} in {text!r}"
            out.append(text[i])
            i += 1
    return "".join(out)


@PROPERTY
@given(st.one_of(st.text(), HOSTILE_NAMES, ODD_TEXT, st.sampled_from(["**x**", "[a](javascript:alert(1))", ":red[x]",
                                                                       "$x$", "# h", "&lt;b&gt;", "`c`", "\\*"])))
def test_md_escape_shows_the_characters_and_no_markup(text: str) -> None:
    escaped = md_escape(text)
    assert escaped.isprintable() and len(escaped.splitlines()) <= 1
    assert _unescape(escaped) == "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def test_upload_names_and_run_names_are_shown_as_text(fresh_manager, monkeypatch: pytest.MonkeyPatch) -> None:
    import streamlit
    from streamlit.testing.v1 import AppTest

    from ui import live

    hostile = "<script>alert(1)</script>**x**[a](javascript:alert(1)).csv"
    upload = SimpleNamespace(name=hostile, data=b"x,y\n1,2\n3,abc\n")
    # the New run dialog's CSV uploader receives the file; the page's other uploader (a checkpoint) receives none
    monkeypatch.setattr(streamlit, "file_uploader", lambda *a, **k: SimpleNamespace(
        name=upload.name, getvalue=lambda: upload.data) if k.get("type") == ["csv"] else None)
    app = AppTest.from_file(str(REPO_ROOT / "dashboard.py"), default_timeout=60)
    app.switch_page("app_pages/training.py").run()
    app.button(key="new_run").click().run()
    upload_choice = next(o for o in app.selectbox(key="preset").options if "upload" in o)
    app.selectbox(key="preset").set_value(upload_choice).run()
    assert not app.exception, [e.value for e in app.exception]
    errors = [e.value for e in app.error]
    shown = hostile.rsplit("/", 1)[-1]  # a browser's file name has no folders: the message names the last part
    assert errors and all(_unescape(e).startswith(shown) for e in errors), errors  # every character escaped

    upload.data = b"x,y\n1,2\n3,4\n"
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    shown = [s.value for s in app.success]
    assert shown and shown[0].startswith(md_escape(hostile)), shown

    app.text_input(key="run_name").set_value("<>**[]()").run()  # nothing to name a run with: an error quoting it
    next(b for b in app.button if b.label == "Start").click().run()
    assert not app.exception, [e.value for e in app.exception]
    errors = [e.value for e in app.error]
    assert any("<>**[]()" in _unescape(e) for e in errors), errors
    assert live.get_manager().ids() == []


def _failed_run_status() -> None:  # an AppTest script: the status box of a run whose message quotes user text
    from types import SimpleNamespace

    from gan_core.runs.status import Status
    from ui import live

    live.show_status(SimpleNamespace(id="r", status=Status.FAILED,
                                     message="pts.csv line 3: '[a](javascript:alert(1))' is not two numbers **x** <b>"))


def test_a_failed_runs_message_is_shown_as_text() -> None:
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_function(_failed_run_status).run()
    assert not app.exception, [e.value for e in app.exception]
    message = "pts.csv line 3: '[a](javascript:alert(1))' is not two numbers **x** <b>"
    assert app.error[0].value == f"**r** failed: {md_escape(message)}"
