"""Server memory with hostile uploads and checkpoint downloads, short enough for the suite.

The full measurement (the largest allowed checkpoint, the rerun-time target) is `python -m benchmarks.memory`; this
test uses a small run's checkpoint and asserts what must hold on any machine: every upload over the row cap is refused
with the one-line message, every download arrives whole, and the server keeps at most 150 MB more once they are done.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("websockets.asyncio.client", reason="websockets ≥ 13 (a Streamlit dependency) drives the sessions")

from benchmarks import memory  # after the skip: it imports websockets


@pytest.mark.timeout(400)
def test_refused_uploads_and_checkpoint_downloads_leave_the_servers_memory_bounded(tmp_path: Path) -> None:
    # a fresh thread for a fresh event loop: Playwright's sync API (the browser tests) leaves one running here
    with ThreadPoolExecutor(1) as pool:
        report = pool.submit(memory.run, 3, 3, 1, small=True, work=tmp_path).result()
    assert not report.errors, report.errors[:5]
    assert len(report.upload_alerts) == 3
    for alerts in report.upload_alerts:
        assert any(memory.REFUSAL in a and "\n" not in a for a in alerts), alerts
    assert report.downloaded_mb == [pytest.approx(report.checkpoint_mb, abs=1e-6)] * 3
    assert report.growth <= memory.MAX_GROWTH_MB, report.table()
