"""probes.jsonl: a run's probe records on disk, one JSON object a line, so the lessons' pictures survive a restart.

A line is the ProbeRecord with its dataclass field names: numbers as JSON numbers (NaN and ±inf as Python's json writes
them), an activation kind by its value, and each numpy array (a histogram, a batch-norm statistic per channel) as the
base64 of its little-endian float32 bytes, the dtype the probes make, so it reads back exactly, e.g.
{"step":10,"grad_norms":{"G":{"block 1":0.05,…}},"layers":[{"net":"G",…,"hist":"AAAAAAAAQEA…"}],"batchnorm":[…]}.
Base64 rather than lists of numbers, by measurement on a digits record (3 batch-norm layers, 2,272 numbers): 14 kB
against 25 kB a line, about 0.2 ms against 0.9 ms to read (a restart reads every record of every run) and 0.2 ms
against 2.2 ms to write (one probe step in 10 of a 9 ms training step).

The file is bounded like the manager's memory (state.py keeps PROBE_CAPACITY records, thinned): of a run's
steps // probe_every probe records only every `stride`-th is written, the smallest power of 2 that leaves at most
PROBE_CAPACITY, plus the last one a training session saw (RunStore.close). These are the records the manager's thinned
history keeps of a run trained in one go, so a restart draws it as before.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import numpy as np

from gan_core.config import Activation, TrainConfig
from gan_core.train.probes import BatchNormStats, LayerStats, ProbeRecord

PROBES_FILE = "probes.jsonl"
PROBE_CAPACITY = 300  # probe records kept of a run, in memory and in its file (up to twice that after resumes)


def stride(config: TrainConfig) -> int:
    """Write every stride-th probe record: the smallest power of 2 that leaves at most PROBE_CAPACITY of the run's."""
    count = config.steps // config.probe_every
    return 1 if count <= PROBE_CAPACITY else 2 ** math.ceil(math.log2(count / PROBE_CAPACITY))


def kept(step: int, config: TrainConfig) -> bool:
    """Whether the probe record of `step` is written: the 1st, (1 + stride)th, … of the run, as history.Thinned keeps."""
    return (step // config.probe_every - 1) % stride(config) == 0


def encode(record: ProbeRecord) -> str:
    """One line of probes.jsonl (with its newline)."""
    layers = [{"net": s.net, "layer": s.layer, "kind": s.kind.value, "dead_fraction": s.dead_fraction,
               "saturated_fraction": s.saturated_fraction, "mean": s.mean, "std": s.std, "hist": _text(s.hist)}
              for s in record.layers]
    batchnorm = [{"net": s.net, "layer": s.layer, **{k: _text(getattr(s, k)) for k in _BN_ARRAYS},
                  **{k: _text(getattr(s, k)) for k in _BN_LEARNED if getattr(s, k) is not None}}
                 for s in record.batchnorm]
    return json.dumps({"step": int(record.step), "grad_norms": record.grad_norms, "layers": layers,
                       "batchnorm": batchnorm}, separators=(",", ":")) + "\n"


def decode(line: bytes | str) -> ProbeRecord:
    """A ProbeRecord from one line; one of folder.DAMAGED (ValueError, KeyError, TypeError, OverflowError...) when the
    line is not one."""
    values = json.loads(line)
    if not isinstance(values, dict):
        raise TypeError("not a JSON object")
    grads = {str(net): {str(k): float(v) for k, v in layers.items()} for net, layers in values["grad_norms"].items()}
    layers = tuple(LayerStats(str(d["net"]), str(d["layer"]), Activation(d["kind"]), float(d["dead_fraction"]),
                              float(d["saturated_fraction"]), float(d["mean"]), float(d["std"]), _array(d["hist"]))
                   for d in values["layers"])
    batchnorm = tuple(BatchNormStats(str(d["net"]), str(d["layer"]), *(_array(d[k]) for k in _BN_ARRAYS),
                                     *(_array(d[k]) if k in d else None for k in _BN_LEARNED))
                      for d in values["batchnorm"])
    return ProbeRecord(int(values["step"]), grads, layers, batchnorm)


_BN_ARRAYS = ("batch_mean", "batch_var", "running_mean", "running_var", "hist_in", "hist_out")  # BatchNormStats' order
_BN_LEARNED = ("gamma", "beta")  # then these, absent from records written before they were kept
_FLOAT32 = np.dtype("<f4")


def _text(array: np.ndarray) -> str:
    """A 1-D array as the base64 of its float32 bytes."""
    return base64.b64encode(np.asarray(array, dtype=_FLOAT32).tobytes()).decode("ascii")


def _array(text: Any) -> np.ndarray:
    if not isinstance(text, str):
        raise TypeError("an array is not a base64 string")
    return np.frombuffer(base64.b64decode(text, validate=True), dtype=_FLOAT32).astype(np.float32)
