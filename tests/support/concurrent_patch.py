"""Host calls racing a multi-prompt patch: count the calls that saw a mix of versions.

:func:`race` runs sync reader threads and one thread running an async reader. Meanwhile
the calling thread applies and reverts a patch ``cycles`` times. Each reader call returns
the version it saw of each patched prompt, for example ``("A", "B")``. A call is *mixed*
when those versions differ.

There is no timing in it. A barrier starts everyone together. After each apply and each
revert, the writer waits until the readers have made new calls (a condition on a
counter), so calls run around every write by construction. The readers stop on an event.
The one timeout (60 s) only guards a hung reader. A tiny switch interval
(:func:`fast_switching`) makes thread switches between the writes of a patch likely.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["Race", "fast_switching", "race"]

Versions = tuple[str, ...]


@dataclasses.dataclass
class Race:
    """What the readers saw: one entry per host call, and what they raised."""

    seen: list[Versions]
    errors: list[BaseException]

    @property
    def mixed(self) -> list[Versions]:
        return [v for v in self.seen if len(set(v)) != 1]

    @property
    def versions(self) -> set[str]:
        return {x for v in self.seen for x in v}


@contextmanager
def fast_switching() -> Iterator[None]:
    """Switch threads every microsecond while the block runs (restored after)."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def race(
    call: Callable[[], Versions],
    acall: Callable[[], Awaitable[Versions]],
    apply: Callable[[], Any],
    revert: Callable[[Any], None],
    *,
    cycles: int,
    readers: int = 4,
) -> Race:
    """Run ``readers - 1`` threads looping ``call()`` and one thread whose event loop loops
    ``await acall()``. Meanwhile the calling thread runs ``revert(apply())`` ``cycles``
    times. It returns when every reader has stopped. A reader's exception stops that
    reader and is reported in :attr:`Race.errors`."""
    start = threading.Barrier(readers + 1)
    stop = threading.Event()
    progress = threading.Condition()
    seen: list[Versions] = []
    errors: list[BaseException] = []

    def record(version: Versions) -> None:
        with progress:
            seen.append(version)
            progress.notify_all()

    def reader() -> None:
        start.wait()
        try:
            while not stop.is_set():
                record(call())
        except BaseException as exc:  # reported to the test
            errors.append(exc)

    async def async_reader() -> None:
        try:
            while not stop.is_set():
                record(await acall())
                await asyncio.sleep(0)  # let the loop breathe between calls
        except BaseException as exc:  # reported to the test
            errors.append(exc)

    def calls_after(count: int) -> None:
        # the writer goes on only after the readers made more calls: they ran during the
        # writes by construction, not by timing (the timeout only guards a hung reader)
        with progress:
            if not progress.wait_for(lambda: len(seen) > count or errors, timeout=60):
                raise AssertionError("the readers made no call in 60 s")

    threads = [threading.Thread(target=reader) for _ in range(readers - 1)]
    threads.append(threading.Thread(target=lambda: (start.wait(), asyncio.run(async_reader()))))
    for thread in threads:
        thread.start()
    start.wait()
    try:
        for _ in range(cycles):
            applied = apply()
            calls_after(len(seen))
            revert(applied)
            calls_after(len(seen))
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    return Race(seen=list(seen), errors=list(errors))
