"""Overall deadline of one engine call (retries and waits included) and the Retry-After cap.

Time is faked where waiting would be needed: the engine's ``_clock``/``_sleep`` are replaced
by a clock that only moves when the engine sleeps, so the tests assert on the typed error and
on the number of requests the server saw, never on elapsed wall-clock time.
"""

from __future__ import annotations

import pytest

from tests.support.fault_server import error, ok
from tg_bridge import context
from tg_bridge.config import get_settings
from tg_bridge.engines.openai_engine import OpenAIEngine
from tg_bridge.exceptions import (
    ConfigurationError,
    EngineDeadlineError,
    EngineError,
    EngineTimeoutError,
)

MSG = [{"role": "user", "content": "hello"}]


class FakeTime:
    """A monotonic clock that advances only when the engine sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make(server, fake: FakeTime | None = None, **kw) -> OpenAIEngine:
    engine = OpenAIEngine("fault-model", base_url=server.base_url, **kw)
    if fake is not None:
        engine._clock = fake.clock
        engine._sleep = fake.sleep
    return engine


def test_defaults():
    settings = get_settings()
    assert settings.deadline == 120.0
    assert settings.max_retry_after == 30.0


async def test_retry_after_beyond_the_deadline_fails_at_once_with_a_typed_error(fault_server):
    fault_server.default = error(429, retry_after=3600)
    fake = FakeTime()
    engine = make(fault_server, fake, deadline=5, max_retry_after=10_000, max_retries=10)
    with pytest.raises(EngineDeadlineError) as info:
        await engine.acomplete(MSG)
    err = info.value
    assert isinstance(err, EngineTimeoutError) and isinstance(err, EngineError)
    assert err.retryable is True
    assert err.attempts == 1 and err.status == 429
    assert err.raw["retry_after"] == 3600
    assert "deadline of 5s" in str(err)
    assert len(fault_server.requests) == 1  # no second request, and no sleep at all
    assert fake.sleeps == []


async def test_retry_after_above_the_cap_is_not_waited_for(fault_server):
    fault_server.default = error(503, retry_after=3600)
    fake = FakeTime()
    engine = make(fault_server, fake, max_retries=10)  # default deadline 120 s, cap 30 s
    with pytest.raises(EngineDeadlineError) as info:
        await engine.acomplete(MSG)
    assert "max_retry_after=30s" in str(info.value)
    assert info.value.raw["retry_after"] == 3600
    assert len(fault_server.requests) == 1
    assert fake.sleeps == []


async def test_retry_after_within_the_cap_is_honoured(fault_server):
    fault_server.script(error(429, retry_after=20), ok("fine"))
    fake = FakeTime()
    completion = await make(fault_server, fake, max_retries=3).acomplete(MSG)
    assert completion.text == "fine"
    assert len(fault_server.requests) == 2
    assert len(fake.sleeps) == 1 and 20.0 <= fake.sleeps[0] <= 20.1


async def test_the_deadline_counts_every_retry_and_wait(fault_server):
    # 503 + Retry-After 1 forever: attempts at t=0, ~1, ~2; the next wait would pass 2.5 s
    fault_server.default = error(503, retry_after=1)
    fake = FakeTime()
    engine = make(fault_server, fake, deadline=2.5, max_retries=100)
    with pytest.raises(EngineDeadlineError) as info:
        await engine.acomplete(MSG)
    assert len(fault_server.requests) == 3
    assert info.value.attempts == 3
    assert info.value.status == 503
    assert len(fake.sleeps) == 2


async def test_deadline_from_context_and_per_engine_wins(fault_server):
    fault_server.default = error(503, retry_after=1)
    fake = FakeTime()
    with context(deadline=1.5), pytest.raises(EngineDeadlineError):
        await make(fault_server, fake, max_retries=100).acomplete(MSG)
    assert len(fault_server.requests) == 2  # t=0 and t~1
    fault_server.reset()
    fault_server.default = error(503, retry_after=1)
    fake = FakeTime()
    # the engine's own deadline wins over the context
    with context(deadline=1.5), pytest.raises(EngineDeadlineError):
        await make(fault_server, fake, deadline=3.5, max_retries=100).acomplete(MSG)
    assert len(fault_server.requests) == 4


async def test_exhausted_retries_keep_the_servers_error(fault_server):
    # retries run out before the deadline: the last server error, not a deadline error
    fault_server.default = error(500, retry_after=0)
    fake = FakeTime()
    with pytest.raises(EngineError) as info:
        await make(fault_server, fake, max_retries=2).acomplete(MSG)
    assert not isinstance(info.value, EngineDeadlineError)
    assert info.value.status == 500
    assert len(fault_server.requests) == 3


@pytest.mark.parametrize("bad", [0, -1, float("inf"), float("nan"), "10", True])
def test_bad_deadline_values_are_configuration_errors(bad):
    with pytest.raises(ConfigurationError):
        OpenAIEngine("m", base_url="http://127.0.0.1:9/v1", deadline=bad)
    with pytest.raises(ConfigurationError), context(max_retry_after=bad):
        pass


async def test_connection_error_names_the_url():
    import socket

    with socket.socket() as sock:  # a free port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    engine = OpenAIEngine("m", base_url=url, max_retries=0)
    with pytest.raises(EngineError) as info:
        await engine.acomplete(MSG)
    assert url in str(info.value)
    assert info.value.retryable is True


async def test_waiting_for_a_concurrency_slot_counts_against_the_deadline(fault_server):
    import asyncio
    import threading

    from tests.support.fault_server import slow

    arrived = threading.Event()

    def hold(request):  # the first call holds the only slot for as long as the test runs
        arrived.set()
        return slow(30)

    fault_server.responder = hold
    holder = make(fault_server, max_retries=0)
    waiter = make(fault_server, deadline=0.5, max_retries=0)
    with context(max_concurrency=1):
        first = asyncio.ensure_future(holder.acomplete(MSG))
        assert await asyncio.to_thread(arrived.wait, 30)
        with pytest.raises(EngineDeadlineError) as info:
            await waiter.acomplete(MSG)
        first.cancel()
    assert info.value.attempts == 0  # it never got a slot, so it never sent a request
    assert len(fault_server.requests) == 1
