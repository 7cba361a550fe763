"""What a page with a live run costs the browser: Chromium's renderer CPU while the Training page watches a 2D run.

    python -m benchmarks.browser_cpu [--preset ring-bce] [--seconds 10] [--chromium /usr/bin/chromium]

Starts `streamlit run dashboard.py` on an empty runs folder and one Chromium tab at a projector's 1280 × 720, opens
the Training page's New run form from a setup link (the preset, 60,000 steps: it trains through the whole
measurement), presses Start, waits for the first pictures, then measures for `--seconds` each:
1. everything on (the plane's five layers, the curves, the status);
2. the plane's layers switched off one group at a time, then all of them (what the rest of the page costs);
3. whether the plane's chart is the same one from refresh to refresh, or a new one (remounted).
Prints one Markdown row per measurement: the renderer's and the server's CPU, as a share of one core.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.classroom import cpu_seconds
from benchmarks.first_picture import LAUNCH_ARGS
from gan_core.config import PRESETS

STEPS = 60_000
LAYER_GROUPS = (("D's output",), ("G's push",), ("G's manifold",), ("real data", "generated"),
                ("D's output", "G's push", "G's manifold", "real data", "generated"))
# marks the plane's chart in the page; a chart still marked a second later is the same one, updated in place
_MARK = """() => { const p = document.querySelector('.js-plotly-plot'); if (!p) return 'none';
                   const was = p.__marked ? 'same' : 'new'; p.__marked = true; return was; }"""


def renderer_pids() -> list[int]:
    """Chromium's renderer processes now (Linux /proc): the tab's page work, JavaScript and layout, runs there."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        # Chromium rewrites its child processes' command lines into one string: match within it
        if command.split(b"\0")[0].split(b" ")[0].endswith(b"chromium") and b" --type=renderer " in command:
            pids.append(int(entry.name))
    return pids


def shares(server_pid: int, seconds: float) -> tuple[float, float]:
    """(renderer, server) CPU over the next `seconds`, each as a share of one core."""
    renderers = renderer_pids()
    before = [cpu_seconds(p) for p in renderers], cpu_seconds(server_pid)
    time.sleep(seconds)
    after = [cpu_seconds(p) for p in renderers], cpu_seconds(server_pid)
    used = sum(b - a for a, b in zip(before[0], after[0], strict=True) if b == b)  # a renderer gone: NaN, left out
    return used / seconds, (after[1] - before[1]) / seconds


def measure(chromium: str, preset: str, seconds: float) -> list[tuple[str, float, float]]:
    # imported here: the benchmarks' other entries need no playwright
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    from support.server import local_server  # noqa: PLC0415

    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp, local_server(Path(tmp) / "runs", Path(tmp) / "server.log") as (url, pid):
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=LAUNCH_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 720})
                page.goto(f"{url}/training?preset={preset}&steps={STEPS}")
                page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]", timeout=90_000)
                page.get_by_role("button", name="Start", exact=True).click()
                page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .scatterlayer .point').length > 100",
                                       timeout=90_000)
                time.sleep(3)  # the curves and the first refreshes
                rows.append(("everything on", *shares(pid, seconds)))
                for group in LAYER_GROUPS:
                    for name in group:  # each click reruns the page: one at a time
                        page.locator("[data-testid=stCheckbox]").filter(has_text=name).first.click()
                        time.sleep(1.5)
                    time.sleep(2)
                    rows.append((f"the plane without {' + '.join(group)}", *shares(pid, seconds)))
                    for name in group:
                        page.locator("[data-testid=stCheckbox]").filter(has_text=name).first.click()
                        time.sleep(1.5)
                    time.sleep(2)
                marks = [page.evaluate(_MARK)]
                for _ in range(3):
                    time.sleep(1.5)
                    marks.append(page.evaluate(_MARK))
                print(f"the plane's chart, looked at every 1.5 s: {', '.join(marks)} ('new': remounted)", file=sys.stderr)
            finally:
                browser.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="ring-bce", help="a 2D preset (the plane is what is measured)")
    parser.add_argument("--seconds", type=float, default=10.0, help="the length of each measurement")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    if not Path(args.chromium).is_file():
        sys.exit(f"--chromium: {args.chromium} is not a file (apt-get install chromium)")
    two_d = sorted(name for name, preset in PRESETS.items() if preset.config.dataset.is_2d)
    if args.preset not in two_d:
        sys.exit(f"--preset: {args.preset!r} is not a 2D preset; one of {', '.join(two_d)}")
    if args.seconds <= 0:
        sys.exit(f"--seconds: {args.seconds} is not a positive number of seconds")
    print("| the Training page, a live run | renderer (of one core) | server (of one core) |\n|---|---|---|")
    for name, renderer, server in measure(args.chromium, args.preset, args.seconds):
        print(f"| {name} | {renderer:.2f} | {server:.2f} |", flush=True)


if __name__ == "__main__":
    main()
