"""User uploads kept beside the runs: a CSV of 2D points becomes a file the `points` dataset can read.

The browser sends a file name and bytes. Neither is trusted: the name is reduced to a sanitized stem (it never picks the
folder), the bytes are size-capped and parsed once here, so a bad file is refused at upload time with the line at fault,
not minutes later inside a training worker.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from pathlib import Path

from gan_core.config import ConfigError, clip
from gan_core.data import load_points_csv
from gan_core.runs.folder import atomic_write_bytes, default_runs_dir, sanitize_name

UPLOADS_DIR = "uploads"
# 20 MiB ("20 MB" to Streamlit, whose server.maxUploadSize in .streamlit/config.toml must equal it: Streamlit holds the
# whole upload in memory before this check runs). Room for MAX_CSV_POINTS rows of two 8-digit numbers.
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MB = 1024 * 1024  # Streamlit's "MB", used in messages so they match its own
_REFUSALS_KEPT = 64  # refused contents remembered: a rerun with the same refused file is not parsed again
_refused: dict[str, ConfigError] = {}  # digest -> the loader's error (naming the saved file), oldest first
_HASH_CHARS = 12  # 48 bits of SHA-256: distinct contents get distinct names in practice


def save_points_upload(filename: str, data: bytes, runs_dir: Path | None = None) -> Path:
    """Save an uploaded CSV of 2D points as `<runs_dir>/uploads/<stem>-<hash>.csv` and return its path.

    The same bytes always land on the same path, so re-saving on every Streamlit rerun is cheap and harmless.
    Raises ConfigError("points_csv", ...) if the file is too big or is not two numeric columns; nothing is left behind.
    """
    shown = _display_name(filename)
    if len(data) > MAX_UPLOAD_BYTES:
        raise ConfigError("points_csv", f"{shown} is {len(data) / MB:.1f} MB; the limit is {MAX_UPLOAD_BYTES / MB:.0f} MB")
    folder = Path(runs_dir if runs_dir is not None else default_runs_dir()) / UPLOADS_DIR
    digest = hashlib.sha256(data).hexdigest()[:_HASH_CHARS]
    path = folder / f"{_safe_stem(filename)}-{digest}.csv"
    if path.is_file() and path.stat().st_size == len(data):
        return path  # saved and validated before: only valid uploads are kept
    err = _refused.get(digest)
    if err is None:
        folder.mkdir(parents=True, exist_ok=True)
        # checked under a name of its own, renamed once valid: the check above trusts any file at `path`, and the same
        # file uploaded by several browsers at once must not be taken as valid while another one is still reading it
        checking = folder / f".{path.stem}.{uuid.uuid4().hex}.part"
        atomic_write_bytes(checking, data)
        try:
            load_points_csv(checking)
        except BaseException as caught:
            checking.unlink(missing_ok=True)
            if not isinstance(caught, ConfigError):
                raise
            err = _remember(digest, caught, checking.name)
        else:
            os.replace(checking, path)
            return path
    # the loader names the saved file; the user knows their own file name
    raise ConfigError(err.field, str(err).removeprefix(f"{err.field}: ").replace(_SAVED_NAME, shown)) from None


_SAVED_NAME = "\0saved\0"  # stands for the saved file's name in a remembered error


def _remember(digest: str, err: ConfigError, saved_name: str) -> ConfigError:
    """Keep a refused content's error (the Training page reruns on every click while the file stays selected)."""
    generic = ConfigError(err.field, str(err).removeprefix(f"{err.field}: ").replace(saved_name, _SAVED_NAME))
    _refused[digest] = generic
    while len(_refused) > _REFUSALS_KEPT:
        _refused.pop(next(iter(_refused)))
    return generic


def _display_name(filename: str) -> str:
    """The last path component of what the browser sent, for messages only: printable, on one line, not too long."""
    name = re.split(r"[\\/]", filename)[-1].strip()
    name = clip("".join(c if c.isprintable() else ascii(c)[1:-1] for c in name))
    return name or "the uploaded file"


def _safe_stem(filename: str) -> str:
    """`../My Points (1).CSV` -> `my-points-1`; a name with nothing usable -> `points`."""
    base = re.split(r"[\\/]", filename)[-1]
    stem = base[: -len(".csv")] if base.lower().endswith(".csv") else base
    try:
        return sanitize_name(stem)[:40].strip("-_") or "points"
    except ConfigError:
        return "points"
