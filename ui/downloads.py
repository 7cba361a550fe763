"""A run's large files (checkpoint, metrics) streamed from disk by Streamlit's static file route, never held in memory.

`st.download_button` keeps what it serves in the server's memory, a callable's bytes too (the media file manager holds
them per click and per session): one click on the largest checkpoint the form allowed added 1–1.9 GB to the server.
Streamlit's static serving (`server.enableStaticServing` in .streamlit/config.toml) streams `static/` beside the entry
script from disk in chunks. So a file is published there as a hard link (no copy, no extra disk while the run keeps
it) under a name nobody can guess, and the page shows a plain link. When a link cannot be made (the runs folder is on
another disk, or the file is over Streamlit's static limit) the page gives the file's path and the CLI command instead.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import shutil
import time
from pathlib import Path
from urllib.parse import quote

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"  # Streamlit serves <entry script's folder>/static
PUBLISHED = STATIC_DIR / "downloads"
URL_PREFIX = "app/static/downloads"  # where Streamlit mounts the static folder, relative to the app's base URL
MAX_STATIC_BYTES = 200 * 1024 * 1024  # Streamlit answers 404 for a bigger static file (MAX_APP_STATIC_FILE_SIZE)
KEEP_S = 3600.0  # a link no page has shown for this long is removed (a deleted run's link would keep its file alive)
_SECRET = secrets.token_bytes(16)  # per server: links are unguessable and die with the server that made them


def published_url(path: Path, name: str) -> str | None:
    """A URL (relative to the app) that streams `path`'s current contents as `name`, or None when it cannot be served.

    One link per `name` at a time: a newer version of the file replaces the older link, so the links never keep more
    than one old checkpoint of a run on disk. Calling it on every rerun is cheap: a stat, and a hard link when the file
    has changed."""
    try:
        stat = path.stat()
    except OSError:
        return None
    if stat.st_size > MAX_STATIC_BYTES:
        return None
    version = f"{path.resolve()}\0{stat.st_ino}\0{stat.st_mtime_ns}\0{stat.st_size}".encode()
    token = hmac.new(_SECRET, version, hashlib.sha256).hexdigest()[:32]
    target = PUBLISHED / token / name
    try:
        if target.is_file():
            os.utime(target.parent)  # still shown: keep it past the sweep
        else:
            _publish(path, target)
    except OSError:  # another disk (no hard link across devices), a read-only app folder: the page says where it is
        return None
    return f"{URL_PREFIX}/{token}/{quote(name)}"


def _publish(path: Path, target: Path) -> None:
    PUBLISHED.mkdir(parents=True, exist_ok=True)
    ignore = PUBLISHED / ".gitignore"
    if not ignore.is_file():
        ignore.write_text("*\n")  # links made while serving from a checkout are not project files
    _sweep(target.name)
    target.parent.mkdir(exist_ok=True)
    try:
        os.link(path, target)
    except OSError:
        shutil.rmtree(target.parent, ignore_errors=True)
        raise


def _sweep(name: str) -> None:
    """Remove the older link of this file and any link nobody has shown for KEEP_S (a download under way keeps
    reading: an open file outlives its name)."""
    now = time.time()
    for folder in PUBLISHED.iterdir():
        if not folder.is_dir():
            continue
        try:
            stale = now - folder.stat().st_mtime > KEEP_S
        except OSError:
            continue
        if stale or (folder / name).exists():
            shutil.rmtree(folder, ignore_errors=True)
