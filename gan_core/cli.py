"""python -m gan_core presets | train | sample | eval | sweep: the engine from the command line.

Bad input prints one line naming the field and exits 2. `train` prints on stderr one line saying what runs the steps
("steps: cuda graphs (...)", or "steps: eager: why"), the progress bar, and the line it ends with.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from gan_core.config import PRESETS, ConfigError, get_preset, parse_overrides
from gan_core.data import described
from gan_core.evaluation.rejection import rejection_sample
from gan_core.runs.folder import RunStore
from gan_core.runs.status import Status, StepKind
from gan_core.runs.train_run import Hooks, open_run, train_to
from gan_core.train.cuda_graphs import EagerSteps
from gan_core.train.records import CheckpointError, Diverged, StepResult
from gan_core.train.trainer import Trainer

EXIT_CELLS_FAILED = 1  # a sweep whose cells did not all finish (diverged, failed, deleted): summary.csv says which
EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports it
MAX_THREADS = 1024  # --threads above this is a typo, not a machine
# `sample` holds its samples in one float32 array before writing them, `eval` scores them in memory: 1 GiB is 4 million
# 2D points or ~340,000 MNIST images, far beyond what either needs, and it fits the few-GB laptop the README describes.
MAX_SAMPLE_BYTES = 1 << 30


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own errors: one line, exit 2, as for a bad config
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m gan_core", description="Train, sample and evaluate the explainer's GANs.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("presets", help="list the presets, one per line")

    train = sub.add_parser("train", help="train a preset into a run folder")
    train.add_argument("--preset", required=True, help="preset name (see `presets`)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    train.add_argument("--steps", type=int, help="total steps to train to (with --resume: continue up to this)")
    train.add_argument("--seed", type=int)
    train.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    train.add_argument("--out", required=True, help="the run folder to write")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    train.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")

    sample = sub.add_parser("sample", help="write N generated samples to a .npy file")
    sample.add_argument("--run", required=True)
    sample.add_argument("--n", type=int, required=True)
    sample.add_argument("--out", required=True)
    sample.add_argument("--seed", type=int)
    sample.add_argument("--label", type=int, help="class to generate (conditional runs)")
    sample.add_argument("--rejection", action="store_true",
                        help="keep only samples D accepts (discriminator rejection sampling; BCE runs only)")

    ev = sub.add_parser("eval", help="print the run's quality metrics as JSON")
    ev.add_argument("--run", required=True)
    ev.add_argument("--n", type=int, default=None, help="samples to evaluate (2D: 2500, images: 1000)")
    ev.add_argument("--seed", type=int)
    ev.add_argument("--rejection", action="store_true",
                    help='also score samples kept by D (rejection sampling; BCE runs only), under "rejection"')
    sweep = sub.add_parser("sweep", help="train a grid of runs (one per cell) and summarise their outcomes")
    sweep.add_argument("--preset", required=True, help="preset name (see `presets`)")
    sweep.add_argument("--grid", action="append", default=[], metavar="FIELD=V1,V2",
                       help="a field to sweep and its values (once or twice: a table's rows and columns)")
    sweep.add_argument("--seeds", default="0", help="seeds of every grid point, e.g. 0,1,2 (default 0)")
    sweep.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a field fixed in every cell")
    sweep.add_argument("--steps", type=int, help="total steps of every cell")
    sweep.add_argument("--out", required=True, help="folder for the cells' run folders and summary.csv/.json")
    sweep.add_argument("--workers", type=int, help="runs training at once (default: $GAN_MAX_RUNS, else cores − 1)")
    sweep.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    sweep.add_argument("--ray-address", help="train the cells on this Ray cluster (auto, or ray://host:port)")

    hall = sub.add_parser("serve", help="a lecture hall: N dashboard processes behind HAProxy, on one runs folder")
    hall.add_argument("--replicas", type=int, default=2, help="app processes (default 2; see the README to size it)")
    hall.add_argument("--port", type=int, default=8501, help="the port students open (default 8501)")
    hall.add_argument("--address", default="0.0.0.0", help="the address it listens on (default: every interface)")
    hall.add_argument("--runs-dir", help="the runs folder (default: $GAN_RUNS_DIR, else runs/)")

    for command in (train, sample, ev, sweep):
        command.add_argument("--data-dir", help="where torchvision datasets live (default: $GAN_DATA_DIR, else data/)")
    return parser


def cmd_presets(_: argparse.Namespace) -> int:
    width = max(len(name) for name in PRESETS)
    for name, preset in PRESETS.items():
        print(f"{name:<{width}}  {preset.description}")
    return 0


def _check_n(option: str, n: int, shape: tuple[int, ...]) -> None:
    """`n` samples of `shape` fit MAX_SAMPLE_BYTES, checked before anything is allocated."""
    if n < 1:
        raise UsageError(f"{option}: must be at least 1")
    most = MAX_SAMPLE_BYTES // (4 * math.prod(shape))
    if n > most:
        raise UsageError(f"{option}: at most {most:,} samples of shape {shape} ({MAX_SAMPLE_BYTES >> 20} MB of float32)")


def _writable_file(option: str, path: str) -> Path:
    """The output file `path`, checked before the work: not a folder, in a folder that exists and can be written."""
    out = Path(path)
    if out.is_dir():
        raise UsageError(f"{option}: {path} is a folder; name a file")
    if not out.parent.is_dir():
        raise UsageError(f"{option}: folder {out.parent} does not exist")
    _check_writable(option, out.parent)
    return out


def _check_writable(option: str, folder: Path) -> None:
    # a real write, not os.access: root passes every permission check, and a read-only mount fails only on writing
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise UsageError(f"{option}: cannot write in {folder} ({err.strerror or err})") from None


def cmd_train(args: argparse.Namespace) -> int:
    if args.threads is not None:
        if not 1 <= args.threads <= MAX_THREADS:
            raise UsageError(f"--threads: must be between 1 and {MAX_THREADS}")
        torch.set_num_threads(args.threads)
    changes = parse_overrides(args.set)
    if args.steps is not None:
        changes["steps"] = args.steps
    if args.seed is not None:
        changes["seed"] = args.seed
    if args.resume:
        if set(changes) - {"steps"}:
            raise UsageError("--resume continues a run as it was configured; only --steps may change")
        store, trainer = open_run(args.out, steps=args.steps, device=args.device, data_dir=args.data_dir)
    else:
        config = get_preset(args.preset).config.replace(**changes)
        out = Path(args.out)
        if (out / "config.json").exists():
            raise UsageError(f"--out: {args.out} already holds a run; add --resume to continue it")
        if out.exists() and not out.is_dir():
            raise UsageError(f"--out: {args.out} is a file; name a folder for the run")
        _check_writable("--out", _nearest_folder(out))
        store, trainer = open_run(args.out, config, device=args.device, data_dir=args.data_dir)
    if trainer.data.note:
        print(f"note: {trainer.data.note}", file=sys.stderr)
    total = trainer.config.steps
    with tqdm(total=total, initial=trainer.step_count, unit="step", file=sys.stderr, dynamic_ncols=True,
              disable=None) as bar:
        try:
            train_to(store, trainer, total, on_step=_Progress(bar))
        except Diverged as err:
            print(f"{err}; the last good checkpoint is kept in {store.path}", file=sys.stderr)
            return EXIT_DIVERGED
    print(f"trained {trainer.step_count} steps in {trainer.elapsed_s:.1f} s → {store.path}", file=sys.stderr)
    return 0


class _Progress(Hooks):
    """What `train` shows while the one training loop runs: what runs the steps, then the progress bar."""

    def __init__(self, bar: tqdm) -> None:
        self.bar = bar

    def started(self, stepper: EagerSteps) -> None:
        self.bar.write(f"steps: {stepper.acceleration}", file=sys.stderr)  # above the bar, which it does not break

    def stepped(self, result: StepResult | None, manual: StepKind | None) -> None:
        if result is None:
            return
        self.bar.update(1)
        if result.record.step % 25 == 0:
            self.bar.set_postfix(d=f"{result.record.d_loss:.3f}", g=f"{result.record.g_loss:.3f}")


def _nearest_folder(path: Path) -> Path:
    """The closest existing folder at or above `path` (where creating it would start)."""
    path = path.absolute()
    while not path.is_dir() and path != path.parent:
        path = path.parent
    return path


def cmd_sample(args: argparse.Namespace) -> int:
    if args.n < 1:
        raise UsageError("--n: must be at least 1")
    if not args.out.endswith(".npy"):
        raise UsageError("--out: must name a .npy file")
    _writable_file("--out", args.out)
    trainer = _finished_generator(args.run)
    _check_n("--n", args.n, trainer.data.shape)
    kept = None
    try:
        if args.rejection:
            kept = rejection_sample(trainer, args.n, seed=args.seed, label=args.label)
            samples = kept.samples
        else:
            samples = trainer.sample(args.n, seed=args.seed, label=args.label)
    except ConfigError:
        raise
    except ValueError as err:
        raise UsageError(str(err)) from None
    np.save(args.out, samples.astype(np.float32))
    filtered = "" if kept is None else f" (D kept {kept.accepted:,} of {kept.drawn:,} drawn: {kept.acceptance_rate:.1%})"
    print(f"wrote {samples.shape} to {args.out}{filtered}", file=sys.stderr)
    return 0


def _finished_generator(run: str) -> Trainer:
    """The run's G and D at its last checkpoint, built without its training data (gan_core.data.described): sampling a
    finished run needs only its folder, wherever the data was."""
    store = RunStore(run)
    config = store.read_config()
    trainer = Trainer(config, device="cpu", data=described(config))
    if store.has_checkpoint():
        trainer.load_state_dict(store.load_checkpoint())
    return trainer


def cmd_eval(args: argparse.Namespace) -> int:
    from gan_core.evaluation.evaluate import evaluate_run  # noqa: PLC0415 - scikit-learn and the classifier: only eval

    if args.n is not None and args.n < 1:
        raise UsageError("--n: must be at least 1")
    _, trainer = open_run(args.run, device="cpu", data_dir=args.data_dir)
    if args.n is not None:
        _check_n("--n", args.n, trainer.data.shape)
    print(json.dumps(evaluate_run(trainer, n=args.n, seed=args.seed, rejection=args.rejection)))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """One run folder per cell under --out, trained through a RunManager (queued behind its workers, or on Ray), a
    progress line per ended cell, then summary.csv and summary.json in --out."""
    # scikit-learn, the classifier and the run manager: only for a sweep
    from gan_core.runs.manager import RunManager  # noqa: PLC0415
    from gan_core.sweeps import outcomes, record  # noqa: PLC0415
    from gan_core.sweeps.spec import SweepSpec, parse_grid, parse_seeds  # noqa: PLC0415

    fixed = parse_overrides(args.set)
    if args.steps is not None:
        fixed["steps"] = args.steps
    spec = SweepSpec.of(args.preset, parse_grid(args.grid), parse_seeds(args.seeds), fixed)
    if args.workers is not None and not 1 <= args.workers <= MAX_THREADS:
        raise UsageError(f"--workers: must be between 1 and {MAX_THREADS}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out: {args.out} is a file; name a folder for the sweep")
    if (out / outcomes.SUMMARY_JSON).exists():
        raise UsageError(f"--out: {args.out} already holds a sweep's summary; name a new folder")
    _check_writable("--out", _nearest_folder(out))
    # without --ray-address the manager's own default decides: GAN_RAY_ADDRESS if set, else local workers
    options = {"ray_address": args.ray_address} if args.ray_address else {}
    manager = RunManager(out, max_runs=args.workers, device=args.device, data_dir=args.data_dir, **options)
    ended: list[outcomes.CellRow] = []

    def progress(row: outcomes.CellRow) -> None:
        ended.append(row)
        status = "deleted" if row.status is None else row.status.value
        print(f"[{len(ended)}/{spec.size}] {row.cell.name}: {status} at step {row.step:,} · {one_line(row.describe())}",
              file=sys.stderr, flush=True)

    interrupted = False
    try:
        sweep = record.launch(manager, spec)
        print(f"sweep {sweep.id}: {spec.size} cells, {manager.max_runs} at a time → {out}", file=sys.stderr, flush=True)
        try:
            outcomes.follow(manager, sweep, progress)
        except KeyboardInterrupt:  # stop every cell (a training one checkpoints), then still write what there is
            interrupted = True
            for run_id in sweep.run_ids:  # queued ones too: a dashboard opened on --out later must not train them
                with contextlib.suppress(ConfigError):  # one that ended meanwhile has nothing to stop
                    manager.stop(run_id)
    finally:
        manager.shutdown()
    rows = outcomes.rows(manager, sweep, evaluate=not interrupted)
    csv_path, _ = outcomes.write_summary(out, sweep, rows)
    print(f"{'interrupted: ' if interrupted else ''}summary of {len(rows)} cells → {csv_path}", file=sys.stderr)
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_CELLS_FAILED if any(r.status is not Status.FINISHED for r in rows) else 0


def cmd_serve(args: argparse.Namespace) -> int:
    from gan_core import hall  # noqa: PLC0415 - only this command starts servers

    if not 1 <= args.port <= 65535:
        raise UsageError(f"--port: {args.port} is not a port number (1-65535)")
    if not 1 <= args.replicas <= hall.MAX_REPLICAS:
        raise UsageError(f"--replicas: {args.replicas} is not between 1 and {hall.MAX_REPLICAS}")
    try:
        return hall.serve(args.replicas, args.port, args.address, args.runs_dir)
    except (ValueError, RuntimeError) as err:
        raise UsageError(str(err)) from None


COMMANDS = {"presets": cmd_presets, "train": cmd_train, "sample": cmd_sample, "eval": cmd_eval, "sweep": cmd_sweep,
            "serve": cmd_serve}


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except (UsageError, ConfigError, CheckpointError, FileExistsError) as err:
        print(f"error: {one_line(str(err))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as err:  # a full disk, a folder that vanished, a permission: what and where, in one line
        where = f": {err.filename}" if err.filename else ""
        print(f"error: {one_line((err.strerror or str(err)) + where)}", file=sys.stderr)
        return EXIT_BAD_INPUT


def one_line(text: str) -> str:
    """`text` with every unprintable character (newlines, NUL, lone surrogates) escaped: one printable line."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
