"""Build a figure or chart once per run version and share it across every browser: the one cache every page draws through.

Thirty students watching one run cost one build per refresh, not thirty. Keys name what was built and from which data,
e.g. (run id, snapshot version, "loss"): a snapshot's version changes whenever its data do, so a key never serves stale
data, and the least recently used entries are dropped past _CACHE_SIZE.

Live Vega-Lite charts go through `vega_chart`, which also serialises their data once (Arrow bytes) for every browser.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import streamlit as st

from ui.figures.images import png_bytes

DATASET = "values"  # the name arrow_spec gives a chart's data

_cache: OrderedDict[Hashable, Any] = OrderedDict()
_cache_lock = threading.Lock()
_building: dict[Hashable, threading.Event] = {}  # keys being built now, and the event their builder sets when done
_CACHE_SIZE = 256
BUILD_WAIT_S = 120.0  # a browser waiting for another's build of the same key builds it itself after this


def cached(key: Hashable, build: Callable[[], Any]) -> Any:
    """`build()` once per key, e.g. (run, version, what); built objects are only read afterwards.

    Built outside the lock, so a slow figure never holds up another browser's cache hits; but once per key: thirty
    followers arriving at once on a page nobody drew yet wait for one build instead of running thirty (measured: a
    cold page's first draw, thirty times over, left followers on a second app process more than 30 s behind)."""
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        building = _building.get(key)
        if building is None:
            building = _building[key] = threading.Event()
            mine = True
        else:
            mine = False
    if not mine:
        building.wait(BUILD_WAIT_S)
        with _cache_lock:
            if key in _cache:
                return _cache[key]
        return build()  # its builder failed (or was cut short): build it here
    try:
        value = build()
        with _cache_lock:
            _cache[key] = value
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
        return value
    finally:
        with _cache_lock:
            _building.pop(key, None)
        building.set()


def arrow_spec(spec: Mapping[str, Any], data: pd.DataFrame) -> dict[str, Any]:
    """`spec` with `data` attached as a named dataset of Arrow IPC bytes, for `st.vega_lite_chart(spec=...)`.

    Streamlit passes a dataset that is already bytes through untouched; a DataFrame it converts on every call, which
    with ten browsers open was a third of the server's time (py-spy). The spec itself is unchanged, so a keyed chart
    still swaps its data in place.
    """
    table = pa.Table.from_pandas(data, preserve_index=False, nthreads=1)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return {**spec, "data": {"name": DATASET}, "datasets": {DATASET: sink.getvalue().to_pybytes()}}


def vega_chart(name: Hashable, build: Callable[[], tuple[dict, pd.DataFrame]], *, key: str) -> None:
    """A keyed Vega-Lite chart built by `build()` -> (spec, data) once per `name` and shared by every browser.

    Vega-Lite, not plotly, for charts that change every second: a keyed Vega chart updates in place, while
    st.plotly_chart derives its identity from the data and remounts the chart in every browser on each refresh. The
    data go to Streamlit already serialised (arrow_spec): a classroom costs one serialisation, not thirty.
    """
    spec = cached(name, lambda: arrow_spec(*build()))
    st.vega_lite_chart(spec=spec, key=key, width="stretch")


def image_url(image: np.ndarray | bytes) -> str:
    """A picture (a uint8 image array, or PNG bytes) as a PNG data URL for st.image, encoded once per content and sent
    inside the page's message to every browser.

    Given an array, st.image encodes it in every browser's script run and files a copy per browser with Streamlit's
    media file manager, behind one lock: at a slide change 120 followers' runs queued on that lock (py-spy on the
    server, benchmarks/classroom_follow.py --sessions 120), and followers arrived many seconds late.
    """
    if isinstance(image, bytes):
        digest = hashlib.blake2b(image, digest_size=16).hexdigest()
        return cached(("image_url", digest), lambda: _data_url(image))
    array = np.ascontiguousarray(image)
    digest = hashlib.blake2b(array.tobytes() + str(array.shape).encode(), digest_size=16).hexdigest()
    return cached(("image_url", digest), lambda: _data_url(png_bytes(array)))


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
