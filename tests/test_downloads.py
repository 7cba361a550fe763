"""Run files offered as links into Streamlit's static folder: hard links (no copy), one per file, unguessable."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote

import pytest

from ui import downloads


@pytest.fixture
def static(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "static" / "downloads"
    monkeypatch.setattr(downloads, "PUBLISHED", folder)
    return folder


def _served(url: str, static: Path) -> Path:
    assert url.startswith(downloads.URL_PREFIX + "/")
    return static / unquote(url.removeprefix(downloads.URL_PREFIX + "/"))


def test_a_file_is_linked_not_copied_and_a_newer_version_replaces_the_older_link(tmp_path: Path, static: Path) -> None:
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    checkpoint = run / "checkpoint.pt"
    checkpoint.write_bytes(b"old")
    url = downloads.published_url(checkpoint, "r1-checkpoint.pt")
    assert url is not None and downloads.published_url(checkpoint, "r1-checkpoint.pt") == url  # cheap on reruns
    first = _served(url, static)
    assert first.name == "r1-checkpoint.pt" and os.path.samefile(first, checkpoint)
    assert (static / ".gitignore").read_text() == "*\n"

    new = run / "checkpoint.tmp"  # as the engine writes it: a new file, then os.replace
    new.write_bytes(b"newer")
    os.replace(new, checkpoint)
    url2 = downloads.published_url(checkpoint, "r1-checkpoint.pt")
    assert url2 is not None and url2 != url
    assert _served(url2, static).read_bytes() == b"newer" and not first.exists()
    assert len([p for p in static.iterdir() if p.is_dir()]) == 1


def test_missing_or_too_big_files_get_no_link(tmp_path: Path, static: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert downloads.published_url(tmp_path / "nope.pt", "x.pt") is None
    big = tmp_path / "big.pt"
    big.write_bytes(b"12345")
    monkeypatch.setattr(downloads, "MAX_STATIC_BYTES", 4)
    assert downloads.published_url(big, "big.pt") is None
    assert not static.exists()


def test_links_nobody_showed_for_an_hour_are_removed(tmp_path: Path, static: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("1")
    b.write_text("2")
    old = _served(downloads.published_url(a, "a.csv"), static)
    hour_ago = old.parent.stat().st_mtime - downloads.KEEP_S - 1
    os.utime(old.parent, (hour_ago, hour_ago))
    kept = _served(downloads.published_url(b, "b.csv"), static)
    assert kept.exists() and not old.parent.exists()
