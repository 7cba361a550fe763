"""The course's order (ui/course.py): one list gives the navigation and every page's Back/Next links."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pages import page_app
from ui import course, glossary

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("fresh_manager")


def test_every_lesson_is_a_page_file_once_in_course_order():
    paths = [p.path for p in course.PAGES]
    assert len(set(paths)) == len(paths)
    assert all((REPO / p).is_file() for p in paths)
    assert {str(p.relative_to(REPO)) for p in (REPO / "app_pages").glob("*.py")} == set(paths)  # no page left out
    weeks = [p.week for p in course.PAGES if p.week is not None]
    assert weeks == sorted(weeks)  # never back to an earlier week of the course
    tools = [i for i, p in enumerate(course.PAGES) if p.week is None]
    assert tools == list(range(len(weeks), len(course.PAGES)))  # pages beyond the course come after its lessons
    assert course.PAGES[0].title == "Home" and not course.PAGES[0].builds_on
    assert all(p.builds_on for p in course.PAGES[1:])


def test_neighbours_at_both_ends_and_in_the_middle():
    first, last = course.PAGES[0].path, course.PAGES[-1].path
    assert course.neighbours(first) == (None, course.PAGES[1])
    assert course.neighbours(last) == (course.PAGES[-2], None)
    assert course.neighbours("app_pages/training.py") == (course.PAGES[2], course.PAGES[4])


def _links(page: str) -> dict[str, tuple[str, str]]:
    app = page_app(page).run()
    assert not app.exception, [e.value for e in app.exception]
    return {el.proto.label: (el.proto.page, el.proto.help) for el in app.get("page_link")}


@pytest.mark.parametrize("index", [0, 3, len(course.PAGES) - 2, len(course.PAGES) - 1])
def test_each_page_ends_with_back_and_next(index):
    lesson = course.PAGES[index]
    links = _links(lesson.path)
    backs = {label: page for label, page in links.items() if label.startswith("Back: ")}
    nexts = {label: page for label, page in links.items() if label.startswith("Next: ")}
    if index == 0:
        assert not backs
    else:
        before = course.PAGES[index - 1]
        (label, (target, note)), = backs.items()
        assert label == f"Back: {before.title}" and note == f"This page builds on {lesson.builds_on}."
        assert target.endswith(Path(before.path).stem)
    if index == len(course.PAGES) - 1:
        assert not nexts
    else:
        after = course.PAGES[index + 1]
        (label, (target, _)), = nexts.items()
        week = f" (week {after.week})" if after.week is not None else ""
        assert label == f"Next: {after.title}{week}"
        assert target.endswith(Path(after.path).stem)


def test_every_page_offers_the_glossary_and_the_readme_says_the_same():
    app = page_app("app_pages/bce_loss.py").run()
    assert not app.exception
    texts = " ".join(m.value for m in app.markdown)
    assert glossary.markdown() in texts  # in the footer's popover
    readme = (REPO / "README.md").read_text()
    assert glossary.markdown() in readme  # one list: the README's glossary is this module's, word for word
    assert all(term in glossary.markdown() for term in ("logit", "critic", "mode", "high quality", "covered", "FCD"))
