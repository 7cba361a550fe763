"""Take the lesson home on a page (AppTest): under a comparison whose runs have ended, the presenter and a learner alone
(no presenter key) get the downloads and the clearing of the questions; a student gets none of it; the files the
buttons give are the engine's (tests/test_export.py checks their contents)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from streamlit.testing.v1 import AppTest

from gan_core.lessons.comparisons import COMPARISONS
from gan_core.runs.roles import Actor
from gan_core.runs.status import Status
from tests.pages import opened_page
from tests.tiny import tiny
from ui import comparisons, live, predictions

PAGE = "app_pages/activations.py"
NAME, KEY = "dying-relu", "act_dying"  # the page's first comparison, and its section's key
DOWNLOADS = ["Predictions (CSV)", "Charts (PNG)"]

pytestmark = pytest.mark.slow


@pytest.fixture
def finished(fresh_manager: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The page's dying-ReLU comparison (its variants and question) over runs of a few steps, asked and run to the end."""
    base = tiny("digits", width=8, steps=12, probe_every=4, batch_size=16, sample_every=6, n_samples=64, seed=0)
    monkeypatch.setitem(COMPARISONS, NAME, replace(COMPARISONS[NAME], base=base))
    predictions.store().open(NAME, actor=Actor("teacher"))
    for run_id in comparisons.store().start(NAME).runs.values():
        assert live.get_manager().wait(run_id, timeout=60).status is Status.FINISHED


def _page(*, presenter: bool = False) -> AppTest:
    return opened_page(PAGE, presenter=presenter)


def _downloads(app: AppTest) -> list[str]:
    return [el.proto.label for el in app.get("download_button")]


def _has_clear(app: AppTest) -> bool:
    return f"{KEY}_clear" in {b.key for b in app.button}


@pytest.mark.usefixtures("finished")
def test_a_learner_alone_gets_the_downloads_and_the_clearing():
    app = _page()
    assert _downloads(app)[:2] == DOWNLOADS and _has_clear(app)


@pytest.mark.usefixtures("finished")
def test_with_a_key_the_presenter_gets_them_and_a_student_does_not(monkeypatch):
    monkeypatch.setenv("GAN_PRESENTER_KEY", "room key")
    student, teacher = _page(), _page(presenter=True)
    assert not [label for label in _downloads(student) if label in DOWNLOADS] and not _has_clear(student)
    assert _downloads(teacher)[:2] == DOWNLOADS and _has_clear(teacher)

    # the presenter confirms: every question is gone, for every browser, and the page says so
    assert predictions.store().poll(NAME) is not None
    teacher.button(key=f"{KEY}_clear").click().run()
    assert not teacher.exception and predictions.store().polls() == {}
    assert any("Cleared 1 question" in s.value for s in teacher.success)
    assert not _has_clear(_page()) and _has_clear(_page(presenter=True))
