"""Shared lessons in the app (AppTest): a comparison started in one browser is every browser's, pressing again shows it
instead of training it twice, "Run it again" trains a new seed; and the room predicts before it runs: the presenter
opens the question, a student answers, the presenter's tally shows it, and once the runs end the predictions stand beside
what they measured."""

from __future__ import annotations

from dataclasses import replace

import pyarrow
import pytest
from streamlit.testing.v1 import AppTest

from gan_core.lessons.comparisons import COMPARISONS
from gan_core.lessons.shared_comparisons import COMPARISONS_FILE
from gan_core.runs.status import Status
from tests.pages import opened_page
from tests.tiny import tiny
from ui import comparisons, live, predictions

KEY = "room key"

pytestmark = pytest.mark.usefixtures("fresh_manager")


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lessons' comparisons with their variants and questions, over runs of a few steps (trained in a second)."""
    base = tiny("digits", width=8, steps=12, probe_every=4, batch_size=16, sample_every=6, n_samples=64, seed=0)
    for name in ("dying-relu", "batchnorm"):
        monkeypatch.setitem(COMPARISONS, name, replace(COMPARISONS[name], base=base))


def _page(name: str, *, presenter: bool = False) -> AppTest:
    return opened_page(f"app_pages/{name}", presenter=presenter)


def _keys(app: AppTest) -> set[str]:
    return {b.key for b in app.button}


def _texts(app: AppTest) -> str:
    text = "\n".join(str(el.value) for kind in ("markdown", "caption", "info", "success", "warning", "error")
                      for el in app.get(kind))
    return text.replace("\\", "")  # shown as text: Markdown's characters are escaped


def _wait(runs: dict[str, str]) -> None:
    for run_id in runs.values():
        assert live.get_manager().wait(run_id, timeout=60).status is Status.FINISHED


@pytest.mark.slow
def test_one_browsers_comparison_is_everyones_and_is_not_trained_twice(quick):
    manager = live.get_manager()
    first, stale = _page("batch_norm.py"), _page("batch_norm.py")
    assert "bn_compare_start" in _keys(stale)
    first.button(key="bn_compare_start").click().run()
    shown = comparisons.store().current("batchnorm").runs
    assert sorted(manager.ids()) == sorted(shown.values())

    fresh = _page("batch_norm.py")  # another browser, or this one reloaded
    assert "bn_compare_start" not in _keys(fresh) and "bn_compare_again" in _keys(fresh)
    assert all(f"**{label}**" in _texts(fresh) for label in shown)

    # a browser that still shows the old button presses it: the same runs are shown, none is trained
    stale.button(key="bn_compare_start").click().run()
    assert not stale.exception and sorted(manager.ids()) == sorted(shown.values())
    assert "already on the server" in _texts(stale)
    _wait(shown)

    # "Run it again" is the explicit new run: a new seed, shown to everyone from then on
    fresh.run()
    assert not fresh.button(key="bn_compare_again").disabled
    fresh.button(key="bn_compare_again").click().run()
    assert not fresh.exception and len(manager.ids()) == 4
    again = comparisons.store().current("batchnorm").runs
    assert set(again.values()).isdisjoint(shown.values())
    assert {manager.snapshot(i).config.seed for i in again.values()} == {1}
    _wait(again)

    # a server restart: the page reads the same comparison back from the room's store in the runs folder
    assert (manager.runs_dir / "classroom.db").is_file() and not (manager.runs_dir / COMPARISONS_FILE).exists()
    live.reset_manager()
    after = _page("batch_norm.py")
    assert comparisons.store().current("batchnorm").runs == again
    assert "bn_compare_again" in _keys(after) and "**What happened**" in _texts(after)


@pytest.mark.slow
def test_the_presenter_asks_a_student_answers_and_the_tally_shows_it(quick, monkeypatch):
    monkeypatch.setenv("GAN_PRESENTER_KEY", KEY)
    teacher = _page("activations.py", presenter=True)
    student = _page("activations.py")
    # a student can neither open nor close a question (and the store refuses one that tries: tests/test_predictions.py)
    assert "act_dying_ask" in _keys(teacher) and "act_dying_ask" not in _keys(student)

    teacher.button(key="act_dying_ask").click().run()
    poll = predictions.store().poll("dying-relu")
    assert poll.is_open and "act_dying_close" in _keys(teacher)
    assert "0 answers" in _texts(teacher)

    student.run()  # its question panel polls; a run of the page is what the poll's tick does
    vote = student.radio(key=f"act_dying_vote_{poll.id}")
    assert vote.options == ["ReLU in D", "leaky ReLU in D", "about the same"] and vote.value is None
    assert "act_dying_close" not in _keys(student) and "The room so far" not in _texts(student)
    vote.set_value("leaky ReLU in D").run()
    student.radio(key=f"act_dying_vote_{poll.id}").set_value("ReLU in D").run()  # changed its mind: one answer
    assert "Your answer: **ReLU in D**" in _texts(student)

    teacher.run()
    assert "1 answer: ReLU in D 1 · leaky ReLU in D 0 · about the same 0" in _texts(teacher)
    tally = next(c for c in teacher.get("vega_lite_chart") if '"choice"' in c.proto.spec)
    data = pyarrow.ipc.open_stream(tally.proto.datasets[0].data.data).read_all().to_pandas()
    assert data.set_index("choice")["answers"].to_dict() == {"ReLU in D": 1, "leaky ReLU in D": 0, "about the same": 0}
    assert b"session" not in b"".join(p.read_bytes() for p in live.get_manager().runs_dir.glob("classroom.db*"))

    # the presenter runs the comparison: the question closes; the runs end; the predictions stand beside the outcome
    teacher.button(key="act_dying_start").click().run()
    assert not predictions.store().poll("dying-relu").is_open
    _wait(comparisons.store().current("dying-relu").runs)
    teacher.run()
    student.run()
    assert not teacher.exception and not student.exception
    text = _texts(teacher)
    assert "**What happened**: share of D's units dead at the last probe: ReLU in D **" in text
    assert "What the room predicted** (1 answer, before the runs)" in text
    assert [s.value for s in teacher.success if "Measured:" in s.value]  # the answer the runs gave, whatever it was
    assert "Yours: **ReLU in D**" in _texts(student)
