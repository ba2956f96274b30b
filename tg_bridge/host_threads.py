"""Blocking host calls (a sync app's ``invoke``) in worker threads, as many as run at once.

``asyncio.to_thread`` uses the loop's default executor, which Python sizes to
``min(32, cpu_count + 4)`` workers: 6 on a 2-core machine, so a batch of 8 examples of a sync
app ran 6 at a time and the last 2 waited a whole app run. The host's calls wait on the
network, not the CPU, so their number in flight must follow the batch, not the core count.
This pool grows on demand up to :data:`MAX_HOST_THREADS` (idle workers cost nothing).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["MAX_HOST_THREADS", "run_in_host_thread"]

T = TypeVar("T")

#: blocking host calls in flight at once across the process (the engines' own limit,
#: ``configure(max_concurrency=...)``, still bounds tg_bridge's LLM calls)
MAX_HOST_THREADS = 64

_pool: concurrent.futures.ThreadPoolExecutor | None = None
_lock = threading.Lock()


def _executor() -> concurrent.futures.ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=MAX_HOST_THREADS, thread_name_prefix="tg_bridge-host")
        return _pool


async def run_in_host_thread(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``await asyncio.to_thread(fn, *args, **kwargs)`` on the host-call pool: the context
    is copied (a capture() around the call sees the host's spans), exceptions propagate."""
    ctx = contextvars.copy_context()
    call = functools.partial(ctx.run, fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_executor(), call)
