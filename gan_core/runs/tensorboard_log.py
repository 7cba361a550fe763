"""TensorBoard event files in each run folder, so `tensorboard --logdir runs/` shows every run beside our own pages:
losses and D(x), D(G(z)) at every step, a picture of the samples at every sample snapshot.

Written through torch.utils.tensorboard by the run folder itself (RunStore.append_metrics and save_samples), so runs
trained by the CLI and by dashboard workers both get them. Optional: without the tensorboard package training is the
same and one info line says so; torch.utils.tensorboard is imported at the first write, never at import (~0.5 s).
A resumed run purges what an earlier session wrote after its checkpoint, so TensorBoard shows no step twice.
The events are a copy for outside tools: a failure to write them is logged once and never stops a run.
"""

from __future__ import annotations

import functools
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from gan_core import pictures
from gan_core.train.records import SampleRecord, StepRecord

log = logging.getLogger(__name__)

EVENTS_GLOB = "events.out.tfevents.*"  # the file names SummaryWriter gives its event files
# metrics.csv column → TensorBoard tag; the prefix groups them into cards (one for losses, one for D's outputs)
SCALAR_TAGS = {"d_loss": "loss/d", "g_loss": "loss/g", "gp": "loss/gp", "d_real": "D/real", "d_fake": "D/fake"}
SAMPLES_TAG = "samples"
GRID_SAMPLES = 64  # images: the first 64 fixed-noise samples, an 8×8 grid (the writer's checksum is pure Python: keep it small)
PICTURE_SIZE = 160  # 2D: pixels a side of the scatter picture
QUEUE = 1000  # events the writer's thread may hold, so a step never waits for it between flushes
FLUSH_SECONDS = 30  # the writer's own flush; RunStore flushes it with metrics.csv, at least every second while training
# The 2D picture's palette, in the dashboard's colours (ui/style.py: FAKE_FILL, REAL_FILL, FAKE_COLOR): D's verdict in
# five shades from "fake" (light purple) through white (0.5) to "real" (light green), then the samples' dots (purple).
# Flat areas of a few colours make a small PNG, quick to encode and to checksum.
SHADES = 5
PALETTE = np.vstack([np.linspace([229, 212, 239], [255, 255, 255], 3), np.linspace([255, 255, 255], [217, 240, 211], 3)[1:],
                     [[118, 42, 131]]]).round().astype(np.uint8)
DOT = SHADES  # the dots' index in PALETTE


@functools.cache
def summary_writer_class() -> Any:
    """torch.utils.tensorboard.SummaryWriter, or None (once logged) when the tensorboard package is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: PLC0415 - lazy: importing it costs ~0.5 s
    except ImportError as err:
        log.info("TensorBoard event files are not written (pip install tensorboard to get them): %s", err)
        return None
    return SummaryWriter


class EventLog:
    """One run folder's event files. Nothing touches the disk (or imports TensorBoard) until the first write, whose
    step is where an earlier session's events are cut: a resume writes first the step after its checkpoint."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._writer: Any = None
        self._off = False  # no TensorBoard, or writing failed once: stay quiet for the rest of this run

    def add_metrics(self, record: StepRecord) -> None:
        if self._open(record.step) is None:
            return
        from torch.utils.tensorboard.summary import Summary  # noqa: PLC0415 - imported by _open already

        # one event for the whole row: an add_scalar per value costs four times as much (each event is checksummed)
        self._write(record.step, [Summary.Value(tag=tag, simple_value=v) for column, tag in SCALAR_TAGS.items()
                                  if math.isfinite(v := float(getattr(record, column)))])

    def add_samples(self, record: SampleRecord) -> None:
        if self._open(record.step) is None:
            return
        if record.samples.ndim == 4:
            pixels, palette = sample_grid(record.samples), None
        elif record.samples.ndim == 2 and record.samples.shape[1] == 2:
            pixels, palette = scatter_picture(record), PALETTE
        else:
            return
        from torch.utils.tensorboard.summary import Summary  # noqa: PLC0415 - imported by _open already

        # our own PNG, not add_image's: that one converts to float, resizes and always writes RGB, several times the
        # bytes for a grey grid, and every byte goes through the writer's pure-Python checksum
        colorspace = 3 if palette is not None or pixels.ndim == 3 else 1  # a palette picture decodes to RGB
        image = Summary.Image(height=pixels.shape[0], width=pixels.shape[1], colorspace=colorspace,
                              encoded_image_string=pictures.png_bytes(pixels, palette))
        self._write(record.step, [Summary.Value(tag=SAMPLES_TAG, image=image)])

    def _write(self, step: int, values: list[Any]) -> None:
        from torch.utils.tensorboard.summary import Summary  # noqa: PLC0415 - imported by _open already

        writer = self._writer
        # _get_file_writer() is what add_scalar and add_image themselves write through
        self._guard(lambda: writer._get_file_writer().add_summary(Summary(value=values), step))

    def flush(self) -> None:
        if self._writer is not None:
            self._guard(self._writer.flush)

    def close(self) -> None:
        """Flush and close; a later write opens a new event file (whose purge then finds nothing to drop)."""
        writer, self._writer = self._writer, None
        if writer is not None:
            self._guard(writer.close)

    def _open(self, step: int) -> Any:
        if self._writer is None and not self._off:
            cls = summary_writer_class()
            if cls is None:
                self._off = True
                return None
            earlier = next(self.folder.glob(EVENTS_GLOB), None) is not None
            try:
                # purge_step: TensorBoard drops what earlier files hold at this step and after (written past the
                # checkpoint this session resumed from, so trained again now)
                self._writer = cls(str(self.folder), purge_step=step if earlier else None, max_queue=QUEUE,
                                   flush_secs=FLUSH_SECONDS)
            except Exception as err:  # noqa: BLE001 - a copy for outside tools: any failure only turns it off
                self._fail(err)
        return self._writer

    def _guard(self, write: Any) -> None:
        if self._off:
            return
        try:
            write()
        except Exception as err:  # noqa: BLE001 - a full disk, a closed writer: the events stop, training goes on
            self._fail(err)

    def _fail(self, err: Exception) -> None:
        """A full disk, a read-only folder: the run's own files report it (and stop the run); the events just stop."""
        log.warning("TensorBoard events for %s stop here: %s", self.folder, err)
        self._off, writer, self._writer = True, self._writer, None
        if writer is not None:
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - already failing: nothing more to say
                pass


def sample_grid(samples: np.ndarray, columns: int = 8) -> np.ndarray:
    """Images (n, C, H, W) in [0, 1]: the first GRID_SAMPLES as one uint8 grid, `columns` a row, on white lines;
    (H', W') for grey, (H', W', C) otherwise."""
    return pictures.tile(samples[:GRID_SAMPLES], columns, pad=1, pad_value=1.0)


def scatter_picture(record: SampleRecord, size: int = PICTURE_SIZE) -> np.ndarray:
    """2D samples as a (size, size) picture of PALETTE indices, without axes: a dot per sample over D's verdict across
    the record's extent (green where D says real, purple where fake), or over white around the samples when the record
    has no field."""
    extent = record.extent if record.extent is not None else pictures.fit_extent(record.samples)
    picture = np.full((size, size), SHADES // 2, np.uint8)  # white: D undecided, or not drawn
    if record.field is not None and record.field.size:
        field = np.nan_to_num(record.field.astype(np.float64))
        low, high = float(field.min()), float(field.max())
        if low < 0 or high > 1:  # a critic's raw scores (WGAN), not probabilities: shade its range
            field = (field - low) / (high - low) if high > low else np.zeros_like(field)
        shade = np.round(field[::-1] * (SHADES - 1)).astype(np.uint8)  # the field's rows run up, a picture's down
        picture = shade[np.arange(size) * field.shape[0] // size][:, np.arange(size) * field.shape[1] // size]
    picture[pictures.dot_pixels(record.samples, extent, size)] = DOT
    return picture
