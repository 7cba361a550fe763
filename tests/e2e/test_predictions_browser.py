"""Predict, then observe, in two real browsers: the presenter (who typed the key) opens the Batch norm lesson's question,
a student answers in its own Chromium context, and the presenter's tally shows the answer within seconds (its panel
refreshes on its own). Screenshots of both pages at 1280×720 land in tests/e2e/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.server import local_server
from tests.e2e.conftest import assert_no_exception, screenshot, wait_idle

pytestmark = pytest.mark.browser

KEY = "lesson key 42"
VIEWPORT = {"width": 1280, "height": 720}


@pytest.fixture(scope="module")
def classroom(tmp_path_factory: pytest.TempPathFactory, chromium_path: str) -> Iterator[str]:
    """A server with a presenter key: every browser is a student until it types the key."""
    runs = tmp_path_factory.mktemp("vote_runs")
    log = tmp_path_factory.mktemp("vote_log") / "server.log"
    with local_server(runs, log, {"GAN_PRESENTER_KEY": KEY, "GAN_MAX_RUNS": "1"}) as (url, _):
        yield url


def _open(browser: object, url: str) -> tuple[object, object]:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.goto(f"{url}/batch_norm")
    wait_idle(page)
    return context, page


def test_presenter_asks_student_answers_presenter_sees_the_tally(classroom, browser):
    teacher_ctx, teacher = _open(browser, classroom)
    student_ctx, student = _open(browser, classroom)
    try:
        # the presenter types the key into the sidebar (never in the address)
        field = teacher.get_by_label("Presenter key", exact=True).and_(teacher.locator("input"))
        field.fill(KEY)
        field.press("Enter")
        teacher.get_by_text("you control every run").wait_for(timeout=30_000)
        wait_idle(teacher)
        assert student.get_by_text("Ask the room to predict first").count() == 0  # a student has no such button

        ask = teacher.get_by_role("button", name="Ask the room to predict first")
        ask.scroll_into_view_if_needed()
        ask.click()
        teacher.get_by_text("The room so far").wait_for(timeout=30_000)

        # the student's page notices the question by itself (its panel polls): no reload
        question = student.get_by_text("Predict before it runs.")
        question.wait_for(timeout=30_000)
        question.scroll_into_view_if_needed()
        student.locator("[data-testid=stRadio]").get_by_text("no batch norm", exact=True).click()
        student.get_by_text("Your answer:").wait_for(timeout=30_000)
        assert student.get_by_text("The room so far").count() == 0  # the tally is the presenter's until it closes

        tally = teacher.get_by_text("1 answer: batch norm 0 · no batch norm 1 · both 0 · neither 0")
        tally.wait_for(timeout=30_000)  # the presenter's panel refreshed on its own
        # the question block in the middle of each screen, as a person in the room would look at it
        teacher.get_by_text("The room so far").evaluate("e => e.scrollIntoView({block: 'center'})")
        student.get_by_text("Predict before it runs.").evaluate("e => e.scrollIntoView({block: 'center'})")
        assert_no_exception(teacher)
        assert_no_exception(student)
        shots = [screenshot(teacher, "predictions-presenter"), screenshot(student, "predictions-student")]

        # the presenter runs the comparison (the question closes); once both runs end, each page sets the room's
        # predictions beside what the runs measured
        start = teacher.get_by_role("button", name="Train with and without batch norm")
        start.scroll_into_view_if_needed()
        start.click()
        for page in (teacher, student):
            page.get_by_text("What the room predicted").wait_for(timeout=240_000)
            page.get_by_text("What happened").evaluate("e => e.scrollIntoView({block: 'center'})")
            assert_no_exception(page)
        assert student.get_by_text("Yours: no batch norm").count() == 1
        shots += [screenshot(teacher, "predictions-verdict-presenter"), screenshot(student, "predictions-verdict-student")]
        assert all(Path(s).stat().st_size > 10_000 for s in shots)
    finally:
        teacher_ctx.close()
        student_ctx.close()
