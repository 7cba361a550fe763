"""Server memory under a hostile classroom: uploads the app refuses and downloads of the largest checkpoint.

    python -m benchmarks.memory [--uploaders 3] [--downloaders 3] [--watchers 2] [--small]

Starts `streamlit run dashboard.py` on a free port with a runs folder holding one run of the largest networks the form
allows (trained one step by the CLI: its checkpoint is the largest a student can make). Then, at once:
- uploaders: each opens the Training page, opens "New run", picks the CSV upload and uploads the largest file the app
  accepts in size and still refuses: MAX_UPLOAD_BYTES of one-point rows, over the row cap. The page must answer with
  the one-line refusal naming the limit;
- downloaders: each opens the run's page and fetches its checkpoint link, as a browser does, to the last byte;
- watchers (other students) rerun the Training page over and over; each rerun's time is recorded.
The server's RSS is sampled throughout. Exits 1 if a target is missed: every upload refused with the message, every
download complete, RSS growth ≤ 150 MB once the sessions have closed, every watcher's rerun ≤ 1 s.
`--small` trains the ring-bce preset instead (seconds, not minutes): tests/load/test_memory.py runs that.
Sessions are benchmarks.browser_session.Session: Streamlit's websocket protocol, as the classroom load test speaks it.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

from benchmarks.browser_session import Session
from benchmarks.classroom import rss_mb
from gan_core.config import MAX_PARAMETERS, TrainConfig, weight_counts
from gan_core.data import MAX_CSV_POINTS
from gan_core.runs.uploads import MAX_UPLOAD_BYTES
from support.server import REPO_ROOT, local_server

PAGE = "training"
UPLOAD_CHOICE = "my 2D points (upload a CSV)"  # app_pages/training.py UPLOAD
REFUSAL = f"more than {MAX_CSV_POINTS:,} points"
# the largest networks the form allows (tests/test_config.py checks they sit just under MAX_PARAMETERS)
LARGEST = {"z_dim": 512, "g_width": 1873, "g_depth": 2, "d_width": 1998, "d_depth": 2}
MAX_GROWTH_MB = 150.0
MAX_RERUN_S = 1.0


def refused_csv() -> bytes:
    """The largest upload the size limit lets through, refused by the row cap: 5.2 M rows of "1,2". (Streamlit compares
    the whole multipart request with the limit, so a file of exactly the limit is refused with HTTP 413: leave room.)"""
    return b"1,2\n" * ((MAX_UPLOAD_BYTES - 4096) // 4)


def train_run(runs_dir: Path, *, small: bool) -> str:
    """One run of the largest allowed networks (or ring-bce's), trained one step by the CLI; its id."""
    sets = [] if small else [x for k, v in LARGEST.items() for x in ("--set", f"{k}={v}")]
    run_id = "small" if small else "largest"
    subprocess.run([sys.executable, "-m", "gan_core", "train", "--preset", "ring-bce", *sets, "--steps", "1",
                    "--out", str(runs_dir / run_id)], cwd=REPO_ROOT, check=True, capture_output=True, timeout=900)
    return run_id


class Student(Session):
    """A Session that also uploads files (the file_uploader's protocol) and reads the page's alerts and links."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.session_id = ""
        self._file_urls: dict[str, asyncio.Future] = {}

    def _handle(self, data: bytes, now: float) -> None:
        msg = ForwardMsg()
        msg.ParseFromString(data)
        kind = msg.WhichOneof("type")
        if kind == "new_session" and msg.new_session.initialize.session_id:
            self.session_id = msg.new_session.initialize.session_id
        elif kind == "file_urls_response":
            waiting = self._file_urls.pop(msg.file_urls_response.response_id, None)
            if waiting is not None and not waiting.done():
                waiting.set_result(msg.file_urls_response)
        super()._handle(data, now)

    def alerts(self) -> list[str]:
        """The page's messages as a reader sees them (without markdown's escapes)."""
        return [re.sub(r"\\(.)", r"\1", e.alert.body) for e in self._elements.values() if e.WhichOneof("type") == "alert"]

    def link(self, label: str) -> str:
        return self.find("link_button", label).url

    async def rerun_page(self, states: list[WidgetState] = ()) -> float:
        """A full rerun of the page, as any click causes; seconds until the page is drawn."""
        start = time.monotonic()
        await self._rerun(states=list(states))
        await self.wait_idle()
        return time.monotonic() - start

    async def upload_points(self, name: str, data: bytes) -> list[str]:
        """New run → the CSV choice → upload `data` as `name`; the alerts the page then shows."""
        await self.click("New run")
        choice = WidgetState(id=self.find("selectbox", "Preset").id, string_value=UPLOAD_CHOICE)
        await self.rerun_page([choice])
        uploader = self.find("file_uploader", "CSV of 2D points: two numeric columns (x, y), an optional header row")
        request = BackMsg()
        request.file_urls_request.request_id = uuid.uuid4().hex
        request.file_urls_request.file_names.append(name)
        request.file_urls_request.session_id = self.session_id
        answer = asyncio.get_running_loop().create_future()
        self._file_urls[request.file_urls_request.request_id] = answer
        await self._ws.send(request.SerializeToString())
        urls = (await asyncio.wait_for(answer, 30)).file_urls[0]
        await asyncio.to_thread(_put_file, self.url, urls.upload_url, name, data)
        state = WidgetState(id=uploader.id)
        info = state.file_uploader_state_value.uploaded_file_info.add()
        info.name, info.size, info.file_id = name, len(data), urls.file_id
        info.file_urls.CopyFrom(urls)
        await self.rerun_page([choice, state])
        return self.alerts()


def _put_file(url: str, upload_url: str, name: str, data: bytes) -> None:
    """The browser's upload: a multipart PUT with the XSRF cookie (the health check sets it) echoed in a header."""
    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=30) as page:
        cookies = [c.split(";")[0] for c in page.headers.get_all("Set-Cookie") or []]
    token = next((c.split("=", 1)[1] for c in cookies if c.startswith("_streamlit_xsrf=")), "")
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            f"Content-Type: text/csv\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(urllib.parse.urljoin(url + "/", upload_url.lstrip("/")), data=body, method="PUT",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}",
                                              "X-Xsrftoken": token, "Cookie": "; ".join(cookies)})
    with urllib.request.urlopen(request, timeout=120) as r:
        r.read()


def _download(url: str, path: str) -> int:
    """Fetch a link to the last byte, as a browser saving it; the bytes received."""
    got = 0
    with urllib.request.urlopen(urllib.parse.urljoin(url + "/", path), timeout=300) as r:
        while chunk := r.read(1 << 20):
            got += len(chunk)
    return got


@dataclass
class Report:
    checkpoint_mb: float
    rss_before: float = 0.0
    rss_peak: float = 0.0
    rss_after: float = 0.0
    upload_alerts: list[list[str]] = field(default_factory=list)
    downloaded_mb: list[float] = field(default_factory=list)
    load_s: float = 0.0
    reruns: list[float] = field(default_factory=list)
    reruns_quiet: list[float] = field(default_factory=list)  # the same watchers' reruns before the load: the machine's pace
    errors: list[str] = field(default_factory=list)

    @property
    def growth(self) -> float:
        return self.rss_after - self.rss_before

    def failures(self) -> list[str]:
        out = list(self.errors)
        out += [f"upload {i} not refused with {REFUSAL!r}: {a}" for i, a in enumerate(self.upload_alerts)
                if not any(REFUSAL in x for x in a)]
        out += [f"download {i}: {mb:.1f} of {self.checkpoint_mb:.1f} MB" for i, mb in enumerate(self.downloaded_mb)
                if abs(mb - self.checkpoint_mb) > 1e-6]
        if not self.growth <= MAX_GROWTH_MB:
            out.append(f"server RSS grew {self.growth:.0f} MB (target ≤ {MAX_GROWTH_MB:.0f})")
        if self.reruns and max(self.reruns) > MAX_RERUN_S:
            out.append(f"slowest watcher rerun {max(self.reruns):.2f} s (target ≤ {MAX_RERUN_S:.0f} s)")
        return out

    def table(self) -> str:
        r = sorted(self.reruns) or [float("nan")]
        return "\n".join([
            f"checkpoint            {self.checkpoint_mb:.1f} MB",
            f"server RSS            before {self.rss_before:.0f} MB, peak {self.rss_peak:.0f} MB, "
            f"after {self.rss_after:.0f} MB (growth {self.growth:+.0f} MB)",
            f"uploads refused       {sum(any(REFUSAL in x for x in a) for a in self.upload_alerts)} of "
            f"{len(self.upload_alerts)}: {self.upload_alerts[0][0] if self.upload_alerts and self.upload_alerts[0] else '-'}",
            f"downloads             {len(self.downloaded_mb)} × {self.checkpoint_mb:.1f} MB, all done in {self.load_s:.1f} s",
            f"watcher page reruns   {len(self.reruns)}: median {statistics.median(r):.2f} s, max {max(r):.2f} s "
            f"(before the load: median {statistics.median(self.reruns_quiet or [float('nan')]):.2f} s)",
        ])


async def measure(url: str, pid: int | None, run_id: str, checkpoint_mb: float, uploaders: int, downloaders: int,
                  watchers: int) -> Report:
    report = Report(checkpoint_mb)
    query = f"run={run_id}"
    load = [Student(url, PAGE, query, fetch_media=False) for _ in range(uploaders + downloaders)]
    watching = [Student(url, PAGE, query, fetch_media=False) for _ in range(watchers)]
    for s in [*load, *watching]:  # one at a time: the first visit imports what the page needs
        await s.open()
        await s.wait_idle(120)
    for _ in range(3):
        for s in watching:
            report.reruns_quiet.append(await s.rerun_page())
    report.rss_before = report.rss_peak = rss_mb(pid)
    data = refused_csv()
    done = asyncio.Event()

    async def sample_rss() -> None:
        while not done.is_set():
            report.rss_peak = max(report.rss_peak, rss_mb(pid))
            await asyncio.sleep(0.1)

    async def watch(s: Student) -> None:
        while not done.is_set():
            report.reruns.append(await s.rerun_page())
            await asyncio.sleep(0.2)

    async def upload(s: Student) -> None:
        report.upload_alerts.append(await s.upload_points("points.csv", data))

    async def download(s: Student) -> None:
        report.downloaded_mb.append(await asyncio.to_thread(_download, url, s.link("Checkpoint (.pt)")) / 1e6)

    background = [asyncio.create_task(sample_rss()), *(asyncio.create_task(watch(s)) for s in watching)]
    start = time.monotonic()
    await asyncio.gather(*(upload(s) for s in load[:uploaders]), *(download(s) for s in load[uploaders:]))
    report.load_s = time.monotonic() - start
    done.set()
    await asyncio.gather(*background)
    for s in load:
        await s.close()
    await asyncio.sleep(3.0)  # Streamlit drops a closed session's uploads and media a moment after it goes
    report.rss_after = rss_mb(pid)
    for s in watching:
        await s.close()
    report.errors = [f"session {i}: {e}" for i, s in enumerate([*load, *watching]) for e in s.errors
                     if e != "connection closed by the server"]
    return report


def run(uploaders: int = 3, downloaders: int = 3, watchers: int = 2, *, small: bool = False,
        work: Path | None = None) -> Report:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(work or tmp)
        runs = base / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        run_id = train_run(runs, small=small)
        checkpoint_mb = (runs / run_id / "checkpoint.pt").stat().st_size / 1e6
        with local_server(runs, base / "server.log") as (url, pid):
            return asyncio.run(measure(url, pid, run_id, checkpoint_mb, uploaders, downloaders, watchers))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploaders", type=int, default=3)
    parser.add_argument("--downloaders", type=int, default=3)
    parser.add_argument("--watchers", type=int, default=2)
    parser.add_argument("--small", action="store_true", help="ring-bce's checkpoint instead of the largest")
    args = parser.parse_args(argv)
    if not args.small:
        g, d = weight_counts(TrainConfig.from_dict({"dataset": "ring", **LARGEST}))
        print(f"largest allowed networks: G {g:,} and D {d:,} weights (limit {MAX_PARAMETERS:,} each)")
    report = run(args.uploaders, args.downloaders, args.watchers, small=args.small)
    print(report.table())
    failures = report.failures()
    for failure in failures:
        print(f"MISSED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
