"""A classroom's runs folder fills up: how much longer does each page's script run take with 100 and 300 runs listed in
the sidebar than with two? `python -m benchmarks.sidebar_runs [--reruns N]`.

Run folders are made without training (a config.json and a status.json each, half the presenter's and half students',
two kinds, three statuses) in a temporary folder; the app runs in AppTest on the Home page (the lightest page, so the
sidebar is most of it), once to start the manager and read the folders, then `--reruns` times: the median rerun is
reported, and the extra over two runs, for the whole rerun and for the sidebar alone. Target: under 100 ms extra with 300 runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from gan_core.config import get_preset
from gan_core.runs.folder import RunStore
from ui import live, sidebar

APP = str(Path(__file__).resolve().parents[1] / "dashboard.py")
STATUSES = ("stopped", "diverged", "failed")


def make_runs(runs_dir: Path, n: int) -> None:
    configs = [get_preset(p).config.replace(steps=10, g_width=8, d_width=8) for p in ("ring-bce", "digits")]
    for i in range(n):
        store = RunStore(runs_dir / f"run-{i:04d}").create(configs[i % 2])
        store.write_status({"status": STATUSES[i % 3], "message": "", "created": 1_000.0 + i,
                            "owner": None if i % 2 else f"student-{i}"})


def measure(n: int, reruns: int) -> tuple[float, float, float]:
    """(seconds to open the app the first time, median seconds of a rerun, median seconds of the sidebar in a rerun)
    with `n` run folders."""
    spent: list[float] = []
    draw = sidebar.draw

    def timed(page: object) -> None:  # the script calls sidebar.draw through the module: this wrapper
        start = time.perf_counter()
        try:
            draw(page)
        finally:
            spent.append(time.perf_counter() - start)

    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        make_runs(runs, n)
        os.environ["GAN_RUNS_DIR"] = str(runs)
        live.reset_manager()
        sidebar.draw = timed
        try:
            app = AppTest.from_file(APP, default_timeout=120)
            start = time.perf_counter()
            app.run()
            first = time.perf_counter() - start
            assert not app.exception, [e.value for e in app.exception]
            time.sleep(live.PREWARM_DELAY_S + 1.0)  # the manager's prewarm (plotly, pandas) runs then: not a rerun's cost
            times = []
            spent.clear()
            for _ in range(reruns):
                start = time.perf_counter()
                app.run()
                times.append(time.perf_counter() - start)
            return first, statistics.median(times), statistics.median(spent)
        finally:
            sidebar.draw = draw
            live.reset_manager()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reruns", type=int, default=15)
    args = parser.parse_args()
    os.environ.setdefault("GAN_WORKERS", "threads")  # no worker processes: nothing trains here
    os.environ.setdefault("GAN_MAX_RUNS", "1")
    os.environ["GAN_OFFLINE"] = "1"
    measure(2, 3)  # imports and first-use costs land here, not on the first size measured
    base = None
    # two runs, not one, as the baseline: with an even count the run shown is the presenter's newest, a digits run,
    # at every size (the Home page draws the run shown, and a ring run's picture costs more)
    for n in (2, 100, 300):
        first, rerun, side = measure(n, args.reruns)
        base = base or (rerun, side)
        print(f"{n:>4} runs: first open {first * 1000:6.0f} ms; rerun median {rerun * 1000:5.1f} ms "
              f"({(rerun - base[0]) * 1000:+5.1f} ms over 2 runs), of which the sidebar {side * 1000:5.1f} ms "
              f"({(side - base[1]) * 1000:+5.1f} ms)")


if __name__ == "__main__":
    main()
