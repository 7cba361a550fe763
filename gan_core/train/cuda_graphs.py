"""Accelerated steps on a CUDA GPU: each training step replayed as one CUDA graph.

Why: the course's first GAN (an MLP on MNIST, batch 128) is launch-bound on a big GPU. A step is ~200 small kernels and
eager PyTorch spends tens of µs of Python and launch overhead on each while the GPU needs a few (the plain loop ran at
~180 steps/s on an H100). Captured as a graph, a step is one launch, and the host queues steps ahead of the GPU.

How: `steps = accelerate(Trainer(config, "cuda"), "auto" | "on")`, then `steps.steps(n)`, `steps.step()`,
`steps.state_dict()`, `steps.load_state_dict(state)` in place of the Trainer's own ("off": the Trainer's eager steps
behind the same calls). Every run trains so: the one loop (gan_core.runs.train_run: the CLI, dashboard runs, sweeps)
steps through `accelerate(trainer, "auto")`. The Trainer does not know this module, which drives its public attributes.
- A step runs the Trainer's own code (`Trainer.d_forward`, `g_forward`, which read nothing off the device). Batches are
  drawn on the GPU from a copy of the data there (`Trainer.batches`), with a generator there (`Trainer.batch_gen`).
- Two graphs, a plain step and a probe step, are captured at the first step (or `prepare()`), after a warm-up whose
  effects are all undone (weights, buffers, optimizer state and generator restored: it trains nothing). They work on
  the Trainer's own parameters, batch-norm buffers and optimizer state, in place, so graphs and eager steps interleave
  freely (the dashboard's slow-motion D-only or G-only steps: `step(d_updates)` with another count, `d_update`).
- The probe step is captured with the probe's hooks attached: the tensors they hold are the graph's own buffers, which
  each replay refills, and the ProbeRecord is then computed from them by probes.py as for an eager step. Grad norms read
  the gradients the captured backward wrote: the same record an eager step from the same state would make. (It is
  computed eagerly, ~190 small ops and ~25 copies to the host: on a GPU a probe step costs a few plain steps.)
- Fused Adam is captured with a tensor learning rate (the schedule writes it before each replay) and `found_inf`: a loss
  that is not finite raises a flag on the GPU, and from then on every update is skipped, with no check on the host.
- Each step's logged values go to a buffer on the GPU, read with one copy every `read_every` steps and at the end of
  `steps(n)` (`step()` is `steps(1)`: one read a step). Probe and sample steps read the GPU anyway.

What differs from the eager path (Trainer.step and Trainer.steps):
- Random numbers come from a generator on the GPU, seeded from the Trainer's CPU generator: the same seed gives the same
  run on the same GPU and torch, but not the run the eager path takes. Checkpoints are the stepper's state_dict, with
  both generators ("rng", "rng_device"), and load through it (capturing again): a resumed run continues as an
  uninterrupted one would (to the GPU's float rounding); either path's checkpoint loads into either.
- A divergence is found when the metrics are read: `steps(n)` returns the steps before the bad one and the next call raises
  Diverged (`step()` raises at once). Weights and optimizer state are the last good ones; batch-norm running statistics
  and the generator may have moved on with the steps queued behind the bad one. StepRecord.time_s: the host's clock
  when the step was queued, exact at each read.

Fallback: "auto" runs eager steps where graphs cannot run (no CUDA device, or the capture failed), says why in the
stepper's `acceleration` and logs it once; "on" raises instead. `uncaptured(trainer)` runs this module's step code
without capturing it, on any device: the CPU tests check it step for step against the eager Trainer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from typing import Any

import torch
from torch import Tensor

from gan_core.config import ConfigError
from gan_core.train.probes import Probe, ProbeRecord, grad_norms
from gan_core.train.records import D_KEYS, CheckpointError, Diverged, SampleRecord, StepRecord, StepResult
from gan_core.train.trainer import Trainer

log = logging.getLogger(__name__)

READ_EVERY = 256  # steps between reads of the metrics buffer (a probe or sample step reads the GPU anyway)
WARM_UP = 2  # eager runs of each step kind before capture: cuBLAS/cuDNN handles, workspaces, optimizer state
# The metrics buffer's columns: the D update's values (D_KEYS), J_G, the halt flag after the D updates, the halt flag after G.
_G, _HALT_D, _HALT = len(D_KEYS), len(D_KEYS) + 1, len(D_KEYS) + 2
_COLUMNS = len(D_KEYS) + 3
_CAPTURE_LOCK = threading.Lock()  # one capture at a time in a process (a torch rule); dashboard runs may be threads

_Queued = tuple[int, ProbeRecord | None, SampleRecord | None, float]  # a step whose values are still on the GPU; clock


class Accelerate(str, Enum):
    """How steps run on a CUDA GPU. The CPU always runs eager steps."""

    AUTO = "auto"  # CUDA graphs where they work, else eager steps (the stepper's `acceleration` says which, and why)
    OFF = "off"  # eager steps everywhere: each op launched from Python, as written
    ON = "on"  # CUDA graphs or an error

    @classmethod
    def parse(cls, value: Accelerate | str) -> Accelerate:
        try:
            return cls(str(value.value if isinstance(value, Enum) else value).strip().lower())
        except ValueError:
            raise ConfigError("accelerate", f"{value!r} is not one of: {', '.join(m.value for m in cls)}") from None


class AccelerationError(RuntimeError):
    """Accelerate.ON could not be honoured: the step could not be captured as a CUDA graph."""


def unavailable(device: torch.device) -> str | None:
    """Why CUDA graphs cannot run on `device` (None when they can)."""
    if device.type != "cuda":
        return f"CUDA graphs need a CUDA device, and this Trainer runs on the {device.type}"
    if not torch.cuda.is_available():
        return "no CUDA GPU is available"
    return None


def accelerate(trainer: Trainer, mode: Accelerate | str = Accelerate.AUTO) -> EagerSteps:
    """The stepper to train `trainer` with: its steps replayed as CUDA graphs (a GraphSteps) where they can run; else,
    with mode AUTO or OFF, the Trainer's own eager steps behind the same interface, saying why; mode ON refuses."""
    mode = Accelerate.parse(mode)
    if mode is Accelerate.OFF:
        return EagerSteps(trainer)
    why = unavailable(trainer.device)
    if why is None:
        return GraphSteps(trainer, mode)
    if mode is Accelerate.ON:
        raise ConfigError("accelerate", f"on: {why}; use auto (eager steps where graphs cannot run) or off")
    stepper = EagerSteps(trainer, f"eager: {why}")
    log.info("accelerate=%s: %s", mode.value, stepper.acceleration)
    return stepper


def uncaptured(trainer: Trainer) -> GraphSteps:
    """This module's step code on `trainer`, run eagerly instead of captured (any device): what the CPU tests check."""
    return GraphSteps(trainer, Accelerate.ON, capture=False)


def _seed_from(gen: torch.Generator) -> int:
    """A seed for the GPU's generator, drawn from the Trainer's CPU generator (so the run's seed fixes it)."""
    return int(torch.randint(2**62, (1,), generator=gen))


class EagerSteps:
    """The Trainer's own eager steps behind the stepper's interface: what `accelerate` gives where graphs do not run."""

    def __init__(self, trainer: Trainer, acceleration: str = "eager") -> None:
        self.trainer = trainer
        self.acceleration = acceleration  # what runs the steps, and why (for logs and the bench)

    def prepare(self) -> str:
        """Ready the steps (graphs: capture them now, not at the first step); returns `acceleration`."""
        return self.acceleration

    def step(self, d_updates: int | None = None) -> StepResult:
        return self.trainer.step(d_updates)

    def steps(self, n: int) -> list[StepResult]:
        return self.trainer.steps(n)

    def state_dict(self) -> dict[str, Any]:
        return self.trainer.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.trainer.load_state_dict(state)


class GraphSteps(EagerSteps):
    """A Trainer's steps replayed as CUDA graphs (or, with capture=False, the same code run eagerly)."""

    def __init__(self, trainer: Trainer, mode: Accelerate = Accelerate.ON, capture: bool = True) -> None:
        super().__init__(trainer, "cuda graphs (captured at the first step)" if capture
                         else "accelerated step code, run without capture")
        self.mode, self.capture = mode, capture
        self.fell_back = False  # the capture failed (mode AUTO): from then on, the Trainer's eager steps
        device = trainer.device
        if trainer.gen.device == device:
            self.gen = trainer.gen  # on the CPU: the Trainer's own generator, so steps match the eager ones exactly
        else:
            self.gen = torch.Generator(device=device)
            self.gen.manual_seed(_seed_from(trainer.gen))
        trainer.batches, trainer.batch_gen = trainer.data.to(device), self.gen
        self.read_every = READ_EVERY  # at most READ_EVERY: the rows of the buffer below
        self.tensor_lr = capture  # a float lr would be frozen into the graph at capture; eager steps can keep floats
        self.probe = Probe({"G": trainer.G, "D": trainer.D})  # its hooks' tensors are the probe graph's buffers
        self.params = {"D": list(trainer.D.parameters()), "G": list(trainer.G.parameters())}
        self.ring = torch.zeros(READ_EVERY, _COLUMNS, device=device)  # each step's logged values, until read
        self.cursor = torch.zeros(1, dtype=torch.long, device=device)  # the ring row the next step writes
        self.halt = torch.zeros((), device=device)  # 1 from the first non-finite loss on: fused Adam's found_inf
        self.groups = [g for opt in (trainer.opt_d, trainer.opt_g) for g in opt.param_groups]
        self.lrs = [torch.tensor(float(g["lr"]), device=device) for g in self.groups]  # float32, as fused Adam reads it
        self._lr_values: list[float | None] = [float(g["lr"]) for g in self.groups]
        self.graphs: dict[bool, Any] | None = None  # {probing: torch.cuda.CUDAGraph}
        self.capture_s = 0.0  # warm-up and capture time, the last time it ran
        self._probe_grads: dict[str, list[Tensor | None]] = {}  # the gradients the probe step's backward writes
        self._pending: Diverged | None = None  # a divergence steps(n) found after the steps it returned

    # -- checkpoints --------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The Trainer's checkpoint, and the GPU's generator ("rng_device") when it has one of its own."""
        state = self.trainer.state_dict()
        if self.gen is not self.trainer.gen:
            state["rng_device"] = self.gen.get_state()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Trainer.load_state_dict, then: its optimizers hold new state tensors, so the graphs are captured again."""
        self.trainer.load_state_dict(state)
        self._pending = None
        self.release()
        t = self.trainer
        self.groups = [g for opt in (t.opt_d, t.opt_g) for g in opt.param_groups]  # loading made new group dicts
        self._lr_values = [None] * len(self.groups)  # so write the learning rates again
        if self.gen is t.gen:
            return
        try:
            if "rng_device" in state:
                self.gen.set_state(state["rng_device"].cpu())
            else:  # an eager run's checkpoint: seed from its CPU generator, as a fresh accelerated run does
                self.gen.manual_seed(_seed_from(t.gen))
        except (TypeError, ValueError, RuntimeError, AttributeError) as err:
            raise CheckpointError(f"checkpoint's rng_device is not a generator state: {str(err).splitlines()[0]}") from None

    def release(self) -> None:
        """Drop the graphs and every tensor that points into their memory."""
        self.graphs = None
        self.probe.reset()
        self._probe_grads = {}
        self._clear_grads()
        self.ring.zero_()
        self.cursor.zero_()
        self.halt.zero_()

    # -- training -----------------------------------------------------------------------------------------------------
    def step(self, d_updates: int | None = None) -> StepResult:
        """One step, as Trainer.step: replayed, unless `d_updates` asks for another count of D updates than the config's
        (the dashboard's slow-motion steps), which is an eager Trainer step on the same state."""
        if d_updates in (None, self.trainer.config.d_steps):
            return self.steps(1)[0]
        self._raise_pending()
        return self.trainer.step(d_updates)

    def steps(self, n: int) -> list[StepResult]:
        """n steps, as Trainer.steps: queued on the GPU and read back every read_every steps. A divergence at step k
        returns the steps before k, and the next call raises Diverged (at once when k is the first)."""
        self._raise_pending()
        self.prepare()
        if self.fell_back:
            return self.trainer.steps(n)
        results, error = self._queue(n)
        if error is not None:
            if not results:
                raise error
            self._pending = error
        return results

    def _raise_pending(self) -> None:
        error, self._pending = self._pending, None
        if error is not None:
            raise error

    def _queue(self, n: int) -> tuple[list[StepResult], Diverged | None]:
        """n steps queued on the GPU, read back every read_every steps; stops at the first step whose loss diverged."""
        t = self.trainer
        cfg = t.config
        results: list[StepResult] = []
        queued: list[_Queued] = []
        start, base = time.perf_counter(), t.elapsed_s
        read_every = min(self.read_every, len(self.ring))  # the buffer holds READ_EVERY rows
        try:
            for _ in range(n):
                number = t.step_count + 1
                probing = number % cfg.probe_every == 0
                t.set_learning_rates(number)
                self._write_lrs()
                self._run(probing)
                t.step_count = number
                probe = self._probe_record(number) if probing else None
                samples = t.snapshot() if number % cfg.sample_every == 0 or number == cfg.steps else None
                queued.append((number, probe, samples, time.perf_counter()))
                if len(queued) == read_every:
                    error = self._read(queued, results, start, base)
                    if error is not None:
                        return results, error
            error = self._read(queued, results, start, base) if queued else None
            return results, error
        finally:
            if queued:  # interrupted (an exception): those steps ran but go unreported; the next call starts clean
                self.cursor.zero_()

    def _run(self, probing: bool) -> None:
        if self.graphs is not None:
            self.graphs[probing].replay()
            if probing:
                self.probe.refilled()
            return
        if probing:
            self.probe.reset()
        self._body(probing)
        if probing:
            self._probe_grads = self._grads()

    def _body(self, probing: bool, capturing: bool = False) -> None:
        """One whole step, with no read off the device: what the graphs hold."""
        t = self.trainer
        n_d = t.config.d_steps
        with self._optimizers(capturing):
            for i in range(n_d):
                # (1) Update D: maximize log D(x) + log(1 − D(G(z))), as Trainer.step does (or the configured objective)
                loss, values = t.d_forward(self.probe if probing and i == n_d - 1 else None)
                self._update(loss, "D")
            halt_d = self.halt.clone()
            # (2) Update G: maximize log D(G(z)) (or the configured objective)
            g_loss = t.g_forward(self.probe if probing else None)
            self._update(g_loss, "G")
            row = torch.cat([values, g_loss.detach().reshape(1), halt_d.reshape(1), self.halt.reshape(1)])
            self.ring.index_copy_(0, self.cursor, row.unsqueeze(0))
            self.cursor.add_(1)

    def _update(self, loss: Tensor, net: str) -> None:
        """Backpropagate into one network only and step its optimizer, which skips the step once `halt` is set."""
        torch.maximum(self.halt, loss.detach().isfinite().logical_not(), out=self.halt)
        t = self.trainer
        opt = t.opt_d if net == "D" else t.opt_g
        opt.zero_grad(set_to_none=True)
        loss.backward(inputs=self.params[net])  # G's loss leaves D's gradients alone: the probe reads D's own
        opt.step()

    @contextmanager
    def _optimizers(self, capturing: bool) -> Iterator[None]:
        """Adam as the graphs need it, for the length of one step's code: found_inf, tensor lrs, capturable."""
        t = self.trainer
        saved = [(g, g["lr"], g["capturable"]) for g in self.groups]
        for opt in (t.opt_d, t.opt_g):
            opt.found_inf = self.halt  # read by fused Adam: skip the update (and its step count) while it is 1
        try:
            for group, lr in zip(self.groups, self.lrs, strict=True):
                if self.tensor_lr:
                    group["lr"] = lr
                group["capturable"] = capturing  # only checked by Adam.step while capturing; fused Adam ignores it
            yield
        finally:
            for group, lr, capturable in saved:  # checkpoints keep plain floats and capturable=False
                group["lr"], group["capturable"] = lr, capturable
            for opt in (t.opt_d, t.opt_g):
                del opt.found_inf

    def _write_lrs(self) -> None:
        """Copy the schedule's learning rates into the tensors the graphs read (only when they changed)."""
        if not self.tensor_lr:
            return
        for i, (group, lr) in enumerate(zip(self.groups, self.lrs, strict=True)):
            value = float(group["lr"])
            if value != self._lr_values[i]:
                lr.fill_(value)
                self._lr_values[i] = value

    def _read(self, queued: list[_Queued], results: list[StepResult], start: float, base: float) -> Diverged | None:
        """Read the metrics (one copy, which waits for the queued steps) into StepResults; a diverged step ends it."""
        t = self.trainer
        rows = self.ring[:len(queued)].tolist()
        self.cursor.zero_()
        now = time.perf_counter()
        try:
            for i, ((number, probe, samples, clock), row) in enumerate(zip(queued, rows, strict=True)):
                if row[_HALT]:
                    self.halt.zero_()  # the next step tries again, as after an eager Diverged
                    t.step_count = number - 1
                    if not row[_HALT_D]:  # as eager: that step's D update was applied, and last_d shows it
                        t.last_d = dict(zip(D_KEYS, row[:len(D_KEYS)], strict=True))
                    return Diverged(number, "D loss" if row[_HALT_D] else "G loss")
                t.last_d = dict(zip(D_KEYS, row[:len(D_KEYS)], strict=True))
                t.elapsed_s = base + ((now if i == len(queued) - 1 else clock) - start)
                record = StepRecord(step=number, time_s=round(t.elapsed_s, 4), g_loss=row[_G], **t.last_d)
                results.append(StepResult(record, probe, samples))
            return None
        finally:
            queued.clear()

    def _probe_record(self, number: int) -> ProbeRecord:
        """The probe step's record, from the tensors its hooks hold and the gradients its backward wrote."""
        t = self.trainer
        for net, params in self.params.items():
            for p, grad in zip(params, self._probe_grads[net], strict=True):
                p.grad = grad
        grads = {"D": grad_norms(t.D), "G": grad_norms(t.G)}
        return ProbeRecord(number, grads, self.probe.layer_stats(), self.probe.batchnorm_stats())

    def _grads(self) -> dict[str, list[Tensor | None]]:
        return {net: [p.grad for p in params] for net, params in self.params.items()}

    def _clear_grads(self) -> None:
        for params in self.params.values():
            for p in params:
                p.grad = None

    # -- capture ------------------------------------------------------------------------------------------------------
    def prepare(self) -> str:
        """Capture the graphs now, not at the first step (once: not after a fallback, nor with capture=False); on
        failure "auto" goes on with eager steps (saying why, in one log line) and "on" raises. Returns `acceleration`."""
        if not self.capture or self.graphs is not None or self.fell_back:
            return self.acceleration
        try:
            self._capture()
        except Exception as err:
            self.release()
            why = f"CUDA graph capture failed: {type(err).__name__}: {(str(err).strip().splitlines() or [''])[0][:300]}"
            if self.mode is Accelerate.ON:
                raise AccelerationError(why) from err
            self.fell_back = True
            self.acceleration = f"eager: {why}"
            log.warning("accelerate=auto: %s; training goes on with eager steps", why)
            return self.acceleration
        self.acceleration = f"cuda graphs (warm-up and capture took {self.capture_s:.2f} s)"
        log.info("accelerate=%s: %s", self.mode.value, self.acceleration)
        return self.acceleration

    def _capture(self) -> None:
        start = time.perf_counter()
        device = self.trainer.device
        with _CAPTURE_LOCK, torch.cuda.device(device):
            stream = torch.cuda.Stream(device)  # warm-up and capture on one side stream, as torch's docs advise
            stream.wait_stream(torch.cuda.current_stream(device))
            graphs = {}
            with torch.cuda.stream(stream):  # restores the current stream even if a failed capture does not
                self.warm_up()
                rng = self.gen.get_state()
                for probing in (True, False):
                    graph = torch.cuda.CUDAGraph()
                    graph.register_generator_state(self.gen)  # a generator of our own must be registered
                    self._clear_grads()  # so the backward allocates the gradients inside the graph's memory
                    # thread_local: other dashboard runs may be using the GPU from their own threads meanwhile
                    with torch.cuda.graph(graph, stream=stream, capture_error_mode="thread_local"):
                        self._body(probing, capturing=True)
                    if probing:
                        self._probe_grads = self._grads()
                    graphs[probing] = graph
                self.gen.set_state(rng)  # capturing draws nothing, but make sure of it
            torch.cuda.current_stream(device).wait_stream(stream)
        self.graphs = graphs
        self._lr_values = [None] * len(self.groups)  # write the lrs before the first replay
        self.capture_s = time.perf_counter() - start

    def warm_up(self) -> None:
        """Run each step kind WARM_UP times eagerly, then undo everything they changed: the warm-up trains nothing."""
        t = self.trainer
        opts = (t.opt_d, t.opt_g)
        had_state = {id(p) for opt in opts for p, s in opt.state.items() if s}
        tensors = [*t.G.parameters(), *t.G.buffers(), *t.D.parameters(), *t.D.buffers(),
                   *(v for opt in opts for s in opt.state.values() for v in s.values() if isinstance(v, Tensor))]
        saved = [x.detach().clone() for x in tensors]
        rng = self.gen.get_state()
        try:
            for _ in range(WARM_UP):
                for probing in (False, True):
                    self.probe.reset()
                    self._body(probing)
        finally:
            with torch.no_grad():
                for x, value in zip(tensors, saved, strict=True):
                    x.copy_(value)
                for opt in opts:  # state the warm-up created: zeros and step 0 are exactly a fresh Adam's
                    for p, s in opt.state.items():
                        if id(p) not in had_state:
                            for v in s.values():
                                if isinstance(v, Tensor):
                                    v.zero_()
            self.gen.set_state(rng)
            self.release()  # no graphs yet: this drops what the warm-up left in the probe, the grads and the buffers
