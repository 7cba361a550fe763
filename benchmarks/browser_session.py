"""One browser tab watching a Streamlit page, emulated with Streamlit's own websocket protocol (the classroom load
test opens thirty of them).

Why not 30 Chromium tabs: on 2 cores they would measure Chromium. What a browser does to the server is all in its
websocket: a `rerun_script` BackMsg when a page opens (page name, query string, widget states, the hashes of the large
messages it has cached), and, for every `AutoRerun` ForwardMsg (an `st.fragment(run_every=...)`), a fragment rerun of
that id every interval, whether or not the last one has finished (the frontend's setInterval). A `Session` does exactly
that, keeps the frontend's ForwardMsg cache (so `ref_hash` messages cost what they cost a browser), and fetches each
new image URL once over HTTP, as an <img> does. It sends no widget states but those of its own clicks: every widget
stays at its default, as for a student who only watches.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.NumberInput_pb2 import NumberInput
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

_STEP = re.compile(r"step ([\d,]+) of ([\d,]+)")  # the progress bar's text: step 1,234 of 5,000
_CHARTS = ("vega_lite_chart", "plotly_chart", "imgs")
_FRAGMENT_DONE = ForwardMsg.ScriptFinishedStatus.FINISHED_FRAGMENT_RUN_SUCCESSFULLY


@dataclass
class _Cached:
    data: bytes
    run_count: int
    fragment_id: str


@dataclass
class Session:
    """One browser tab on one page of the app, speaking the frontend's half of the protocol."""

    url: str  # http://host:port
    page: str  # url path of the page, "" for the default page
    query: str = ""  # the query string, without "?"
    fetch_media: bool = True
    cookie: str = ""  # the Cookie header its websocket sends: tabs of one browser send the same ("" : a client without)
    local_host: str | None = None  # the address it connects from ("127.0.0.2": another machine, as the server sees it)
    # False: never rerun a fragment on its timer, as a script that only answers would not (nor would it send one that
    # interrupts the full run its own click asked for)
    polls: bool = True
    # what it saw
    errors: list[str] = field(default_factory=list)  # exceptions shown, a lost connection, a cache miss, a broken image
    received: int = 0  # bytes
    fragment_runs: int = 0
    full_runs: int = 0
    updates: list[float] = field(default_factory=list)  # when a chart or image got new content (monotonic seconds)
    chart_updates: dict[str, list[float]] = field(default_factory=dict)  # the same, per chart (chart_name)
    steps: list[tuple[float, int]] = field(default_factory=list)  # (when, step) read from the progress bar
    headings: list[str] = field(default_factory=list)
    media: int = 0  # images fetched
    # each full run that finished: (when, the page's url path, the run in the address bar): what a follower shows
    shown: list[tuple[float, str, str]] = field(default_factory=list)
    # the last protocol events, oldest first: (when, what): the clue when a follower stays behind
    trace: collections.deque = field(default_factory=lambda: collections.deque(maxlen=2000))

    def __post_init__(self) -> None:
        self._ws = None
        self._page_hash = ""
        self._max_age = 2
        self._cache: dict[str, _Cached] = {}
        self._run_count = 0
        self._last: dict[str, str] = {}  # chart name -> content hash of what it drew last
        self._timers: dict[str, tuple[float, asyncio.Task]] = {}  # fragment id -> (interval, task)
        self._elements: dict[tuple[int, ...], object] = {}  # delta path -> Element, of the current full run
        self._seen_media: set[str] = set()
        self._idle = asyncio.Event()
        self._reader: asyncio.Task | None = None
        self._media_tasks: set[asyncio.Task] = set()
        self._pages: dict[str, str] = {}  # page script hash -> url path ("" for the default page)
        self.closed = False

    # -- connecting ------------------------------------------------------------------------------------------------
    async def open(self) -> None:
        """Connect and run the page, as a browser opening `url/page?query` does."""
        ws_url = self.url.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + "/_stcore/stream"
        extra = {"local_addr": (self.local_host, 0)} if self.local_host else {}
        self._ws = await connect(ws_url, subprotocols=["streamlit"], max_size=None, compression=None, ping_interval=None,
                                 additional_headers={"Cookie": self.cookie} if self.cookie else None, **extra)
        self._reader = asyncio.create_task(self._read())
        await self._rerun(page_name=self.page)

    async def close(self) -> None:
        self.closed = True
        for _, task in self._timers.values():
            task.cancel()
        self._timers.clear()
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        for task in list(self._media_tasks):
            task.cancel()

    async def wait_idle(self, timeout: float = 60.0) -> None:
        """Until the current script run has finished (the page is drawn)."""
        await asyncio.wait_for(self._idle.wait(), timeout)

    # -- what a user does --------------------------------------------------------------------------------------------
    def find(self, kind: str, label: str) -> object:
        """The widget of this kind ("button", "number_input"…) with this label on the page now (the actions below
        wait for a run in progress to draw it first)."""
        for element in reversed(list(self._elements.values())):
            if element.WhichOneof("type") == kind and getattr(element, kind).label == label:
                return getattr(element, kind)
        raise LookupError(f"no {kind} labelled {label!r} on the page (labels: {self._labels()})")

    def _labels(self) -> list[str]:
        return [getattr(e, e.WhichOneof("type")).label for e in self._elements.values()
                if hasattr(getattr(e, e.WhichOneof("type")), "label")]

    async def click(self, label: str, **numbers: float) -> None:
        """Press a button (a form's submit button sends the form's values with it: `numbers` by field label)."""
        await self.wait_idle()
        states = []
        for name, value in numbers.items():
            widget = self.find("number_input", name)
            state = WidgetState(id=widget.id)
            if widget.data_type == NumberInput.INT:
                state.int_value = int(value)
            else:
                state.double_value = float(value)
            states.append(state)
        states.append(WidgetState(id=self.find("button", label).id, trigger_value=True))
        await self._rerun(states=states)
        await self.wait_idle()

    async def type_text(self, label: str, value: str) -> None:
        """Type into a text field and press Enter (its on_change runs)."""
        await self.wait_idle()
        widget = self.find("text_input", label)
        await self._rerun(states=[WidgetState(id=widget.id, string_value=value)])
        await self.wait_idle()

    async def choose(self, label: str, option: str, timeout: float = 60.0) -> None:
        """Pick an option of a radio (its value is the option's text, as the frontend sends it)."""
        await self.wait_idle(timeout)
        widget = self.find("radio", label)
        if option not in widget.options:
            raise LookupError(f"{option!r} is not an option of {label!r} (options: {list(widget.options)})")
        await self._rerun(states=[WidgetState(id=widget.id, string_value=option)])
        await self.wait_idle(timeout)

    async def goto(self, page: str, query: str = "") -> None:
        """Click a page in the navigation (url path, "" for the default page), as the sidebar's links do."""
        by_path = {path: page_hash for page_hash, path in self._pages.items()}
        if page not in by_path:
            raise LookupError(f"no page {page!r} in the navigation (pages: {sorted(by_path)})")
        self.page, self.query, self._page_hash = page, query, by_path[page]
        await self._rerun()
        await self.wait_idle()

    # -- the protocol ------------------------------------------------------------------------------------------------
    async def _rerun(self, *, states: list[WidgetState] = (), page_name: str = "", fragment_id: str = "") -> None:
        msg = BackMsg()
        client = msg.rerun_script
        client.query_string = self.query
        client.page_script_hash = self._page_hash
        client.page_name = page_name if not self._page_hash else ""
        client.widget_states.widgets.extend(states)
        client.fragment_id = fragment_id
        client.is_auto_rerun = bool(fragment_id)
        client.cached_message_hashes.extend(self._cache)
        client.context_info.timezone = "UTC"
        client.context_info.locale = "en-GB"
        client.context_info.url = f"{self.url}/{self.page}"
        client.context_info.color_scheme = "light"
        if not fragment_id:
            self._idle.clear()
        self.trace.append((time.monotonic(), f"send {'fragment ' + fragment_id[:6] if fragment_id else 'full'} "
                                             f"page={self._pages.get(self._page_hash, self._page_hash[:6])!r}"))
        try:
            await self._ws.send(msg.SerializeToString())
        except ConnectionClosed:
            if not self.closed:
                self.errors.append("connection closed by the server")
                self.closed = True

    async def _every(self, fragment_id: str, interval: float) -> None:
        while True:  # the frontend's setInterval: it does not wait for the previous rerun to finish
            await asyncio.sleep(interval)
            await self._rerun(fragment_id=fragment_id)

    async def _read(self) -> None:
        try:
            async for data in self._ws:
                self.received += len(data)
                self._handle(data, time.monotonic())
        except ConnectionClosed:
            pass
        except Exception as err:  # noqa: BLE001 - a bug in the emulation is reported like an app error
            self.errors.append(f"client error: {err!r}")
        finally:
            if not self.closed:
                self.errors.append("connection closed by the server")
                self.closed = True
            self._idle.set()

    def _handle(self, data: bytes, now: float) -> None:
        msg = ForwardMsg()
        msg.ParseFromString(data)
        kind = msg.WhichOneof("type")
        if kind == "ref_hash":  # a large message it already holds: the frontend reads its own copy
            cached = self._cache.get(msg.ref_hash)
            if cached is None:
                self.errors.append(f"ForwardMsg cache miss {msg.ref_hash}")
                return
            cached.run_count = self._run_count
            full = ForwardMsg()
            full.ParseFromString(cached.data)
            full.metadata.CopyFrom(msg.metadata)
            full.hash = msg.ref_hash
            msg, kind = full, "delta"
        elif msg.metadata.cacheable and msg.hash and msg.hash not in self._cache:
            self._cache[msg.hash] = _Cached(data, self._run_count, msg.delta.fragment_id)

        if kind in ("navigation", "new_session", "script_finished"):
            detail = {"navigation": lambda: repr(self._pages.get(msg.navigation.page_script_hash, "?")),
                      "new_session": lambda: f"fragments={list(msg.metadata.run.fragment_ids)}",
                      "script_finished": lambda: ForwardMsg.ScriptFinishedStatus.Name(msg.script_finished)}[kind]()
            self.trace.append((now, f"got {kind} {detail}"))
        if kind == "navigation":  # the page the app resolved (new_session names the entry script, dashboard.py)
            self._page_hash = msg.navigation.page_script_hash
            self._pages = {p.page_script_hash: "" if p.is_default else p.url_pathname for p in msg.navigation.app_pages}
            self.page = self._pages.get(self._page_hash, self.page)  # st.switch_page moves a tab, as a link does
        elif kind == "page_info_changed":  # the address bar: st.query_params, or st.switch_page's
            self.query = msg.page_info_changed.query_string
        elif kind == "new_session":
            self._max_age = msg.new_session.config.max_cached_message_age or 2
            if not msg.metadata.run.fragment_ids:  # a full run: the frontend drops its timers and elements
                # one the server began (a follower woken by ui.wake) is a run in progress too: what a user does next
                # waits for its page (a browser shows the old elements meanwhile; this emulation has none to show)
                self._idle.clear()
                for _, task in self._timers.values():
                    task.cancel()
                self._timers.clear()
                self._elements.clear()
        elif kind == "delta":
            self._delta(msg, now)
        elif kind == "auto_rerun":
            fragment_id, interval = msg.auto_rerun.fragment_id, msg.auto_rerun.interval
            if self.polls and fragment_id and self._timers.get(fragment_id, (None,))[0] != interval:
                if fragment_id in self._timers:
                    self._timers[fragment_id][1].cancel()
                self._timers[fragment_id] = (interval, asyncio.create_task(self._every(fragment_id, interval)))
        elif kind == "stop_auto_rerun":
            for fragment_id in msg.stop_auto_rerun.fragment_ids:
                timer = self._timers.pop(fragment_id, None)
                if timer is not None:
                    timer[1].cancel()
        elif kind == "script_finished":
            status = msg.script_finished
            if status == ForwardMsg.ScriptFinishedStatus.FINISHED_WITH_COMPILE_ERROR:
                self.errors.append("the script did not compile")
            if status == _FRAGMENT_DONE:
                self.fragment_runs += 1
            elif status == ForwardMsg.ScriptFinishedStatus.FINISHED_SUCCESSFULLY:
                self.full_runs += 1
                self.shown.append((now, self.page, urllib.parse.parse_qs(self.query).get("run", [""])[0]))
                self._idle.set()
            if status != ForwardMsg.ScriptFinishedStatus.FINISHED_EARLY_FOR_RERUN:
                self._expire(list(msg.metadata.run.fragment_ids))
        elif kind == "session_event" and msg.session_event.HasField("script_compilation_exception"):
            self.errors.append(f"script compilation error: {msg.session_event.script_compilation_exception.message}")
        elif kind == "page_not_found":
            self.errors.append(f"page not found: {self.page!r}")

    def _expire(self, fragment_ids: list[str]) -> None:
        """The frontend's ForwardMsgCache.incrementRunCount: forget messages unused for max_cached_message_age runs."""
        self._run_count += 1
        for key, cached in list(self._cache.items()):
            if fragment_ids and cached.fragment_id not in fragment_ids:
                continue
            if self._run_count - cached.run_count > self._max_age:
                del self._cache[key]

    def _delta(self, msg: ForwardMsg, now: float) -> None:
        if msg.delta.WhichOneof("type") != "new_element":
            return
        element = msg.delta.new_element
        kind = element.WhichOneof("type")
        path = tuple(msg.metadata.delta_path)
        self._elements[path] = element
        if kind == "exception":
            self.errors.append(f"exception: {element.exception.type}: {element.exception.message}"[:300])
        elif kind == "progress":
            found = _STEP.search(element.progress.text)
            if found:
                self.steps.append((now, int(found.group(1).replace(",", ""))))
        elif kind == "heading":
            self.headings.append(element.heading.body)
        elif kind in _CHARTS:
            content = msg.hash
            name = chart_name(element, path)
            if self._last.get(name) != content:
                self._last[name] = content
                self.updates.append(now)
                self.chart_updates.setdefault(name, []).append(now)
            if kind == "imgs" and self.fetch_media:
                for image in element.imgs.imgs:
                    if image.url and not image.url.startswith("data:") and image.url not in self._seen_media:
                        self._seen_media.add(image.url)
                        task = asyncio.create_task(self._fetch(image.url))
                        self._media_tasks.add(task)
                        task.add_done_callback(self._media_tasks.discard)

    async def _fetch(self, url: str) -> None:
        """What an <img> does with a new src."""
        full = urllib.parse.urljoin(self.url + "/", url)

        def get() -> int:
            with urllib.request.urlopen(full, timeout=30) as response:
                return len(response.read())

        try:
            self.received += await asyncio.to_thread(get)
            self.media += 1
        except (OSError, urllib.error.URLError) as err:
            if not self.closed:
                self.errors.append(f"image {url}: {err}")


def chart_name(element: object, path: tuple[int, ...]) -> str:
    """Which chart an element is, stable across refreshes (a delta path moves when something above appears).

    A Vega-Lite chart is named by its series (the colour scale's domain: its spec does not change with the data),
    the page's one image grid by its kind; anything else by its place.
    """
    kind = element.WhichOneof("type")
    if kind == "vega_lite_chart":
        try:
            layers = json.loads(element.vega_lite_chart.spec).get("layer", [])
            domain = next(layer["encoding"]["color"]["scale"]["domain"] for layer in layers
                          if "color" in layer.get("encoding", {}))
            return "chart of " + ", ".join(domain)
        except (ValueError, KeyError, StopIteration, TypeError):
            return f"chart {hash(element.vega_lite_chart.spec) & 0xFFFF:04x}"
    if kind == "imgs":
        return "image grid"
    return f"{kind} at {'.'.join(map(str, path))}"
