"""UI latency under training: Training-page rerun time idle and while a run trains, and the run's speed with and
without a page polling it (AppTest: the server's side of a browser, without a browser's own CPU use).

    python benchmarks/ui_latency.py [--workers processes|threads] [--seconds 10]

Phases alternate (alone, polled, alone, polled) so a noisy machine hits both alike. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", choices=("processes", "threads"), default="processes")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--preset", default="digits")
    args = parser.parse_args()
    os.environ["GAN_WORKERS"] = args.workers
    os.environ["GAN_MAX_RUNS"] = "1"
    os.environ.setdefault("GAN_RUNS_DIR", tempfile.mkdtemp(prefix="ui_latency_"))
    sys.path.insert(0, str(REPO))

    # imported only now: the environment above must be set first, and the repository put on the path
    from streamlit.testing.v1 import AppTest  # noqa: PLC0415

    from gan_core.config import get_preset  # noqa: PLC0415
    from ui import live  # noqa: PLC0415

    def page() -> AppTest:
        app = AppTest.from_file(str(REPO / "dashboard.py"), default_timeout=60)
        app.switch_page("app_pages/training.py")
        return app

    app = page()
    app.run()  # imports, the manager, its worker: not part of any timing
    # the worker process imports torch and warms up: 5 s was too short on a slow day (measured 2026-11-29: 1.0 s to
    # the first samples after 5 s, 0.07 s after 15 s), and "first samples after Start" is meant for a ready worker
    time.sleep(15)
    idle = []
    for _ in range(20):
        t = time.perf_counter()
        app.run()
        idle.append(time.perf_counter() - t)

    manager = live.get_manager()
    t0 = time.perf_counter()
    run_id = live.start(get_preset(args.preset).config.replace(steps=10_000_000), "latency")
    first = manager.wait(run_id, lambda s: bool(s.samples), timeout=30)
    first_update = time.perf_counter() - t0
    manager.wait(run_id, lambda s: s.step >= 200, timeout=60)

    def speed(polled: bool) -> tuple[float, list[float]]:
        reruns: list[float] = []
        start = manager.snapshot(run_id).step
        t = time.perf_counter()
        while time.perf_counter() - t < args.seconds:
            if polled:
                r = time.perf_counter()
                app.run()
                reruns.append(time.perf_counter() - r)
                time.sleep(max(0.0, 1.0 - (time.perf_counter() - r)))  # one refresh a second, as the live panel
            else:
                time.sleep(0.2)
        return (manager.snapshot(run_id).step - start) / (time.perf_counter() - t), reruns

    alone, polled, busy = [], [], []
    for _ in range(2):
        rate, _ = speed(False)
        alone.append(rate)
        rate, reruns = speed(True)
        polled.append(rate)
        busy += reruns
    manager.stop(run_id)
    manager.wait(run_id, timeout=30)
    live.reset_manager()
    result = {
        "workers": args.workers,
        "preset": args.preset,
        "first_samples_after_start_s": round(first_update, 3),
        "first_samples_step": first.samples[-1].step,
        "rerun_idle_median_ms": round(1000 * statistics.median(idle), 1),
        "rerun_training_median_ms": round(1000 * statistics.median(busy), 1),
        "rerun_training_p90_ms": round(1000 * sorted(busy)[int(0.9 * (len(busy) - 1))], 1),
        "steps_per_s_alone": [round(r, 1) for r in alone],
        "steps_per_s_polled": [round(r, 1) for r in polled],
        "speed_ratio_polled_vs_alone": round(sum(polled) / sum(alone), 3),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
