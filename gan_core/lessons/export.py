"""Take the lesson home: the room's predictions beside what the runs measured, as a CSV, and each comparison's charts as
PNG pictures in a ZIP. Built on the server from the classroom store and the runs folder, only when asked for.

The CSV has one row per comparison the room was asked about or ran, in the lessons' order, with this header:

    comparison, question, asked, closed,            the question, and when it was opened and closed (ISO 8601)
    choice 1, answers 1, ..., choice 4, answers 4   each option and how many browsers chose it (as many pairs as the
                                                    longest question has options: 4 for today's lessons)
    answers, right answers,                         all answers, and those that picked the measured outcome
    measure, measured, outcome,                     what the runs measure, each run's number, the option it makes right
    runs, seed                                      the run ids by variant, and the seed they trained with

A cell is empty where there is nothing to say: no counts for a comparison run without a question, no "closed" while a
question is open, no measurement while a run still trains. It is UTF-8 with a byte-order mark: a spreadsheet opened by
a double-click then reads its text as UTF-8.
"""

from __future__ import annotations

import csv
import io
import math
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from gan_core import charts
from gan_core.config import ConfigError
from gan_core.lessons import outcomes
from gan_core.lessons.comparisons import Comparison
from gan_core.lessons.predictions import Poll, Predictions
from gan_core.lessons.shared_comparisons import SharedComparison, SharedComparisons
from gan_core.runs.state import RunSnapshot

# the pages' run colours (ui.style.RUN_COLORS, which the engine may not import): a variant keeps its colour in the files
RUN_COLORS = ("#17becf", "#e377c2", "#bcbd22", "#8c564b", "#d62728", "#7f7f7f", "#2ca02c", "#9467bd", "#aec7e8", "#ffbb78")
FIELDS = ("comparison", "question", "asked", "closed")
TAIL = ("answers", "right answers", "measure", "measured", "outcome", "runs", "seed")


@dataclass(frozen=True)
class Lesson:
    """One comparison as the room left it: its question (None: never asked since the last clear) and its shared runs
    (None: never run, or its runs were deleted)."""

    comparison: Comparison
    poll: Poll | None
    shown: SharedComparison | None
    snaps: Mapping[str, RunSnapshot] | None

    @property
    def ended(self) -> bool:
        """Its runs have all stopped training: what they measured is final (the page's verdict shows it then too)."""
        return self.snaps is not None and not any(s.status.active for s in self.snaps.values())

    def measured(self, scoring: outcomes.Scoring = outcomes.SCORING) -> dict[str, float] | None:
        return outcomes.measure(self.comparison.name, self.snaps, scoring) if self.ended and self.snaps else None


def lessons(predictions: Predictions, shared: SharedComparisons) -> list[Lesson]:
    """Every comparison the room was asked about or ran, in the lessons' order."""
    polls = predictions.polls()
    found = []
    for name, comparison in shared.comparisons.items():
        shown = shared.current(name)
        snaps = None
        if shown is not None:
            try:
                snaps = {label: shared.manager.snapshot(run_id) for label, run_id in shown.runs.items()}
            except ConfigError:  # deleted a moment ago: a question without runs
                shown = None
        if shown is not None or name in polls:
            found.append(Lesson(comparison, polls.get(name), shown, snaps))
    return found


def _when(seconds: float | None) -> str:
    """The server's local time with its offset, to the second: readable, and unambiguous in any time zone."""
    return "" if seconds is None else datetime.fromtimestamp(seconds).astimezone().isoformat(timespec="seconds")


def _number(value: float) -> str:
    return f"{value:.4g}" if math.isfinite(value) else "no records"


def header(choices: int) -> list[str]:
    """The CSV's columns with `choices` option-and-count pairs."""
    pairs = [f"{what} {i}" for i in range(1, choices + 1) for what in ("choice", "answers")]
    return [*FIELDS, *pairs, *TAIL]


def rows(found: Sequence[Lesson], scoring: outcomes.Scoring = outcomes.SCORING) -> list[dict[str, str]]:
    """One row per lesson, keyed by `header`'s columns (as strings, as the CSV writes them)."""
    out = []
    for lesson in found:
        comparison, poll = lesson.comparison, lesson.poll
        prediction = comparison.prediction
        measured = lesson.measured(scoring)
        right = prediction.outcome(measured) if measured is not None else None
        row = {"comparison": comparison.name, "question": poll.question if poll else prediction.question,
               "asked": _when(poll.opened) if poll else "", "closed": _when(poll.closed) if poll else ""}
        tally = poll.tally() if poll else dict.fromkeys(comparison.choices(), None)
        for i, (choice, count) in enumerate(tally.items(), start=1):
            row[f"choice {i}"] = choice
            row[f"answers {i}"] = "" if count is None else str(count)
        row |= {
            "answers": str(sum(tally.values())) if poll else "",
            "right answers": str(tally.get(right, 0)) if poll and right is not None else "",
            "measure": prediction.measure,
            "measured": "; ".join(f"{label}: {_number(v)}" for label, v in measured.items()) if measured else "",
            "outcome": right or "",
            "runs": "; ".join(f"{label}: {run_id}" for label, run_id in lesson.shown.runs.items()) if lesson.shown else "",
            "seed": str(lesson.shown.seed) if lesson.shown else "",
        }
        out.append(row)
    return out


def predictions_csv(found: Sequence[Lesson], scoring: outcomes.Scoring = outcomes.SCORING) -> bytes:
    """The room's predictions beside what the runs measured, as CSV bytes (see the module's docstring)."""
    table = rows(found, scoring)
    most = max([len(lesson.poll.choices if lesson.poll else lesson.comparison.choices()) for lesson in found] or [4])
    text = io.StringIO()
    writer = csv.DictWriter(text, header(max(most, 4)), restval="", lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(table)
    return text.getvalue().encode("utf-8-sig")


# -- charts ---------------------------------------------------------------------------------------------------------------
def _subtitle(lesson: Lesson) -> str:
    shown = lesson.shown
    assert shown is not None
    return f"{lesson.comparison.name}, seed {shown.seed}: runs " + ", ".join(shown.runs.values())


def _lines(snaps: Mapping[str, RunSnapshot], points: dict[str, tuple[list[float], list[float]]]) -> list[charts.Line]:
    return [charts.Line(label, *points[label], RUN_COLORS[i % len(RUN_COLORS)]) for i, label in enumerate(snaps)]


def _dead_units(lesson: Lesson, scoring: outcomes.Scoring) -> tuple[str, bytes]:
    snaps = lesson.snaps or {}
    points = {label: ([p.step for p in s.probes], [outcomes.dead_mean(p, "D") for p in s.probes])
              for label, s in snaps.items()}
    return "dead-units.png", charts.line_chart(
        _lines(snaps, points), title="Share of D's units dead, at each probe", y_title="units dead",
        x_title="training step", subtitle=_subtitle(lesson), y_range=(0.0, 1.0), y_label=lambda v: f"{v:.0%}")


def _first_layer(lesson: Lesson, scoring: outcomes.Scoring) -> tuple[str, bytes]:
    snaps = lesson.snaps or {}
    points = {label: ([p.step for p in s.probes], [outcomes.grad_ratio(p, "G") for p in s.probes])
              for label, s in snaps.items()}
    return "first-layer-gradient.png", charts.line_chart(
        _lines(snaps, points), title="G's first-layer gradient over its last layer's, at each probe",
        y_title="first layer's share (log scale)", x_title="training step", subtitle=_subtitle(lesson), log_y=True)


def _covered(lesson: Lesson, scoring: outcomes.Scoring) -> tuple[str, bytes]:
    snaps = lesson.snaps or {}
    points = {label: ([r.step for r in s.samples],
                      [outcomes.covered_at(s, r, source_of=scoring.source_of, stats_of=scoring.stats_of)
                       for r in s.samples]) for label, s in snaps.items()}
    top = max([v for _, ys in points.values() for v in ys if math.isfinite(v)] or [1.0])
    return "digits-covered.png", charts.line_chart(
        _lines(snaps, points), title="Digits covered, at each snapshot", y_title="digits covered",
        x_title="training step", subtitle=_subtitle(lesson), y_range=(0.0, max(10.0, top)),
        y_label=lambda v: f"{v:.0f}")


# each comparison's measured number over training (outcomes.MEASURES gives its last value): a file name and the PNG
CURVES: dict[str, Callable[[Lesson, outcomes.Scoring], tuple[str, bytes]]] = {
    "dying-relu": _dead_units,
    "vanishing-gradients": _first_layer,
    "batchnorm": _covered,
    "collapse-digits": _covered,
}


def _losses(lesson: Lesson) -> dict[str, bytes]:
    """G's and D's smoothed losses, one chart each; none where the variants' losses differ (BCE against W-loss: two
    objectives on one axis would read as one being worse)."""
    snaps = lesson.snaps
    assert snaps is not None
    if "loss" in lesson.comparison.differing_fields():
        return {}
    out = {}
    for net, who in (("g", "G"), ("d", "D")):
        points = {}
        for label, s in snaps.items():
            column = s.metrics.get(f"{net}_loss_smooth", s.metrics.get(f"{net}_loss"))
            steps = s.metrics.get("step")
            points[label] = ([], []) if column is None or steps is None else (list(steps), list(np.asarray(column)))
        out[f"{net}-loss.png"] = charts.line_chart(
            _lines(snaps, points), title=f"{who}'s loss (smoothed)", y_title=f"{who}'s loss", x_title="training step",
            subtitle=_subtitle(lesson))
    return out


def _tally(lesson: Lesson, right: str | None) -> bytes:
    poll = lesson.poll
    assert poll is not None
    n = sum(poll.tally().values())
    said = (f"green: what the runs measured ({right})" if right is not None else
            "the runs have not answered it yet")
    return charts.bar_chart(poll.tally(), title=poll.question, highlight=right,
                            subtitle=f"The room's predictions: {n} {'answer' if n == 1 else 'answers'}; {said}")


def comparison_charts(lesson: Lesson, scoring: outcomes.Scoring = outcomes.SCORING) -> dict[str, bytes]:
    """A lesson's charts as PNG bytes by file name: the room's predictions (when asked), the number its question is
    answered with over training, and the losses (when its runs exist)."""
    out = {}
    measured = lesson.measured(scoring)
    right = lesson.comparison.prediction.outcome(measured) if measured is not None else None
    if lesson.poll is not None:
        out["predictions.png"] = _tally(lesson, right)
    if lesson.snaps is not None:
        if lesson.comparison.name in CURVES:
            file, png = CURVES[lesson.comparison.name](lesson, scoring)
            out[file] = png
        out |= _losses(lesson)
    return out


def charts_zip(found: Sequence[Lesson], scoring: outcomes.Scoring = outcomes.SCORING) -> bytes:
    """Every lesson's charts in one ZIP, a folder per comparison (PNG compresses itself: the ZIP only stores them)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for lesson in found:
            for file, png in comparison_charts(lesson, scoring).items():
                archive.writestr(f"{lesson.comparison.name}/{file}", png)
    return buffer.getvalue()
