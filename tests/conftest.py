"""Shared fixtures, the skip policy and the test tiers.

Tests that need something this machine may lack (MNIST files, Chromium, the tensorboard package) call `require_mnist()` /
`require_chromium()` / `require_tensorboard()`, or carry the `mnist` / `browser` / `tensorboard` marker. Where the thing
is missing they skip with the reason; with GAN_REQUIRE_ALL=1 (set by CI) they fail instead, so CI always runs everything.

Tiers: `python -m pytest` runs everything; `python -m pytest --quick` leaves out the tests marked browser, load, server,
mnist or slow (one that trains for seconds in one process), and gives each property test fewer examples. e2e/ and load/
get their marker from their folder. A test outside them that starts a process (Python: a server, the CLI, a worker
process; a Ray head; a browser) without the `server` marker fails and says so, so a forgotten marker cannot make the
quick tier slow again.
"""

from __future__ import annotations

import importlib.util
import multiprocessing.process
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA_DIR = REPO_ROOT.parent / "shared" / "data"  # MNIST files shared beside the checkout, never downloaded
CHROMIUM = Path("/usr/bin/chromium")


SLOW_MARKERS = ("browser", "load", "server", "mnist", "slow")  # what the quick tier leaves out
FOLDER_MARKERS = {"e2e": "browser", "load": "load"}  # tests/<folder>/ -> the marker every test there carries
BROWSER_GROUP = "e2e+load"  # their tests' one xdist scope: see pytest_xdist_make_scheduler
PROCESS_MARKERS = ("browser", "load", "server")  # a test may start processes only with one of these
NICE_BESIDE_BROWSER = 10  # see _lower_priority_beside_the_browser
SLOW_PROGRAMS = ("python", "ray", "streamlit", "chromium")  # the processes the guard below stops (by program name)

# Property tests take their example count from the profile: the full count in CI and `python -m pytest`, fewer in --quick.
settings.register_profile("full", max_examples=200)
settings.register_profile("quick", max_examples=25)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--quick", action="store_true",
                     help=f"the quick tier: leave out tests marked {', '.join(SLOW_MARKERS)}; fewer hypothesis examples")


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """Both tiers run on several cores (pytest-xdist).

    The whole suite: two workers (pyproject's addopts: `-n 2 --dist loadscope --no-loadscope-reorder`), and the order
    matters. Its browser and classroom tests each start a server that trains runs and wait for what a person would see
    within a time: they run one after another on one worker, first (`pytest_xdist_make_scheduler`). Beside a second
    worker's CPU-bound tests on 2 cores they missed those waits (the loss chart, the first samples; measured
    2026-12-07), so the other worker's tests run at a lower CPU priority (`pytest_runtest_setup`).

    --quick: every core (at most 4 workers, unless -n is given), each test sent to whichever worker is free."""
    if os.environ.get("PYTEST_XDIST_WORKER"):  # a worker runs its share; only the controller starts workers
        return
    given = any(a.startswith(("-n", "--numprocesses")) for a in map(str, config.invocation_params.args))
    if config.getoption("--quick"):
        config.option.dist = "load"
        if not given:
            config.option.numprocesses, config.option.maxprocesses = "auto", 4


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """--dist loadscope, with every test in e2e/ and load/ in one scope, sent first (the queue keeps collection order,
    where those folders come first); other tests go a module at a time, so a module's server starts once.

    (xdist's own `xdist_group` marker would say this, but it renames each test's node id, which pytest 9.2 no longer
    lets a plugin do: the groups were silently ignored.)"""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FolderGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            parts = nodeid.split("/")
            return BROWSER_GROUP if len(parts) > 2 and parts[1] in FOLDER_MARKERS else super()._split_scope(nodeid)

    return FolderGroups(config, log)


def pytest_configure(config: pytest.Config) -> None:
    quick = config.getoption("--quick")
    if quick:
        tier = " and ".join(f"not {m}" for m in SLOW_MARKERS)
        config.option.markexpr = f"({config.option.markexpr}) and {tier}" if config.option.markexpr else tier
    if not config.getoption("hypothesis_profile", None):  # an explicit --hypothesis-profile wins
        settings.load_profile("quick" if quick else "full")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        # each worker's share of the cores for torch's own threads: two workers of two threads each on 2 cores spin
        # against each other (the quick tier: 117 s with torch's default, measured 2026-12-07)
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests_dir = Path(__file__).parent
    for item in items:
        folder = Path(item.path).relative_to(tests_dir).parts[0]
        if folder in FOLDER_MARKERS:
            item.add_marker(FOLDER_MARKERS[folder])


@pytest.fixture(autouse=True)
def _processes_need_a_marker(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test without a process marker that starts a process fails, naming the marker it lacks."""
    if any(request.node.get_closest_marker(m) for m in PROCESS_MARKERS):
        return
    name = request.node.nodeid

    def refuse(*args: object, **kwargs: object) -> None:
        pytest.fail(f"{name} starts a process: mark it @pytest.mark.server (the quick tier leaves such tests out)",
                    pytrace=False)

    popen = subprocess.Popen.__init__

    def guarded_popen(self: subprocess.Popen, cmd: object, *args: object, **kwargs: object) -> None:
        # Python (a server, the CLI, a worker), Ray, Streamlit or a browser: what makes a test slow. A library's own
        # quick probe (ctypes.util.find_library runs ldconfig, platform runs uname) is not the test's doing.
        program = cmd if isinstance(cmd, str | bytes | os.PathLike) else next(iter(cmd), "")  # type: ignore[call-overload]
        if Path(os.fsdecode(program).split()[0] if program else "").name.startswith(SLOW_PROGRAMS):
            refuse()
        popen(self, cmd, *args, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", guarded_popen)
    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", refuse)


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


def require_postgres() -> None:
    """PostgreSQL's server programs and psycopg (the classroom store's second backend), or skip/fail saying what is
    missing."""
    from support.postgres import postgres_bin

    if postgres_bin() is None:
        _missing("PostgreSQL's initdb and pg_ctl not found (apt-get install postgresql)")
    if importlib.util.find_spec("psycopg") is None:
        _missing('psycopg is not installed (pip install -r requirements.txt, or pip install "psycopg[binary]")')


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server of this test session's own, in a temporary folder (support.postgres)."""
    require_postgres()
    from support.postgres import local_postgres

    with local_postgres() as url:
        yield url


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
    _lower_priority_beside_the_browser(item)
    # the markers apply the same policy, so a marked test need not call the helper itself
    if item.get_closest_marker("mnist"):
        require_mnist()
    if item.get_closest_marker("browser"):
        require_chromium()
    if item.get_closest_marker("tensorboard"):
        require_tensorboard()


def _lower_priority_beside_the_browser(item: pytest.Item) -> None:
    """In a worker of a parallel run, a test outside e2e/ and load/ runs at nice 10, and so do its fixtures and what
    they start (set here, before the fixtures): the kernel then gives the browser group's servers and Chromium about
    nine tenths of the CPU whenever they want it, and these tests the rest. A process cannot lower its niceness again,
    so the worker stays at 10; by then the browser group has been handed out (it is first in the queue)."""
    if os.environ.get("PYTEST_XDIST_WORKER") and not any(item.get_closest_marker(m) for m in FOLDER_MARKERS.values()):
        if os.nice(0) < NICE_BESIDE_BROWSER:
            os.nice(NICE_BESIDE_BROWSER - os.nice(0))


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
    process). Worker threads here: the browser tests cover worker processes. The stage (follow the presenter) is the
    runs folder's (its classroom store), cleared anyway: a presenter left on it would lead a student elsewhere."""
    from ui import follow, live

    monkeypatch.setenv("GAN_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("GAN_WORKERS", "threads")
    monkeypatch.setenv("GAN_MAX_RUNS", "1")
    live.reset_manager()
    follow.stage().clear()
    yield
    follow.stage().clear()
    live.reset_manager()


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread, and two threads spin badly when the 2 cores are shared."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
