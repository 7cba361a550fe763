"""gan_core.classroom.recent: one read of the room's store per process per moment, shared by every session, and a
process's own write seen at once."""

from __future__ import annotations

import threading

from gan_core.classroom.recent import Recent


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_read_is_kept_for_fresh_s_per_key_then_read_again():
    clock, reads = Clock(), []
    recent: Recent[int] = Recent(0.5, clock)

    def read(key: str) -> int:
        reads.append(key)
        return len(reads)

    assert recent.get("a", lambda: read("a")) == 1
    clock.now += 0.4
    assert recent.get("a", lambda: read("a")) == 1 and reads == ["a"]  # the same moment: no second read
    assert recent.get("b", lambda: read("b")) == 2  # another key: its own read
    clock.now += 0.2
    assert recent.get("a", lambda: read("a")) == 3  # 0.6 s old: read again
    clock.now -= 60  # a wall clock set back: never trusted as fresh
    assert recent.get("a", lambda: read("a")) == 4


def test_this_processs_write_is_seen_at_once_and_a_read_begun_before_it_is_not_kept():
    clock = Clock()
    recent: Recent[str] = Recent(10.0, clock)
    assert recent.get("q", lambda: "before") == "before"
    with recent.writing(_Transaction()) as cursor:
        assert cursor == "cursor"
    assert recent.get("q", lambda: "after") == "after"  # forgotten by the write

    began, finish = threading.Event(), threading.Event()

    def slow_read() -> str:  # a read that saw the store before another thread's write
        began.set()
        finish.wait(5)
        return "stale"

    reader = threading.Thread(target=lambda: recent.get("r", slow_read))
    reader.start()
    began.wait(5)
    recent.forget()  # the write lands while the read is on its way
    finish.set()
    reader.join(5)
    assert recent.get("r", lambda: "fresh") == "fresh"  # the stale answer was not kept


class _Transaction:
    def __enter__(self) -> str:
        return "cursor"

    def __exit__(self, *exc: object) -> None:
        return None
