"""An OpenAIEngine for fault-server tests whose "hang" timeouts do not depend on the clock.

A real per-attempt timeout races normal replies: on a loaded machine an ordinary answer can
take longer than any short timeout, and a long one makes every injected hang cost that long.
:class:`HangAwareEngine` keeps a generous real timeout (normal replies never reach it) and
learns about hangs from the server instead: each attempt carries a unique id in its request
body, the :class:`~tests.support.fault_server.FaultServer` calls ``on_hang`` the moment it
starts holding a ``hang()`` request, and the attempt then gives up by raising
``asyncio.TimeoutError`` from ``_call``, exactly what ``asyncio.wait_for`` raises when the
real timeout runs out, so ``BaseEngine`` turns it into the same ``EngineTimeoutError`` and
retry decision. Everything else (retries, backoff, error mapping) is the real engine's.

Backoff sleeps are recorded in ``delays`` and skipped: the tests check the delays the engine
asked for, not how long it slept.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

from tests.support.fault_server import FaultServer, RecordedRequest
from tg_bridge.engines.base import Completion
from tg_bridge.engines.openai_engine import OpenAIEngine

__all__ = ["ATTEMPT_FIELD", "HangAwareEngine"]

#: The request-body field carrying the attempt id (not an SDK parameter, so OpenAIEngine
#: sends it in ``extra_body``; the fault server ignores fields it does not know).
ATTEMPT_FIELD = "x_test_attempt"


class HangAwareEngine(OpenAIEngine):
    """``OpenAIEngine`` on ``server`` whose attempts end with a timeout as soon as the server
    holds them with a ``hang()`` reply. Installs itself as ``server.on_hang`` (one such engine
    per server at a time). ``attempts`` counts attempts, ``signalled`` the ones a hang ended,
    ``delays`` records each backoff asked for."""

    def __init__(self, server: FaultServer, model: str = "fault-model", **kwargs: Any) -> None:
        super().__init__(model, base_url=server.base_url, **kwargs)
        self.attempts = 0
        self.signalled = 0
        self.delays: list[float] = []
        # attempt id -> (its event loop, its hang event); the server thread reads it
        self._waiting: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Event]] = {}
        self._lock = threading.Lock()
        server.on_hang = self._on_hang

    async def _sleep(self, delay: float) -> None:  # type: ignore[override]
        self.delays.append(delay)

    def _on_hang(self, request: RecordedRequest) -> None:
        """Server thread: wake the attempt whose request is being held (if it is ours)."""
        attempt = request.body.get(ATTEMPT_FIELD) if isinstance(request.body, dict) else None
        with self._lock:
            entry = self._waiting.get(attempt) if isinstance(attempt, str) else None
        if entry is not None:
            loop, event = entry
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # the attempt's loop is already closed: nobody to wake
                pass

    async def _call(
        self, messages: list[dict[str, str]], response_format: Any, params: dict[str, Any]
    ) -> Completion:
        attempt = uuid.uuid4().hex
        hung = asyncio.Event()
        with self._lock:
            self.attempts += 1
            self._waiting[attempt] = (asyncio.get_running_loop(), hung)
        call = asyncio.ensure_future(
            super()._call(messages, response_format, {**params, ATTEMPT_FIELD: attempt})
        )
        signal = asyncio.ensure_future(hung.wait())
        try:
            await asyncio.wait({call, signal}, return_when=asyncio.FIRST_COMPLETED)
            if call.done():  # an answer or an error of its own: the real engine's outcome
                return call.result()
            self.signalled += 1
            call.cancel()
            await asyncio.gather(call, return_exceptions=True)
            raise asyncio.TimeoutError  # what wait_for raises when the timeout runs out
        finally:
            for task in (call, signal):
                task.cancel()
            with self._lock:
                del self._waiting[attempt]
