"""The benchmark harness on tiny settings: it runs, and its rows say what they measured (no timing is asserted)."""

from __future__ import annotations

import pytest

from gan_core import bench
from gan_core.cli import main
from gan_core.config import get_preset

pytestmark = pytest.mark.usefixtures("one_thread")


def test_bare_loop_and_trainer_loop_report_speed():
    config = get_preset("digits").config
    assert bench.bare_loop(config, 5) > 0
    assert bench.trainer_loop(config, 5) > 0


def test_probe_overhead_rows():
    rows = bench.probe_overhead(steps=5, rounds=1)
    assert [r.metric for r in rows] == ["bare loop steps/s", "Trainer steps/s", "Trainer without probes steps/s",
                                        "ratio Trainer / bare", "probes' own cost"]
    ratio = rows[3]
    assert float(ratio.value) > 0 and ratio.target == "≥ 0.9"
    assert rows[4].value.endswith("%")


def test_time_to_quality_gives_up_at_its_limit():
    rows = bench.time_to_quality(seeds=(0,), threads=1, check_every=5, max_seconds=0.01, n=50)
    assert rows[0].value == "inf" and rows[1].value == "inf s"  # 5 steps cannot cover ten classes
    assert rows[2].value.startswith("seed 0: 5:")


def test_markdown_table_has_a_row_per_result():
    table = bench.markdown([bench.Row("a", "b", "1"), bench.Row("c", "d", "2", "≤ 3", "note")])
    assert table.splitlines()[2] == "| a | b | 1 |  |  |" and len(table.splitlines()) == 4


def test_cli_refuses_an_unknown_bench(capsys):
    assert main(["bench", "nope"]) == 2
    assert "unknown bench 'nope'" in capsys.readouterr().err


