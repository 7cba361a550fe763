"""Comparison pairs: each variant is the base run with only the lesson's setting changed."""

from __future__ import annotations

import pytest

from gan_core.config import ConfigError
from gan_core.lessons.comparisons import COMPARISONS, get_comparison


@pytest.mark.parametrize("name", COMPARISONS)
def test_variants_differ_only_in_the_lessons_setting(name):
    comparison = COMPARISONS[name]
    configs = comparison.configs()
    assert len(configs) >= 2 and comparison.question
    base = comparison.base.to_dict()
    allowed = comparison.differing_fields()
    for label, config in configs.items():
        changed = {k for k, v in config.to_dict().items() if v != base[k]}
        assert changed <= allowed, (label, changed - allowed)
    values = [tuple(c.to_dict()[k] for k in sorted(allowed)) for c in configs.values()]
    assert len(set(values)) == len(values), "two variants are the same run"
    seeds = {c.seed for c in configs.values()}
    assert len(seeds) == 1, "a fair comparison uses one seed"


def test_unknown_comparison_names_the_choices():
    with pytest.raises(ConfigError, match="dying-relu"):
        get_comparison("nope")
