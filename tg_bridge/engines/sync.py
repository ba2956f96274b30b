"""Run a coroutine to completion from sync code, even inside a running event loop.

Notebooks already run a loop, so ``asyncio.run`` would fail there; in that case the coroutine
runs on a fresh loop in a helper thread (with the caller's contextvars copied) and the caller
blocks until it finishes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import logging
import threading
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

__all__ = ["blocking", "on_loop_close", "run_sync"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# Cleanups (e.g. closing an HTTP client pool) for loops that run_sync created and will close.
_cleanups: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, list[Callable[[], Awaitable[Any]]]
] = weakref.WeakKeyDictionary()
_cleanups_lock = threading.Lock()


def on_loop_close(cleanup: Callable[[], Awaitable[Any]]) -> None:
    """Await ``cleanup()`` before the running loop is closed, when run_sync owns that loop.

    Resources bound to a loop (an httpx pool) must be closed inside it; otherwise they are
    torn down at garbage collection and log "Event loop is closed". Loops owned by the caller
    are the caller's to clean (e.g. ``await engine.aclose()``).
    """
    loop = asyncio.get_running_loop()
    with _cleanups_lock:
        _cleanups.setdefault(loop, []).append(cleanup)


async def _with_cleanups(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return await coro
    finally:
        with _cleanups_lock:
            cleanups = _cleanups.pop(asyncio.get_running_loop(), [])
        for cleanup in cleanups:
            try:
                await cleanup()
            except Exception:  # cleanup must never mask the result
                log.debug("loop cleanup failed", exc_info=True)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Block until ``coro`` finishes and return its result (exceptions propagate)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_with_cleanups(coro))
    ctx = contextvars.copy_context()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(ctx.run, asyncio.run, _with_cleanups(coro)).result()


_P = ParamSpec("_P")
_R = TypeVar("_R")


def blocking(fn: Callable[_P, Coroutine[Any, Any, _R]]) -> Callable[_P, _R]:
    """The blocking twin of an ``async def`` entry point, with exactly its signature (for
    type checkers and ``inspect.signature``): calls :func:`run_sync` on it, so it also works
    inside a running event loop (a notebook)."""

    @functools.wraps(fn)
    def twin(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        return run_sync(fn(*args, **kwargs))

    twin.__name__ = twin.__qualname__ = fn.__name__.removeprefix("a")
    twin.__doc__ = (f"Blocking :func:`{fn.__name__}` (same arguments and result; works inside a"
                    f" running event loop, e.g. a notebook).\n\n{fn.__doc__ or ''}")
    return twin
