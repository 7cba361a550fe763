"""gan_core.lessons.game: the minimax value and the balanced losses, against values worked by hand."""

from __future__ import annotations

import math

import pytest

from gan_core.lessons import explain, game


def test_minimax_value_is_the_two_batch_means_of_the_logs():
    # D says 0.9 and 0.7 to two real examples, 0.2 and 0.4 to two fakes
    expected = (math.log(0.9) + math.log(0.7)) / 2 + (math.log(0.8) + math.log(0.6)) / 2
    assert game.minimax_value([0.9, 0.7], [0.2, 0.4]) == pytest.approx(expected)


def test_at_balance_the_value_is_minus_log_4():
    assert game.minimax_value(0.5, 0.5) == pytest.approx(-math.log(4))


def test_a_winning_d_pushes_the_value_towards_zero():
    assert game.minimax_value(0.99, 0.01) == pytest.approx(2 * math.log(0.99))
    assert game.minimax_value(0.99, 0.01) > game.minimax_value(0.5, 0.5)


def test_balanced_losses_are_log_2_not_zero():
    b = game.balanced()
    assert (b.d_real, b.d_fake) == (0.5, 0.5)
    assert b.d_loss == pytest.approx(math.log(2)) and b.g_loss == pytest.approx(math.log(2))


def test_balanced_at_another_output():
    b = game.balanced(0.8)  # D's loss: (−ln 0.8 − ln 0.2) / 2; G's: −ln 0.8
    assert b.d_loss == pytest.approx(-(math.log(0.8) + math.log(0.2)) / 2)
    assert b.g_loss == pytest.approx(-math.log(0.8))


@pytest.mark.parametrize("d", [0.0, 1.0, -0.1, float("nan")])
def test_balanced_refuses_what_is_not_a_probability_inside_0_1(d):
    with pytest.raises(ValueError, match="^d: "):
        game.balanced(d)


def test_ds_bce_cost_on_a_balanced_batch_is_minus_half_the_value():
    # the BCE page's claim: with as many fakes as real examples, J(θ_d) = −V / 2, so minimising J maximises V
    real, fake = [0.8, 0.6], [0.3, 0.1]
    cost = explain.batch_cost([1, 1, 0, 0], real + fake).cost
    assert cost == pytest.approx(-game.minimax_value(real, fake) / 2)
    # the page's worked example, by hand: V = ln 0.8 + ln 0.7, J = −V / 2
    assert game.minimax_value(0.8, 0.3) == pytest.approx(math.log(0.8) + math.log(0.7))
    assert explain.batch_cost([1, 0], [0.8, 0.3]).cost == pytest.approx(-(math.log(0.8) + math.log(0.7)) / 2)
