"""Run a coroutine to completion from sync code, even inside a running event loop.

Notebooks already run a loop, so ``asyncio.run`` would fail there; in that case the coroutine
runs on a fresh loop in a helper thread (with the caller's contextvars copied) and the caller
blocks until it finishes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run_sync"]

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Block until ``coro`` finishes and return its result (exceptions propagate)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    ctx = contextvars.copy_context()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(ctx.run, asyncio.run, coro).result()
