"""One shared limit on LLM calls in flight, per event loop.

asyncio semaphores belong to one loop, so the limit is kept per running loop (weakly, so a
closed loop's semaphore goes away). ``configure(max_concurrency=N)`` takes effect for loops
that have not made a call yet and for any loop once the size changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import AsyncIterator

__all__ = ["SlotTimeout", "concurrency_slot"]


class SlotTimeout(Exception):
    """No slot became free within the time allowed (internal; engines turn it into a typed
    deadline error)."""

_lock = threading.Lock()
_semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[int, asyncio.Semaphore]] = (
    weakref.WeakKeyDictionary()
)


def _semaphore(limit: int) -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    with _lock:
        entry = _semaphores.get(loop)
        if entry is None or entry[0] != limit:
            entry = (limit, asyncio.Semaphore(limit))
            _semaphores[loop] = entry
        return entry[1]


@contextlib.asynccontextmanager
async def concurrency_slot(limit: int, timeout: float | None = None) -> AsyncIterator[None]:
    """Hold one of ``limit`` slots of the running loop while the body runs.

    ``timeout`` bounds the wait for a free slot (None: wait as long as it takes); past it
    :class:`SlotTimeout` is raised and no slot is held.
    """
    semaphore = _semaphore(limit)
    if timeout is None:
        await semaphore.acquire()
    else:
        try:
            await asyncio.wait_for(semaphore.acquire(), max(timeout, 0.0))
        except asyncio.TimeoutError:
            raise SlotTimeout(f"no free slot within {timeout:g}s") from None
    try:
        yield
    finally:
        semaphore.release()
