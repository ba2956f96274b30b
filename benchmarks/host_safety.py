"""Host safety figures for RELIABILITY.md: a host call while the run store is write-locked,
a full recording queue, and an engine call against Retry-After: 3600.

    python benchmarks/host_safety.py [--old]   # --old: only the first figure (old code waits ~30 s)

Prints one line per figure. Wall-clock numbers: run on an idle machine for stable values.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tg_bridge
from tg_bridge.store import RunStore


def locked_store_calls(n: int, **kw) -> tuple[float, object]:
    path = str(Path(tempfile.mkdtemp()) / "runs.db")
    RunStore(path).runs()

    @tg_bridge.optimizable(store=path, **kw)
    def echo(i: int) -> int:
        return i

    echo(-1)  # warm-up on the unlocked store: the first capture imports the adapters
    if hasattr(echo, "flush"):
        echo.flush(60)
    lock = sqlite3.connect(path, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    started = time.perf_counter()
    for i in range(n):
        echo(i)
    elapsed = time.perf_counter() - started
    lock.execute("COMMIT")
    return elapsed, echo


async def retry_after_call() -> tuple[float, int, str]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.support.fault_server import FaultServer, error
    from tg_bridge.engines.openai_engine import OpenAIEngine

    with FaultServer(default=error(429, retry_after=3600)) as server:
        engine = OpenAIEngine("m", base_url=server.base_url, timeout=1, max_retries=4)
        started = time.perf_counter()
        try:
            await engine.acomplete([{"role": "user", "content": "hi"}])
            outcome = "answered"
        except tg_bridge.TgBridgeError as exc:
            outcome = type(exc).__name__
        return time.perf_counter() - started, len(server.requests), outcome


def main() -> None:
    elapsed, _ = locked_store_calls(1)
    print(f"1 host call while another connection holds the store's write lock: {elapsed * 1000:.2f} ms")
    if "--old" in sys.argv:
        return
    elapsed, fn = locked_store_calls(10_000, max_pending=1_000)
    print(f"10,000 host calls, locked store, max_pending=1,000: {elapsed:.3f} s total "
          f"({elapsed / 10_000 * 1e6:.0f} us/call), dropped={fn.recorder.dropped}")
    fn.flush(60)
    print(f"  after the lock is released: stored={fn.recorder.recorded}, "
          f"stored+dropped={fn.recorder.recorded + fn.recorder.dropped}")
    elapsed, requests, outcome = asyncio.run(retry_after_call())
    print(f"429 + Retry-After: 3600, timeout=1, max_retries=4 (deadline 120 s, cap 30 s): "
          f"{outcome} after {elapsed:.3f} s and {requests} request(s)")


if __name__ == "__main__":
    main()
