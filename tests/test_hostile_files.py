"""Hostile files and text: a checkpoint or cache file crafted to run code on load is refused by every loader, every
torch.load in the engine and UI uses weights_only=True (checked on the source, so a new one without it fails here), and
user text never reaches the page as HTML or as markdown formatting.

The property tests over configs, the CLI, uploads and run names are in test_hostile_input.py, whose strategies of odd
names and text these tests share.
"""


import ast
import builtins
import os
import string
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from gan_core import cli
from gan_core.config import ConfigError
from gan_core.runs import train_run
from gan_core.runs.folder import CHECKPOINT_FILE, RunStore
from gan_core.runs.manager import RunManager
from gan_core.runs.status import Status
from gan_core.train.records import CheckpointError
from gan_core.train.trainer import Trainer
from tests.test_hostile_input import (
    HOSTILE_NAMES,
    ODD_TEXT,
    PROPERTY,
    REPO_ROOT,
    _assert_clear,
    _assert_one_line_naming,
    _run_cli,
)
from tests.tiny import tiny
from ui.text import md_escape

pytestmark = pytest.mark.usefixtures("one_thread")


# -- 1. checkpoints -----------------------------------------------------------------------------------------------------
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


# -- 2. no user text as HTML or markdown --------------------------------------------------------------------------------
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
