"""Run configurations small enough for tests. `tiny(preset, ...)` shrinks any preset; TINY is a ring run of 60 steps that
trains in about a second on one CPU thread, SLOW the same run made too long to finish within a test."""

from gan_core.config import TrainConfig, get_preset
from gan_core.runs.roles import DEFAULT_SESSION_STEPS


def tiny(preset: str = "ring-bce", width: int = 16, **changes: object) -> TrainConfig:
    """`preset` with both networks `width` units (or channels) wide, and whatever else the test sets."""
    return get_preset(preset).config.replace(g_width=width, d_width=width, **changes)


TINY = tiny(steps=60, batch_size=32, checkpoint_every=20, probe_every=5, sample_every=10, n_samples=32)
SLOW = TINY.replace(steps=100_000)  # never finishes by itself within a test
# a student's longest run: as many steps as a student may hold (GAN_SESSION_STEPS); as unending within a test
STUDENT_SLOW = TINY.replace(steps=DEFAULT_SESSION_STEPS)
