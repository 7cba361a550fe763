"""Take the lesson home (gan_core.lessons.export): the room's predictions beside what finished comparison runs measured,
as rows and as a CSV a spreadsheet reads, each comparison's charts as PNG files in a ZIP; and the questions cleared for
the next class, by the presenter only."""

from __future__ import annotations

import csv
import io
import math
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import pytest
from PIL import Image

from gan_core import charts
from gan_core.classroom.store import open_store, state_url
from gan_core.config import ConfigError
from gan_core.lessons import export, outcomes
from gan_core.lessons.comparisons import COMPARISONS
from gan_core.lessons.predictions import Predictions
from gan_core.lessons.shared_comparisons import SharedComparisons
from gan_core.runs.manager import RunManager
from gan_core.runs.roles import Actor, RunRefused
from gan_core.runs.status import Status
from tests.tiny import tiny

TEACHER = Actor("teacher", presenter=True)
DYING, BN = "dying-relu", "batchnorm"
# the lessons' own variants, questions and rules, over runs of a few steps (trained in about a second each)
BASE = tiny("digits", width=8, steps=12, probe_every=4, batch_size=16, sample_every=6, n_samples=64, seed=0)
QUICK = {name: replace(COMPARISONS[name], base=BASE) for name in (DYING, BN)}
# the documented header (the module's docstring), word for word
HEADER = ["comparison", "question", "asked", "closed", "choice 1", "answers 1", "choice 2", "answers 2", "choice 3",
          "answers 3", "choice 4", "answers 4", "answers", "right answers", "measure", "measured", "outcome", "runs",
          "seed"]


def student(i: int) -> Actor:
    return Actor(f"browser-{i}", presenter=False)


def fake_stats(snap, record, source) -> dict:
    """Digits covered without the real classifier (a minute to train on a busy machine): the run with batch norm draws
    all ten from its second snapshot on, the one without collapses onto two."""
    return {"classes_covered": (10 if record.step > BASE.sample_every else 5) if snap.config.g_batchnorm else 2}


SCORING = outcomes.Scoring(stats_of=fake_stats)


@dataclass
class Room:
    manager: RunManager
    asked: Predictions
    shared: SharedComparisons
    runs: dict[str, dict[str, str]]  # comparison -> label -> run id


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory, one_thread: None) -> Iterator[Room]:
    """A class that ended: the room predicted the dying-ReLU comparison (two say ReLU, one leaky ReLU), the presenter
    closed the question and both comparisons ran to the end; the batch-norm one was never asked about."""
    runs_dir = tmp_path_factory.mktemp("export") / "runs"
    manager = RunManager(runs_dir, max_runs=1, processes=False)
    asked, shared = Predictions(runs_dir, QUICK), SharedComparisons(manager, QUICK)
    poll = asked.open(DYING, actor=TEACHER)
    for i, choice in enumerate(["ReLU in D", "ReLU in D", "leaky ReLU in D"]):
        asked.answer(DYING, poll.id, choice, actor=student(i))
    asked.close(DYING, actor=TEACHER)
    runs = {name: shared.start(name).runs for name in (DYING, BN)}
    for by_label in runs.values():
        for run_id in by_label.values():
            assert manager.wait(run_id, timeout=120).status is Status.FINISHED
    yield Room(manager, asked, shared, runs)
    manager.shutdown()


def test_every_comparison_has_a_measure_and_a_chart_of_it():
    assert set(outcomes.MEASURES) == set(COMPARISONS) == set(export.CURVES)


@pytest.mark.slow
def test_the_rows_set_the_rooms_predictions_beside_what_the_runs_measured(room: Room):
    rows = export.rows(export.lessons(room.asked, room.shared), SCORING)
    assert [r["comparison"] for r in rows] == [DYING, BN]  # the lessons' order
    dying, bn = rows
    # the counts, in the question's order
    assert [(dying[f"choice {i}"], dying[f"answers {i}"]) for i in (1, 2, 3)] == [
        ("ReLU in D", "2"), ("leaky ReLU in D", "1"), ("about the same", "0")]
    assert dying["answers"] == "3" and dying["question"] == QUICK[DYING].prediction.question
    # the outcome, worked out here from the runs' last probes as the page's verdict does
    snaps = {label: room.manager.snapshot(i) for label, i in room.runs[DYING].items()}
    dead = {label: outcomes.dead_mean(s.probes[-1], "D") for label, s in snaps.items()}
    right = QUICK[DYING].prediction.outcome(dead)
    assert right is not None and dying["outcome"] == right
    assert dying["right answers"] == {"ReLU in D": "2", "leaky ReLU in D": "1", "about the same": "0"}[right]
    assert dying["measured"] == "; ".join(f"{label}: {v:.4g}" for label, v in dead.items())
    assert dying["measure"] == "share of D's units dead at the last probe"
    assert dying["runs"] == "; ".join(f"{label}: {i}" for label, i in room.runs[DYING].items()) and dying["seed"] == "0"
    asked, closed = datetime.fromisoformat(dying["asked"]), datetime.fromisoformat(dying["closed"])
    assert asked.tzinfo is not None and asked <= closed
    # run without a question: its options, no counts, and what its runs measured
    assert (bn["choice 1"], bn["answers 1"], bn["answers"], bn["asked"], bn["right answers"]) == (
        "batch norm", "", "", "", "")
    assert bn["measured"] == "batch norm: 10; no batch norm: 2" and bn["outcome"] == "no batch norm"
    assert bn["choice 4"] == "neither" and dying.get("choice 4", "") == ""


@pytest.mark.slow
def test_the_csv_is_read_back_by_the_csv_module_with_the_documented_header(room: Room):
    found = export.lessons(room.asked, room.shared)
    data = export.predictions_csv(found, SCORING)
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 with a BOM: a spreadsheet opened by double-click reads UTF-8
    reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""))
    assert reader.fieldnames == HEADER
    read = list(reader)
    assert read == [{column: row.get(column, "") for column in HEADER} for row in export.rows(found, SCORING)]


@pytest.mark.slow
def test_a_run_still_training_has_no_outcome_yet(room: Room):
    lesson = next(x for x in export.lessons(room.asked, room.shared) if x.comparison.name == DYING)
    training = {label: replace(s, status=Status.RUNNING) for label, s in lesson.snaps.items()}
    row = export.rows([replace(lesson, snaps=training)], SCORING)[0]
    assert (row["measured"], row["outcome"], row["right answers"]) == ("", "", "")
    assert row["answers 1"] == "2"  # the room's answers are there all the same


def _png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.format == "PNG" and image.size == charts.SIZE
    return image


@pytest.mark.slow
def test_each_comparisons_charts_are_pngs_in_a_zip(room: Room):
    found = export.lessons(room.asked, room.shared)
    with zipfile.ZipFile(io.BytesIO(export.charts_zip(found, SCORING))) as archive:
        names = set(archive.namelist())
        assert names == {f"{DYING}/predictions.png", f"{DYING}/dead-units.png", f"{DYING}/g-loss.png",
                         f"{DYING}/d-loss.png", f"{BN}/digits-covered.png", f"{BN}/g-loss.png", f"{BN}/d-loss.png"}
        pictures = {name: _png(archive.read(name)).convert("RGB") for name in names}
    # the variants' colours are drawn (each line is there), and the tally's bar of the measured answer is green
    for name in (f"{DYING}/dead-units.png", f"{BN}/digits-covered.png", f"{BN}/g-loss.png"):
        colours = {c for _, c in pictures[name].getcolors(1 << 20)}
        assert {_rgb(export.RUN_COLORS[0]), _rgb(export.RUN_COLORS[1])} <= colours, name
    right = export.rows(found, SCORING)[0]["outcome"]
    counts = {"ReLU in D": 2, "leaky ReLU in D": 1, "about the same": 0}
    tally_colours = {c for _, c in pictures[f"{DYING}/predictions.png"].getcolors(1 << 20)}
    assert (_rgb(charts.RIGHT) in tally_colours) == (counts[right] > 0)


@pytest.mark.slow
def test_the_collapse_comparison_has_no_loss_charts(room: Room):
    """BCE against W-loss: two objectives on one axis would read as one being worse."""
    lesson = next(x for x in export.lessons(room.asked, room.shared) if x.comparison.name == BN)
    collapse = replace(lesson, comparison=replace(COMPARISONS["collapse-digits"], base=BASE))
    assert set(export.comparison_charts(collapse, SCORING)) == {"digits-covered.png"}


def _rgb(color: str) -> tuple[int, int, int]:
    return tuple(int(color[i:i + 2], 16) for i in (1, 3, 5))


# -- clearing for the next class -----------------------------------------------------------------------------------------
def test_clear_refuses_a_student_and_clears_every_question_for_the_presenter(tmp_path: Path):
    asked = Predictions(tmp_path, QUICK)
    first = asked.open(DYING, actor=TEACHER)
    asked.answer(DYING, first.id, "ReLU in D", actor=student(1))
    asked.open(BN, actor=TEACHER)
    with pytest.raises(RunRefused, match="only the presenter can clear the questions"):
        asked.clear(actor=student(1))
    assert set(asked.polls()) == {DYING, BN} and asked.poll(DYING).tally()["ReLU in D"] == 1

    assert asked.clear(actor=TEACHER) == 2
    assert asked.polls() == {} and asked.poll(DYING) is None
    assert Predictions(tmp_path, QUICK).polls() == {}  # the room's store, not this process's memory
    # the next class's question: a browser still showing the cleared one cannot answer it
    again = asked.open(DYING, actor=TEACHER)
    assert again.id > first.id and again.answers == {}
    with pytest.raises(ConfigError, match="no longer asked"):
        asked.answer(DYING, first.id, "ReLU in D", actor=student(1))
    assert asked.clear(actor=Actor(None)) == 1  # no presenter key: whoever is on the laptop is the presenter


def test_a_question_remembers_when_it_was_closed(tmp_path: Path):
    asked = Predictions(tmp_path, QUICK)
    poll = asked.open(DYING, actor=TEACHER)
    assert poll.closed is None and asked.poll(DYING).closed is None
    closed = asked.close(DYING, actor=TEACHER).closed
    assert closed is not None and closed >= poll.opened
    assert asked.close(DYING, actor=TEACHER).closed == closed  # closing again: answers stopped the first time
    assert asked.open(DYING, actor=TEACHER).closed is None and asked.poll(DYING).closed is None


def test_a_rooms_store_from_before_the_export_keeps_its_question(tmp_path: Path):
    """A classroom store written before questions had a closing time: its question reads back, and closes."""
    store = open_store(state_url(tmp_path))
    store.ensure("old", (
        "CREATE TABLE polls (name TEXT PRIMARY KEY, id INTEGER NOT NULL, question TEXT NOT NULL, choices TEXT NOT NULL, "
        "is_open INTEGER NOT NULL, opened DOUBLE PRECISION NOT NULL)",
        "CREATE TABLE votes (name TEXT NOT NULL, poll_id INTEGER NOT NULL, voter TEXT NOT NULL, choice TEXT NOT NULL, "
        "PRIMARY KEY (name, poll_id, voter))",
        "INSERT INTO polls VALUES ('dying-relu', 3, 'Which?', '[\"ReLU in D\", \"leaky ReLU in D\", "
        "\"about the same\"]', 0, 1000.0)",
    ))
    store.close()
    asked = Predictions(tmp_path, QUICK)
    poll = asked.poll(DYING)
    assert (poll.id, poll.question, poll.is_open, poll.closed) == (3, "Which?", False, None)
    assert asked.open(DYING, actor=TEACHER).id == 4


# -- the charts themselves -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("lo", "hi", "count", "ticks"), [
    (0.0, 1.0, 6, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
    (-3.0, 1039.0, 8, [0.0, 200.0, 400.0, 600.0, 800.0, 1000.0]),
    (-3.0, 1039.0, 4, [0.0, 500.0, 1000.0]),
    (2.0, 2.0, 6, [2.0]),
])
def test_ticks_are_round_numbers(lo, hi, count, ticks):
    assert charts.nice_ticks(lo, hi, count) == ticks


def test_a_chart_with_nothing_to_draw_is_still_a_picture():
    empty = _png(charts.line_chart([], title="Nothing yet", x_title="step", y_title="y"))
    nan = _png(charts.line_chart([charts.Line("a", [0, 1], [math.nan, math.nan], "#17becf")], title="t",
                                 x_title="step", y_title="y", log_y=True))
    assert empty.size == nan.size == charts.SIZE
    assert charts.ratio_label(0.001) == "1/1,000" and charts.ratio_label(10.0) == "10"
