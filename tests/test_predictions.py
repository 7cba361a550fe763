"""Predict, then observe: the questions' store (one answer per session, the tally, only the presenter opens and closes,
kept across restarts) and the rule that reads each comparison's answer off what its runs measured."""

from __future__ import annotations

import json
import math
import threading

import pytest

from gan_core.config import ConfigError
from gan_core.lessons.comparisons import BOTH, COMPARISONS, NEITHER, SAME, Expect, Prediction
from gan_core.lessons.predictions import (
    BURST_ENV,
    MAX_ANSWERS,
    NEW_BURST,
    PREDICTIONS_FILE,
    PRESENT_S,
    Predictions,
    voter,
)
from gan_core.runs.roles import Actor, RunRefused

NAME = "collapse-digits"
PRESENTER = Actor("teacher", presenter=True)


def student(i: int) -> Actor:
    return Actor(f"session-{i}", presenter=False)


def test_every_comparison_asks_a_question_over_its_own_variants():
    for c in COMPARISONS.values():
        choices = c.choices()
        assert c.prediction.question.endswith("?") and choices[:2] == tuple(c.variants)
        assert len(set(choices)) == len(choices) >= 3


@pytest.mark.parametrize(("expect", "margin", "measured", "answer"), [
    (Expect.MORE, 1.5, {"ReLU": 0.38, "leaky": 0.08}, "ReLU"),
    (Expect.MORE, 1.5, {"ReLU": 0.05, "leaky": 0.30}, "leaky"),
    (Expect.MORE, 1.5, {"ReLU": 0.30, "leaky": 0.25}, SAME),  # 1.2x: within the margin
    (Expect.MORE, 1.5, {"ReLU": 0.0, "leaky": 0.0}, SAME),
    (Expect.MORE, 1.5, {"ReLU": 0.1, "leaky": 0.0}, "ReLU"),
    (Expect.LESS, 10.0, {"sigmoid": 6e-5, "leaky": 0.2}, "sigmoid"),
    (Expect.LESS, 10.0, {"sigmoid": 0.05, "leaky": 0.2}, SAME),  # 4x apart
    (Expect.AT_MOST, 3, {"BCE": 1, "WGAN-GP": 10}, "BCE"),
    (Expect.AT_MOST, 3, {"BCE": 3, "WGAN-GP": 2}, BOTH),
    (Expect.AT_MOST, 3, {"BCE": 4, "WGAN-GP": 10}, NEITHER),
    (Expect.AT_MOST, 3, {"BCE": math.nan, "WGAN-GP": 10}, None),  # a run without records: no answer yet
    (Expect.MORE, 1.5, {"ReLU": 0.3}, None),
])
def test_the_outcome_is_read_off_the_measurements(expect, margin, measured, answer):
    assert Prediction("?", "x", expect, margin).outcome(measured) == answer


def test_only_the_presenter_opens_and_closes(tmp_path):
    store = Predictions(tmp_path)
    assert store.poll(NAME) is None
    with pytest.raises(RunRefused, match="only the presenter can open"):
        store.open(NAME, actor=student(1))
    assert store.poll(NAME) is None and not (tmp_path / PREDICTIONS_FILE).exists()
    poll = store.open(NAME, actor=PRESENTER)
    assert poll.is_open and poll.question == COMPARISONS[NAME].prediction.question
    assert poll.choices == ("BCE", "WGAN-GP", "both", "neither")
    with pytest.raises(RunRefused, match="only the presenter can close"):
        store.close(NAME, actor=student(1))
    assert store.poll(NAME).is_open
    with pytest.raises(ConfigError, match="unknown comparison"):
        store.open("nope", actor=PRESENTER)


def test_one_answer_per_session_and_the_tally(tmp_path):
    store = Predictions(tmp_path)
    poll = store.open(NAME, actor=PRESENTER)
    store.answer(NAME, poll.id, "BCE", actor=student(1))
    store.answer(NAME, poll.id, "both", actor=student(2))
    store.answer(NAME, poll.id, "WGAN-GP", actor=student(1))  # changes its mind: replaces, not adds
    poll = store.poll(NAME)
    assert poll.tally() == {"BCE": 0, "WGAN-GP": 1, "both": 1, "neither": 0}
    assert poll.answer_of("session-1") == "WGAN-GP" and poll.answer_of("session-3") is None
    # anonymous: the store holds neither session id
    rows = store.store.rows("SELECT voter FROM votes")
    assert sorted(r[0] for r in rows) == sorted([voter("session-1"), voter("session-2")])
    assert b"session-1" not in b"".join(p.read_bytes() for p in tmp_path.glob("classroom.db*"))  # WAL too
    with pytest.raises(ConfigError, match="not a choice; choose one of: BCE, WGAN-GP, both, neither"):
        store.answer(NAME, poll.id, "the ring", actor=student(3))
    with pytest.raises(ConfigError, match="only a browser session"):
        store.answer(NAME, poll.id, "BCE", actor=Actor())
    store.close(NAME, actor=PRESENTER)
    with pytest.raises(ConfigError, match="closed"):
        store.answer(NAME, poll.id, "BCE", actor=student(3))
    assert store.poll(NAME).tally()["WGAN-GP"] == 1 and not store.poll(NAME).is_open
    # a new question: a fresh tally, and an answer still aimed at the old one is refused
    fresh = store.open(NAME, actor=PRESENTER)
    assert fresh.id == poll.id + 1 and sum(fresh.tally().values()) == 0
    with pytest.raises(ConfigError, match="no longer asked"):
        store.answer(NAME, poll.id, "BCE", actor=student(1))


def test_answers_from_many_sessions_at_once_are_all_counted(tmp_path):
    store = Predictions(tmp_path)
    poll = store.open(NAME, actor=PRESENTER)
    threads = [threading.Thread(target=store.answer, args=(NAME, poll.id, poll.choices[i % 4]),
                                kwargs={"actor": student(i)}) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.poll(NAME).tally() == {"BCE": 8, "WGAN-GP": 8, "both": 7, "neither": 7}
    assert Predictions(tmp_path).poll(NAME).tally() == store.poll(NAME).tally()  # and all of them reached the file


def test_a_question_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr("gan_core.lessons.predictions.MAX_ANSWERS", 2)
    store = Predictions(tmp_path)
    poll = store.open(NAME, actor=PRESENTER)
    store.answer(NAME, poll.id, "BCE", actor=student(1))
    store.answer(NAME, poll.id, "BCE", actor=student(2))
    with pytest.raises(ConfigError, match="its 2 answers already"):
        store.answer(NAME, poll.id, "BCE", actor=student(3))
    store.answer(NAME, poll.id, "neither", actor=student(2))  # one already in may still change its answer
    assert MAX_ANSWERS >= 10_000  # no real class reaches it: it bounds the file, not the room


def test_five_hundred_scripted_sessions_cannot_lock_out_a_real_answer(tmp_path):
    """A script opening sessions from one address gets NEW_BURST answers in, then one a second; a student elsewhere
    answers at once, and one already in may change its answer."""
    store = Predictions(tmp_path, clock=lambda: 0.0)  # no time passes: no answer refills the script's burst
    poll = store.open(NAME, actor=PRESENTER)
    refused = 0
    for i in range(500):
        try:
            store.answer(NAME, poll.id, "BCE", actor=student(i), address="10.0.0.66")
        except ConfigError as err:
            assert "too many new answers from your network" in str(err) and "\n" not in str(err)
            refused += 1
    assert refused == 500 - NEW_BURST
    store.answer(NAME, poll.id, "neither", actor=student(0), address="10.0.0.66")  # a change is not a new answer
    real = store.answer(NAME, poll.id, "WGAN-GP", actor=Actor("a-real-browser", presenter=False), address="10.0.0.7")
    assert real.answer_of("a-real-browser") == "WGAN-GP" and len(real.answers) == NEW_BURST + 1


def test_a_hall_behind_one_nat_gets_the_burst_its_teacher_sets(tmp_path, monkeypatch):
    monkeypatch.setenv(BURST_ENV, "3")
    store = Predictions(tmp_path, clock=lambda: 0.0)
    poll = store.open(NAME, actor=PRESENTER)
    for i in range(3):
        store.answer(NAME, poll.id, "BCE", actor=student(i), address="10.0.0.66")
    with pytest.raises(ConfigError, match="too many new answers"):
        store.answer(NAME, poll.id, "BCE", actor=student(3), address="10.0.0.66")
    for bad, said in (("0", "must be at least 1"), ("lots", "must be a whole number")):
        monkeypatch.setenv(BURST_ENV, bad)
        with pytest.raises(ValueError, match=f"{BURST_ENV} {said}"):
            Predictions(tmp_path)


def test_one_answer_per_browser_not_per_tab(tmp_path):
    store = Predictions(tmp_path)
    poll = store.open(NAME, actor=PRESENTER)
    tab = Actor("browser:the-same-cookie", presenter=False)  # every tab of a browser is this actor (ui.roles)
    for choice in ("BCE", "WGAN-GP", "neither"):
        poll = store.answer(NAME, poll.id, choice, actor=tab)
    assert poll.tally() == {"BCE": 0, "WGAN-GP": 0, "both": 0, "neither": 1}


def test_new_answers_refill_one_a_second_per_address_across_the_rooms_processes(tmp_path):
    """Two Predictions on one runs folder stand for two app processes behind the hall's balancer: one address's burst
    is the room's, not each process's."""
    now = [1000.0]
    first, second = (Predictions(tmp_path, clock=lambda: now[0], burst=2) for _ in range(2))
    poll = first.open(NAME, actor=PRESENTER)

    def new_answer(predictions: Predictions, i: int, address: str) -> bool:
        try:
            predictions.answer(NAME, poll.id, "BCE", actor=student(i), address=address)
            return True
        except ConfigError as err:
            assert "too many new answers from your network" in str(err)
            return False

    assert new_answer(first, 1, "10.0.0.66") and new_answer(second, 2, "10.0.0.66")
    assert not new_answer(first, 3, "10.0.0.66") and not new_answer(second, 3, "10.0.0.66")
    assert new_answer(second, 4, "10.0.0.7")  # another network: its own bucket
    now[0] += 1.0
    assert new_answer(second, 3, "10.0.0.66") and not new_answer(first, 5, "10.0.0.66")
    second.answer(NAME, poll.id, "neither", actor=student(1), address="10.0.0.66")  # a change is not a new answer


def test_the_presenter_sees_how_many_browsers_are_on_the_page(tmp_path):
    now = [100.0]
    store = Predictions(tmp_path, clock=lambda: now[0])
    for i in range(3):
        store.seen(NAME, f"browser-{i}")
    store.seen(NAME, "browser-0")  # a second tab, or the next poll: the same browser
    assert store.present(NAME) == 3 and store.present("batchnorm") == 0
    assert store.present(NAME, besides="browser-1") == 2  # the presenter's own browser, before it typed the key
    now[0] += PRESENT_S + 1
    assert store.present(NAME) == 0  # their panels stopped polling: the tabs were closed


def test_a_restart_keeps_the_question_and_its_answers(tmp_path):
    store = Predictions(tmp_path)
    poll = store.open(NAME, actor=PRESENTER)
    store.answer(NAME, poll.id, "BCE", actor=student(1))
    again = Predictions(tmp_path)
    assert again.poll(NAME) == store.poll(NAME) and again.poll(NAME).is_open
    again.answer(NAME, poll.id, "neither", actor=student(2))
    again.close(NAME, actor=PRESENTER)
    third = Predictions(tmp_path)
    assert not third.poll(NAME).is_open and third.poll(NAME).tally()["neither"] == 1


@pytest.mark.parametrize("text", ["", "{oops", "[1]", '{"polls": []}',
                                  '{"polls": {"collapse-digits": {"id": 1, "question": "?", "choices": ["a"], '
                                  '"open": true, "opened": 0, "answers": {"x": "not a choice"}}}}'])
def test_a_damaged_file_is_no_question(tmp_path, text):
    (tmp_path / PREDICTIONS_FILE).write_text(text)
    store = Predictions(tmp_path)
    assert store.poll(NAME) is None
    poll = store.open(NAME, actor=PRESENTER)
    assert Predictions(tmp_path).poll(NAME).id == poll.id  # the room's store keeps it; the damaged file stays as it was
    assert (tmp_path / PREDICTIONS_FILE).read_text() == text


def test_a_file_from_before_the_store_is_read_once_and_two_processes_count_every_vote(tmp_path):
    old = {"polls": {NAME: {"id": 3, "question": "?", "choices": ["BCE", "WGAN-GP"], "open": True, "opened": 5.0,
                            "answers": {voter("early-browser"): "BCE"}}}}
    (tmp_path / PREDICTIONS_FILE).write_text(json.dumps(old))
    first = Predictions(tmp_path)
    poll = first.poll(NAME)
    assert (poll.id, poll.answer_of("early-browser"), poll.is_open) == (3, "BCE", True)
    first.close(NAME, actor=PRESENTER)
    assert not Predictions(tmp_path).poll(NAME).is_open  # read once: a second process does not read the file again
    # two app processes (two Predictions over one store), answering at once: every vote counted
    poll = first.open(NAME, actor=PRESENTER)
    second = Predictions(tmp_path)
    threads = [threading.Thread(target=(first if n % 2 else second).answer,
                                args=(NAME, poll.id, "BCE" if n % 3 else "both"), kwargs={"actor": student(n)})
               for n in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(first.poll(NAME).tally().values()) == 40 == sum(second.poll(NAME).tally().values())
