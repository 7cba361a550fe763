"""Run configurations small enough for tests: a ring run of 60 steps that trains in about a second on one CPU thread."""

from gan_core.config import get_preset

TINY = get_preset("ring-bce").config.replace(steps=60, g_width=16, d_width=16, batch_size=32, checkpoint_every=20,
                                             probe_every=5, sample_every=10, n_samples=32)
SLOW = TINY.replace(steps=100_000)  # never finishes by itself within a test
