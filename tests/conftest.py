"""Shared fixtures and the skip policy.

Tests that need something this machine may lack (MNIST files, Chromium, the tensorboard package) call `require_mnist()` /
`require_chromium()` / `require_tensorboard()`, or carry the `mnist` / `browser` / `tensorboard` marker. Where the thing
is missing they skip with the reason; with GAN_REQUIRE_ALL=1 (set by CI) they fail instead, so CI always runs everything.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA_DIR = REPO_ROOT.parent / "shared" / "data"  # MNIST files shared beside the checkout, never downloaded
CHROMIUM = Path("/usr/bin/chromium")


def require_all() -> bool:
    return os.environ.get("GAN_REQUIRE_ALL", "").strip().lower() in ("1", "true", "yes")


def _missing(reason: str) -> None:
    if require_all():
        pytest.fail(f"{reason} (GAN_REQUIRE_ALL=1, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


def require_mnist() -> Path:
    """The shared data dir holding MNIST/raw (at least the test split), or skip/fail saying what is missing."""
    raw = SHARED_DATA_DIR / "MNIST" / "raw"
    name = "t10k-images-idx3-ubyte"
    if not ((raw / name).is_file() or (raw / f"{name}.gz").is_file()):
        _missing(f"MNIST not found: expected {raw / name} (or .gz)")
    return SHARED_DATA_DIR


def require_chromium() -> str:
    """The Chromium executable for Playwright, or skip/fail saying what is missing."""
    exe = str(CHROMIUM) if CHROMIUM.is_file() else shutil.which("chromium")
    if exe is None:
        _missing("Chromium not found: neither /usr/bin/chromium nor `chromium` on PATH (apt-get install chromium)")
    if importlib.util.find_spec("playwright") is None:
        _missing("the playwright package is not installed (pip install -r requirements-dev.txt)")
    return exe


def require_tensorboard() -> None:
    """The tensorboard package (run folders' event files are read back with it), or skip/fail saying it is missing."""
    if importlib.util.find_spec("tensorboard") is None:
        _missing("the tensorboard package is not installed (pip install -r requirements-dev.txt)")


def require_ray() -> None:
    """Ray and its `ray` command (the optional cluster backend), or skip/fail saying what is missing."""
    if importlib.util.find_spec("ray") is None or shutil.which("ray") is None:
        _missing('Ray is not installed (pip install -r requirements-dev.txt, or pip install "ray[default]")')


@pytest.fixture(scope="session", autouse=True)
def no_ray_address() -> Iterator[None]:
    """Runs train in local workers unless a test points its RunManager at a cluster itself: a developer's own
    GAN_RAY_ADDRESS must not send the whole suite to Ray."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("GAN_RAY_ADDRESS", raising=False)
        yield


def pytest_runtest_setup(item: pytest.Item) -> None:
    # the markers apply the same policy, so a marked test need not call the helper itself
    if item.get_closest_marker("mnist"):
        require_mnist()
    if item.get_closest_marker("browser"):
        require_chromium()
    if item.get_closest_marker("tensorboard"):
        require_tensorboard()


@pytest.fixture
def mnist_dir() -> Path:
    """The data dir to pass as data_dir / --data-dir for MNIST (it holds MNIST/raw)."""
    return require_mnist()


@pytest.fixture
def chromium_executable() -> str:
    return require_chromium()


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Chromium for a whole session of browser tests (a missing one skips or fails them all at once)."""
    return require_chromium()


@pytest.fixture(scope="session", autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Runs, caches and downloads go to a temporary folder, never into the repo; no test tries the network."""
    base = tmp_path_factory.mktemp("gan_env")
    dirs = {"GAN_RUNS_DIR": base / "runs", "GAN_CACHE_DIR": base / "cache", "GAN_DATA_DIR": base / "data"}
    with pytest.MonkeyPatch.context() as mp:
        for key, path in dirs.items():
            path.mkdir()
            mp.setenv(key, str(path))
        mp.setenv("GAN_OFFLINE", "1")
        yield dirs


@pytest.fixture
def fresh_manager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A test of the app gets its own runs folder and RunManager (st.cache_resource is shared by every AppTest in a
    process). Worker threads here: the browser tests cover worker processes."""
    from ui import live

    monkeypatch.setenv("GAN_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("GAN_WORKERS", "threads")
    monkeypatch.setenv("GAN_MAX_RUNS", "1")
    live.reset_manager()
    yield
    live.reset_manager()


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread, and two threads spin badly when the 2 cores are shared."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
