"""The README's pictures, taken by a real browser the way a classroom projector shows the app: 1280×720, no zoom.

Each test drives a page to the moment the picture is about (Home fresh; a ring-bce run's plane, paused a few hundred
steps in; the Batch norm and Mode collapse comparisons while they train), asserts it got there, and saves the shot to
tests/e2e/screenshots/readme-*.png. With GAN_UPDATE_ASSETS=1 it also writes it to assets/, where the README shows it:

    GAN_UPDATE_ASSETS=1 python -m pytest tests/e2e/test_readme_pictures.py
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.server import REPO_ROOT, local_server
from tests.e2e.conftest import assert_no_exception, screenshot, wait_idle
from tests.e2e.test_pages_in_browser import _choose, stop_selected_run, wait_plane_drawn

pytestmark = pytest.mark.browser

ASSETS = REPO_ROOT / "assets"
PROJECTOR = {"width": 1280, "height": 720}
TRAINED_STEPS = 400  # the ring picture's step: D's map has taken shape, G's points have spread out
UPDATE_ASSETS = os.environ.get("GAN_UPDATE_ASSETS", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(scope="module")
def clean_server(tmp_path_factory: pytest.TempPathFactory, chromium_path: str) -> Iterator[str]:
    """A server of its own with an empty runs folder: the pictures' sidebars list only the runs these tests start
    (the shared e2e server holds a damaged run on purpose)."""
    runs = tmp_path_factory.mktemp("readme_runs")
    log = tmp_path_factory.mktemp("readme_log") / "server.log"
    with local_server(runs, log, {"GAN_MAX_RUNS": "2"}) as (url, _):
        yield url


@pytest.fixture
def projector(browser) -> Iterator[object]:
    """A page the size of a classroom projector's screen."""
    context = browser.new_context(viewport=PROJECTOR)
    yield context.new_page()
    context.close()


# something a rerun has not redrawn yet, which Streamlit draws faded (elements are marked stale at every rerun, and
# fade only when the rerun takes a while)
FADED = "[...document.querySelectorAll('[data-stale=true]')].some(e => parseFloat(getComputedStyle(e).opacity) < 0.99)"


def settled(page, timeout_ms: int = 30_000) -> None:
    """Wait until nothing on the page is drawn faded."""
    page.wait_for_function(f"() => !({FADED})", timeout=timeout_ms)


def picture(page, name: str, before: str = "() => true", after: str = "() => true") -> Path:
    """Save the viewport as tests/e2e/screenshots/readme-<name>.png, and as assets/<name>.png with GAN_UPDATE_ASSETS=1.

    A live refresh can redraw the page while the shot is taken: the shot is taken again until, once taken, nothing is
    faded as stale and the JavaScript check `after` holds (`before` runs just before each shot)."""
    for _ in range(10):
        settled(page)
        page.wait_for_function(before, timeout=30_000)
        path = screenshot(page, f"readme-{name}")
        if not page.evaluate(FADED) and page.evaluate(after):
            break
    else:
        pytest.fail(f"{name}: no shot in 10 showed the page drawn and {after} true")
    assert_no_exception(page)
    if UPDATE_ASSETS:
        ASSETS.mkdir(exist_ok=True)
        shutil.copyfile(path, ASSETS / f"{name}.png")
    return path


def scroll_to(page, text: str) -> None:
    """Scroll Streamlit's main block until the text `text` (a heading) is at the top of the screen, as a teacher
    scrolls to a section."""
    page.locator("[data-testid=stMain]").get_by_text(text).first.evaluate("""e => {
        e.scrollIntoView({block: 'start'});
        let box = e.parentElement;
        while (box && !(box.scrollHeight > box.clientHeight && /auto|scroll/.test(getComputedStyle(box).overflowY))) {
            box = box.parentElement;
        }
        if (box) box.scrollTop += e.getBoundingClientRect().top - 24;  // no sliver of the section above
    }""")


# the plane shown now, tagged before the shot: Streamlit remounts a plotly chart on each refresh, and a remount while
# the shot is taken leaves a blank where the plane was
TAG_PLANE = """() => { document.querySelectorAll('[data-readme-shot]').forEach(e => delete e.dataset.readmeShot);
    const p = [...document.querySelectorAll('.js-plotly-plot')].find(
    p => p.getBoundingClientRect().width > 100 && p.querySelectorAll('.scatterlayer .point').length >= 500);
    if (p) p.dataset.readmeShot = '1'; return !!p; }"""
PLANE_STILL_DRAWN = """() => { const p = document.querySelector('[data-readme-shot]');
    return !!p && p.getBoundingClientRect().width > 100 && p.querySelectorAll('.scatterlayer .point').length >= 500; }"""


def texts(page, testid: str) -> list[str]:
    return page.locator(f"[data-testid=stMain] [data-testid={testid}]").all_inner_texts()


def step_in(lines: list[str], pattern: str) -> int:
    """The largest step in the lines that match `pattern` (whose group 1 is the step, "1,200"), or -1."""
    return max((int(m.group(1).replace(",", "")) for line in lines if (m := re.search(pattern, line))), default=-1)


def wait_until(condition, what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout_s:.0f} s for {what}"
        time.sleep(0.3)


# a run on the page is still training: the comparison pictured is mid-way
STILL_TRAINING = """() => [...document.querySelectorAll('[data-testid=stMain] [data-testid=stCaptionContainer]')]
    .some(c => c.innerText.includes('running'))"""


def stop_runs(page, *names: str) -> None:
    """Stop each named run that is still training, so the next test's runs have the CPU: picked in the sidebar's Run
    box (whose options read "<id> · <status>"), then stopped with the sidebar's Stop."""
    picker = page.locator("[data-testid=stSidebar] [data-testid=stSelectbox]").filter(has_text="Run").first
    for name in names:
        picker.click()
        picker.locator("input").fill(name)
        option = page.get_by_role("option").filter(has_text=name).first
        if "running" not in option.inner_text():
            page.keyboard.press("Escape")
            continue
        option.click()
        # only a running run shows Stop; a short run may have ended by itself since its option said "running" (seen
        # once in CI: the Stop click then waited for a button that never came)
        sidebar = page.locator("[data-testid=stSidebar]")
        stop = sidebar.get_by_role("button", name="Stop")
        ended = sidebar.locator("strong").filter(has_text=re.compile(r"^(stopped|finished)$"))
        stop.or_(ended).first.wait_for(timeout=30_000)
        if stop.count():
            stop_selected_run(page)


def test_home(clean_server, projector):
    projector.goto(clean_server)
    wait_idle(projector)
    projector.locator("[data-testid=stGraphVizChart] svg").wait_for()  # the diagram, drawn
    assert projector.get_by_role("button", name="Train the default GAN").is_visible()
    picture(projector, "home")


def test_training_on_a_ring(clean_server, projector):
    projector.goto(f"{clean_server}/training")
    wait_idle(projector)
    projector.get_by_role("button", name="New run").click()
    _choose(projector, "Preset", "ring-bce")
    # the form redraws with the preset's values: a Start pressed while it does is lost
    projector.locator("[role=dialog]").get_by_text("PacGAN").first.wait_for()
    projector.wait_for_timeout(1000)
    wait_idle(projector)
    projector.get_by_role("button", name="Start", exact=True).click()
    # the worker's first steps can take a while on a busy machine: wait for the plane's caption before its drawing
    wait_until(lambda: step_in(texts(projector, "stCaptionContainer"), r"^step ([\d,]+): \d+ samples") >= TRAINED_STEPS,
               f"the plane at step {TRAINED_STEPS}", timeout_s=200)
    wait_plane_drawn(projector, ["real data", "generated", "G's push", "G's manifold"])
    # paused, as a teacher pauses to explain the plane: a live plotly chart is drawn anew at every refresh, and on a
    # busy machine a shot often catches it half drawn
    sidebar = projector.locator("[data-testid=stSidebar]")
    sidebar.get_by_role("button", name="Pause").click()
    sidebar.get_by_text("paused").first.wait_for(timeout=30_000)
    scroll_to(projector, "D's view of the plane")
    picture(projector, "training-ring", before=TAG_PLANE, after=PLANE_STILL_DRAWN)
    stop_selected_run(projector)


def test_batch_norm_lesson_mid_comparison(clean_server, projector):
    projector.goto(f"{clean_server}/batch_norm")
    wait_idle(projector, 90_000)
    projector.get_by_role("button", name="Train with and without batch norm").click()

    def both_drawn() -> bool:  # both variants' digits, a few hundred steps in, and the losses drawn
        captions = texts(projector, "stCaptionContainer")
        return (step_in(captions, r"^batch norm, step ([\d,]+)") >= 200
                and step_in(captions, r"^no batch norm, step ([\d,]+)") >= 200
                and projector.locator("[data-testid=stMain] [data-testid=stVegaLiteChart]").count() > 0)

    wait_until(both_drawn, "both variants' samples at step 200", timeout_s=90)
    scroll_to(projector, "Covariate shift")
    picture(projector, "lesson-batch-norm", after=STILL_TRAINING)
    stop_runs(projector, "batchnorm-batch-norm", "batchnorm-no-batch-norm")


def test_mode_collapse_lesson_mid_comparison(clean_server, projector):
    projector.goto(f"{clean_server}/mode_collapse")
    wait_idle(projector, 90_000)
    projector.get_by_role("button", name="Run the comparison").click()

    def both_judged() -> bool:  # BCE far enough to have collapsed, WGAN-GP's first snapshots judged beside it
        labels = texts(projector, "stMetricLabel")
        steps = [int(m.group(1).replace(",", "")) for line in labels if (m := re.search(r"covered at step ([\d,]+)", line))]
        return len(steps) == 2 and steps[0] >= 400 and steps[1] >= 100

    wait_until(both_judged, "BCE at step 400 and WGAN-GP at step 100", timeout_s=120)
    scroll_to(projector, "What that changes for collapse")
    picture(projector, "lesson-mode-collapse", after=STILL_TRAINING)
    stop_runs(projector, "collapse-digits-bce", "collapse-digits-wgan")
