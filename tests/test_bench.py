"""The benchmark harness (benchmarks/) on tiny settings: it runs, and its rows say what they measured (no timing is
asserted); `python -m benchmarks` is its one entry."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchmarks import bench
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


def test_an_unknown_bench_is_refused_in_one_line(capsys):
    assert bench.main(["nope"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown bench 'nope'; choose from: probe-overhead, ")


@pytest.mark.server
def test_main_runs_the_named_benches(capsys, monkeypatch):
    monkeypatch.setitem(bench.BENCHES, "probe-overhead", lambda: [bench.Row("probe-overhead", "ratio", "1.00", "≥ 0.9")])
    assert bench.main(["probe-overhead"]) == 0
    out = capsys.readouterr().out
    assert "- Command: `python -m benchmarks probe-overhead`" in out and "| probe-overhead | ratio | 1.00 |" in out


def test_the_engine_has_no_bench_command(capsys):
    """`python -m benchmarks` is the one entry: gan_core's CLI neither knows the benches nor where the repository is."""
    assert main(["bench"]) == 2
    assert "invalid choice: 'bench'" in capsys.readouterr().err


def test_gan_core_holds_no_benchmark_code():
    engine = Path(__file__).resolve().parents[1] / "gan_core"
    lines = [(f, line) for f in engine.rglob("*.py") for line in f.read_text().splitlines()
             if re.match(r"\s*(from|import) benchmarks\b", line)]
    assert not lines and not (engine / "bench.py").exists() and not (engine / "bench_gpu.py").exists(), lines


def test_mode_coverage_rows_sit_beside_the_published_numbers():
    tiny = {"steps": 3, "g_width": 8, "d_width": 8, "batch_size": 16}
    rows = bench.mode_coverage(presets=("ring-bce", "grid-wgan"), seeds=(0, 1), n=200, parallel=1, overrides=tiny)
    ours = [r for r in rows if r.metric.endswith("(ours)")]
    assert [r.metric for r in ours] == ["ring-bce (ours)", "grid-wgan (ours)"]
    assert ours[0].target == "8.0 · ≥ 97% · ≤ 60 s" and ours[1].target == "25.0 · ≥ 95% · ≤ 60 s"
    assert all(r.note.startswith("missed; seeds 0, 1: ") for r in ours)  # three steps cannot cover a mixture
    assert all(re.search(r"\d+% of samples at 3–6σ, \d+% beyond 10σ$", r.note) for r in ours), [r.note for r in ours]
    published = [r.metric for r in rows if r.note == "published"]
    assert published == ["ring: GAN (PacGAN Table 1)", "ring: PacGAN4 (PacGAN Table 1)", "ring: VEEGAN (PacGAN Table 1)",
                         "grid: GAN (PacGAN Table 1)", "grid: PacGAN4 (PacGAN Table 1)", "grid: VEEGAN (PacGAN Table 1)"]


def test_coverage_run_scores_the_samples():
    result = bench.coverage_run("ring-bce", 0, n=100, overrides={"steps": 2, "g_width": 8, "d_width": 8, "batch_size": 16})
    assert set(result) == {"modes", "total", "hq", "reverse_kl", "seconds", "within_6", "beyond_10"}
    assert result["total"] == 8 and 0 <= result["modes"] <= 8 and 0.0 <= result["hq"] <= 1.0 and result["seconds"] > 0
    assert result["hq"] <= result["within_6"] <= 1.0 - result["beyond_10"]  # nested bands of distance to the modes


def test_ui_latency_reports_a_missing_script_or_failure_as_a_row(monkeypatch, tmp_path):
    import subprocess

    class Done:
        returncode, stdout, stderr = 1, "", "Traceback...\nRuntimeError: no server"

    monkeypatch.setattr(subprocess, "run", lambda *a, **k: Done())
    (row,) = bench.ui_latency(seconds=0.1)
    assert row.metric == "failed" and row.note == "RuntimeError: no server"


@pytest.mark.server
def test_first_picture_names_a_missing_chromium(tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "benchmarks/first_picture.py", "--chromium", str(tmp_path / "nope")],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1], timeout=60)
    assert done.returncode != 0 and "--chromium" in done.stderr and "is not a file" in done.stderr


@pytest.mark.server
def test_the_report_is_markdown_a_list_then_a_table(monkeypatch):
    monkeypatch.setitem(bench.BENCHES, "probe-overhead", lambda: [bench.Row("probe-overhead", "ratio", "1.00", "≥ 0.9")])
    report = bench.run(["probe-overhead"]).splitlines()
    assert [line.split(":")[0] for line in report[:4]] == ["- Machine", "- Command", "- Date", "- Took"]
    assert report[4] == "" and report[5].startswith("| bench |") and report[-1] == "| probe-overhead | ratio | 1.00 | ≥ 0.9 |  |"


@pytest.mark.slow
def test_step_profile_accounts_for_every_part_of_a_step():
    from benchmarks.step_profile import PARTS, step_profile

    rows = step_profile(presets=("ring-bce",), steps=20)
    metrics = {r.metric: r.value for r in rows}
    assert "one thread's fp32 peak (1024² matmul)" in metrics
    assert all(f"ring-bce {part}" in metrics for part in PARTS)
    shares = [int(v.rpartition("(")[2].rstrip("%)")) for m, v in metrics.items() if m.startswith("ring-bce ")
              and v.endswith("%)") and "achieved" not in m]
    assert 95 <= sum(shares) <= 105  # the parts and the rest make up the whole step (rounded)
    assert float(metrics["ring-bce ATen ops per step"]) > 50


def test_mnist_minute_times_mnist_quick_where_the_data_is(monkeypatch, tmp_path):
    """The bench's wiring (time_to_quality itself is tested on the digits above; training MNIST's classifier here
    would cost the suite ~45 s): mnist-quick, from GAN_DATA_DIR, against 60 s."""
    seen = {}
    monkeypatch.setattr(bench, "time_to_quality", lambda **kwargs: seen.update(kwargs) or [])
    monkeypatch.setenv("GAN_DATA_DIR", str(tmp_path))
    bench.mnist_minute()
    assert seen["preset"] == "mnist-quick" and seen["data_dir"] == str(tmp_path) and seen["target_s"] == 60.0


@pytest.mark.server
def test_python_m_benchmarks_help_names_every_bench():
    """The one entry, as a user types it from the repository's root: its help lists every bench."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "benchmarks", "--help"], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1], timeout=120)
    assert done.returncode == 0, done.stderr
    listed = " ".join(done.stdout.split()).replace("- ", "-")  # argparse wraps lines at hyphens
    missing = [name for name in bench.BENCHES if name not in listed]
    assert not missing, f"`python -m benchmarks --help` does not name {missing}"
