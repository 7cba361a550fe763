"""Time to the first picture in a real browser: what a teacher and the students see when they open the app.

    python benchmarks/first_picture.py [--rounds 2] [--chromium /usr/bin/chromium]

For each round a fresh server (`streamlit run dashboard.py`, empty runs folder) and a fresh Chromium:
1. cold: the first browser after the server started (the server imports torch on this first visit);
2. a second browser right after (a student: the server is warm, the browser's cache is empty);
3. in that tab, each lesson page in turn through the sidebar, as a class moves through the lessons.
A picture is a diagram, image, Vega-Lite canvas or plotly plot on screen. Prints one line per measurement, then
the medians as JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PICTURE = ("[data-testid=stGraphVizChart] svg, [data-testid=stImage] img, [data-testid=stVegaLiteChart] canvas, "
           ".js-plotly-plot .main-svg")
# the lessons that draw a picture with no run on the server, in the sidebar's order
LESSONS = ("BCE loss", "Activations", "Batch norm", "VAE vs GAN", "Home")


def _first_picture(page: object, start: float, old_title: str | None = None) -> float:
    """Seconds from `start` until the page (a new one, when its title differs from `old_title`) shows a picture."""
    if old_title is not None:
        page.wait_for_function("old => document.querySelector('h1') && document.querySelector('h1').innerText !== old",
                               arg=old_title, timeout=60_000)
    page.wait_for_function(f"() => document.querySelector({PICTURE!r}) !== null", timeout=60_000)
    return time.perf_counter() - start


def one_round(chromium: str) -> dict[str, float]:
    # imported here: main() puts the repository on the path first (this file runs as a script)
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    from support.server import local_server  # noqa: PLC0415

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, local_server(Path(tmp) / "runs", Path(tmp) / "server.log") as (url, _):
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=LAUNCH_ARGS)
            try:
                for name in ("cold: first browser after the server started", "a second browser right after"):
                    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
                    start = time.perf_counter()
                    page.goto(url)
                    out[name] = _first_picture(page, start)
                page.wait_for_timeout(2000)
                for title in LESSONS:  # the second browser walks through the lessons in its tab
                    old = page.locator("h1").first.inner_text()
                    start = time.perf_counter()
                    page.locator("[data-testid=stSidebarNav]").get_by_text(title, exact=True).click()
                    out[f"sidebar → {title}"] = _first_picture(page, start, old)
                    page.wait_for_timeout(1500)
            finally:
                browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    if not Path(args.chromium).is_file():
        sys.exit(f"--chromium: {args.chromium} is not a file (apt-get install chromium)")
    sys.path.insert(0, str(REPO))
    rounds = []
    for i in range(args.rounds):
        rounds.append(one_round(args.chromium))
        for name, seconds in rounds[-1].items():
            print(f"round {i}: {name}: {seconds:.2f} s", file=sys.stderr, flush=True)
    print(json.dumps({name: round(statistics.median(r[name] for r in rounds), 2) for name in rounds[0]}))


if __name__ == "__main__":
    main()
