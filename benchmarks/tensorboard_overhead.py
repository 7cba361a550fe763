"""What writing TensorBoard event files costs a run: ring-bce trained with them and without (tensorboard made
unimportable, the path a machine without the package takes), alternating A B A B in fresh processes, one thread each.

    python benchmarks/tensorboard_overhead.py [--steps 1500] [--pairs 3]

Prints each trial's steps/s (wall) and CPU ms per step, then the medians. On a busy machine those swing by more than the
events cost, so a run with events also replays its metrics rows and sample snapshots into a fresh event log and times
that alone (CPU time of the process, so the writer's own thread is counted): the events' cost per step, directly.
The one-time import of TensorBoard (~0.5 s, paid by a dashboard worker before any run starts) is outside the timing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

TRIAL = """
import json, sys, time
if {without}:
    sys.modules["tensorboard"] = None
import torch
torch.set_num_threads(1)
from gan_core.config import get_preset
from pathlib import Path
from gan_core.runs.tensorboard_log import EVENTS_GLOB, EventLog, summary_writer_class
from gan_core.runs.train_run import open_run, train_to
summary_writer_class()
store, trainer = open_run({out!r}, get_preset("ring-bce").config.replace(steps={steps}))
wall, cpu = time.perf_counter(), time.process_time()
train_to(store, trainer)
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
replay = 0.0
if summary_writer_class() is not None:
    rows, samples = store.read_metrics(), {{s: store.load_samples(s) for s in store.sample_steps()}}
    events = EventLog(Path({out!r}) / "replay")
    replay = time.process_time()
    for step in range({steps} + 1):
        if step:
            events.add_metrics(rows[step - 1])
        if step in samples:
            events.add_samples(samples[step])
    events.close()
    replay = time.process_time() - replay
print(json.dumps({{"steps_per_s": {steps} / wall, "cpu_ms_per_step": 1000 * cpu / {steps},
                  "events_cpu_ms_per_step": 1000 * replay / {steps},
                  "event_files": len(list(store.path.glob(EVENTS_GLOB)))}}))
"""


def trial(without: bool, steps: int, out: Path) -> dict:
    code = TRIAL.format(without=without, out=str(out), steps=steps)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[1])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[dict]] = {"without": [], "with": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.pairs):
            for name in ("without", "with"):
                row = trial(name == "without", args.steps, Path(tmp) / f"{name}{i}")
                results[name].append(row)
                print(f"{name:8} {row['steps_per_s']:7.1f} steps/s  {row['cpu_ms_per_step']:6.2f} CPU ms/step  "
                      f"events alone {row['events_cpu_ms_per_step']:5.3f} CPU ms/step  event files: {row['event_files']}",
                      flush=True)
    for name, rows in results.items():
        print(f"median {name:8} {statistics.median(r['steps_per_s'] for r in rows):7.1f} steps/s  "
              f"{statistics.median(r['cpu_ms_per_step'] for r in rows):6.2f} CPU ms/step  events alone "
              f"{statistics.median(r['events_cpu_ms_per_step'] for r in rows):5.3f} CPU ms/step")


if __name__ == "__main__":
    main()
