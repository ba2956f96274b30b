"""Blocking host calls run as many at once as the batch asks (issue 14): the default
executor of ``asyncio.to_thread`` holds min(32, cores + 4) workers, so a batch of a sync app
ran a few at a time on a small machine. Counted with a barrier, not a clock."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tg_bridge.host_threads import MAX_HOST_THREADS, run_in_host_thread

#: more than the default executor ever holds (32), fewer than the host pool
N = 40


async def test_host_calls_all_run_at_once():
    assert MAX_HOST_THREADS >= N
    barrier = threading.Barrier(N, timeout=60)  # a deadlock guard: breaks if any is queued

    def blocking_call(i: int) -> int:
        barrier.wait()
        return i

    assert await asyncio.gather(*(run_in_host_thread(blocking_call, i) for i in range(N))) \
        == list(range(N))


async def test_host_call_sees_the_callers_context_and_raises_its_errors():
    import contextvars

    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    var.set("caller")
    assert await run_in_host_thread(var.get) == "caller"

    def boom() -> None:
        raise ValueError("from the host")

    with pytest.raises(ValueError, match="from the host"):
        await run_in_host_thread(boom)


async def test_sync_langchain_targets_run_at_once():
    pytest.importorskip("langchain_core")
    from langchain_core.runnables import RunnableLambda
    from tg_bridge_langchain.runner import run_target

    barrier = threading.Barrier(N, timeout=60)

    def step(inputs: dict) -> str:
        barrier.wait()
        return f"done {inputs['i']}"

    target = RunnableLambda(step)
    outputs = await asyncio.gather(*(run_target(target, {"i": i}) for i in range(N)))
    assert outputs == [f"done {i}" for i in range(N)]
