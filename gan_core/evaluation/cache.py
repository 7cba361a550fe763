"""Small models trained once and kept: in this process (a memo) and on disk (one file per settings).

The classifier and the VAE share this: look in the memo, else load the file, else train and write it. A file that
cannot be used is retrained and replaced; a disk that cannot be written only costs the next process a retrain.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

M = TypeVar("M")
Info = dict[str, Any]


class ModelCache(Generic[M]):
    def __init__(self) -> None:
        self._memo: dict[Path, tuple[M, Info]] = {}
        self._lock = threading.Lock()  # callers in parallel threads asking for the same model must not train it twice

    def get(self, path: Path, load: Callable[[Path], tuple[M, Info]], train: Callable[[], tuple[M, Info]] | None,
            save: Callable[[M, Info], None], extra: Info | None = None) -> tuple[M, Info] | None:
        """(model, info) with info["source"] "memory", "disk" or "trained", plus path, note and `extra`.

        `train` None: only look (None when neither the memo nor a usable file has it). `save` gets the trained
        model and its info, which include train_seconds.
        """
        with self._lock:
            if path in self._memo:
                model, info = self._memo[path]
                return model, {**info, "source": "memory"}
            note = ""
            loaded: M | None = None
            try:
                loaded, info = load(path)
                info["source"] = "disk"
            except FileNotFoundError:
                pass
            except Exception as exc:  # noqa: BLE001 - corrupt, truncated, other settings, an older format: train anew
                note = f"replaced unusable cache file ({type(exc).__name__}: {exc})"
            if loaded is None:
                if train is None:
                    return None
                start = time.perf_counter()
                loaded, info = train()
                info.update(train_seconds=time.perf_counter() - start, source="trained")
                try:
                    save(loaded, info)
                except OSError as exc:  # a read-only home folder must not stop the caller
                    note = f"could not write the cache file ({exc})"
            info.update(path=str(path), note=note, **(extra or {}))
            self._memo[path] = (loaded, info)
            return loaded, dict(info)

    def clear(self) -> None:
        """Forget the models held in this process (the disk cache stays)."""
        with self._lock:
            self._memo.clear()
