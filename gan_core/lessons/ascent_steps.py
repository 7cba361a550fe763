"""The step size of classifier ascent on z, in the course lab's convention and in gan_core.lessons.control's.

The course's C1W4 lab scores its N images together, score = mean_i score_i, and updates z ← z + weight · ∇_z score with
weight = 1 / grad_steps (0.1 for its 10 steps). The gradient of a mean on z_i is ∂score_i/∂z_i / N, so each z_i moves
by weight / N times its own gradient. class_ascent moves each z_i by η · ∂score_i/∂z_i, which means the same thing
for any number of samples. So  η = weight / N  and  weight = η · N.
"""

from __future__ import annotations

LAB_WEIGHT = 0.1  # the lab's 1 / grad_steps with grad_steps = 10
LAB_IMAGES = 8  # the lab's n_images


def _check(value: float, name: str, n: int) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n (the number of samples) must be a whole number ≥ 1, got {n!r}")


def lab_weight(step_size: float, n: int) -> float:
    """The lab's `weight` that moves each of n samples as far as class_ascent's step size η does: η · n."""
    _check(step_size, "step size η", n)
    return step_size * n


def step_size_from_lab(weight: float = LAB_WEIGHT, n: int = LAB_IMAGES) -> float:
    """class_ascent's η for the lab's `weight` on a score averaged over n images: weight / n (0.1 / 8 = 0.0125)."""
    _check(weight, "weight", n)
    return weight / n
