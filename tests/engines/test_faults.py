"""OpenAIEngine against the scriptable fault server: retries, backoff, timeouts, bad bodies.

Nothing here measures elapsed time (the machine may be loaded): backoff is checked as the
delays the engine asked for (its ``_sleep`` is replaced), a timeout is tripped by a server
that never answers (``hang()``), overlap is counted by the server, and a test that must not
hang is bounded by a generous guard that only a real hang reaches.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from pydantic import BaseModel

from tests.support.fault_server import empty_choices, error, hang, ok, slow, truncated
from tests.support.hang_aware_engine import ATTEMPT_FIELD, HangAwareEngine
from tg_bridge import configure, context
from tg_bridge.engines.openai_engine import OpenAIEngine
from tg_bridge.exceptions import EngineError, EngineTimeoutError

MSG = [{"role": "user", "content": "hello"}]


#: Bounds a call that must end by itself (a timeout, an error): only a real hang reaches it.
HANG_GUARD = 120.0


def make(server, **kw):
    return OpenAIEngine("fault-model", base_url=server.base_url, **kw)


def record_sleeps(engine: OpenAIEngine) -> list[float]:
    """Replace the engine's backoff sleep: the delays it asks for are recorded, not slept."""
    delays: list[float] = []

    async def sleep(delay: float) -> None:
        delays.append(delay)

    engine._sleep = sleep  # type: ignore[method-assign]
    return delays


async def test_plain_answer_tokens_and_model(fault_server):
    fault_server.script(ok("the answer is four", model="served-name", prompt_tokens=11))
    completion = await make(fault_server).acomplete(MSG, temperature=0.3, top_k=5)
    assert completion.text == "the answer is four"
    assert (completion.prompt_tokens, completion.completion_tokens) == (11, 4)
    assert completion.model == "served-name"
    assert completion.latency > 0
    body = fault_server.requests[0].body
    assert body["model"] == "fault-model"
    assert body["messages"] == MSG
    assert body["temperature"] == 0.3
    assert body["top_k"] == 5  # unknown params travel in the body (extra_body)
    assert fault_server.requests[0].headers["authorization"] == "Bearer not-needed"


async def test_429_with_retry_after_is_retried_after_waiting(fault_server):
    fault_server.script(error(429, retry_after=1), ok("fine"))
    engine = make(fault_server, max_retries=2)
    delays = record_sleeps(engine)
    completion = await engine.acomplete(MSG)
    assert completion.text == "fine"
    assert len(fault_server.requests) == 2
    (delay,) = delays  # one wait, before the retry: the server's 1 s plus at most 0.1 s jitter
    assert 1.0 <= delay <= 1.1, delay


async def test_500s_until_retries_are_exhausted(fault_server):
    fault_server.default = error(500)
    engine = make(fault_server, max_retries=2)
    delays = record_sleeps(engine)
    with pytest.raises(EngineError) as info:
        await engine.acomplete(MSG)
    assert info.value.status == 500
    assert info.value.retryable is True
    assert info.value.engine_id == "openai:fault-model"
    assert "scripted error 500" in info.value.raw["body"]
    assert len(fault_server.requests) == 3  # first try + 2 retries
    # backoff is short at first: jittered halves of 0.25 s, then of 0.5 s
    assert len(delays) == 2 and 0.125 <= delays[0] <= 0.25 and 0.25 <= delays[1] <= 0.5, delays


async def test_slow_answer_times_out_quickly_without_hanging(fault_server):
    # The server never answers, so the 0.5 s timeout trips however loaded the machine is.
    fault_server.default = hang()
    engine = make(fault_server, timeout=0.5, max_retries=1)
    delays = record_sleeps(engine)
    with pytest.raises(EngineTimeoutError) as info:
        await asyncio.wait_for(engine.acomplete(MSG), HANG_GUARD)
    assert info.value.retryable is True
    assert "no answer within 0.5s" in str(info.value)  # the per-attempt bound, not the guard
    assert len(delays) == 1  # timed out, retried once, timed out again
    # (a loaded client may give up before its request even reaches the server)
    assert len(fault_server.hung) == len(fault_server.requests) <= 2


async def test_a_signalled_hang_is_a_timeout_without_waiting_for_the_clock(fault_server):
    """The machinery of tests/reliability/test_engine_faults.py: a hang() the server reports
    ends that attempt as EngineTimeoutError through the engine's normal retry path, while
    the real timeout is far away (60 s)."""
    fault_server.script(hang(), ok("fine"))
    engine = HangAwareEngine(fault_server, timeout=60, max_retries=1)
    completion = await asyncio.wait_for(engine.acomplete(MSG), HANG_GUARD)
    assert completion.text == "fine"
    assert (engine.attempts, engine.signalled, len(engine.delays)) == (2, 1, 1)
    first, second = (r.body[ATTEMPT_FIELD] for r in fault_server.requests)
    assert first != second and [r.body[ATTEMPT_FIELD] for r in fault_server.hung] == [first]
    fault_server.default = hang()
    with pytest.raises(EngineTimeoutError, match=r"no answer within 60s") as info:
        await asyncio.wait_for(
            HangAwareEngine(fault_server, timeout=60, max_retries=0).acomplete(MSG), HANG_GUARD
        )
    assert info.value.retryable is True


@pytest.mark.parametrize("reply", [truncated(), empty_choices()], ids=["truncated", "empty"])
async def test_bad_bodies_are_retryable_and_retried(fault_server, reply):
    fault_server.script(reply)
    with pytest.raises(EngineError) as info:
        await make(fault_server, max_retries=0).acomplete(MSG)
    assert info.value.retryable is True
    assert info.value.raw["body"]  # the raw body is kept for debugging
    fault_server.reset()
    fault_server.script(reply, ok("recovered"))
    assert (await make(fault_server, max_retries=1).acomplete(MSG)).text == "recovered"
    assert len(fault_server.requests) == 2


async def test_400_is_not_retried(fault_server):
    fault_server.default = error(400, body='{"error": {"message": "context too long"}}')
    with pytest.raises(EngineError) as info:
        await make(fault_server, max_retries=3).acomplete(MSG)
    assert info.value.status == 400
    assert info.value.retryable is False
    assert info.value.raw == {"retry_after": None, "body": '{"error": {"message": "context too long"}}'}
    assert len(fault_server.requests) == 1


async def test_connection_refused_is_retryable(fault_server):
    url = fault_server.base_url
    fault_server.stop()
    engine = OpenAIEngine("m", base_url=url, max_retries=0, timeout=60)  # refused, not slow
    with pytest.raises(EngineError) as info:
        await asyncio.wait_for(engine.acomplete(MSG), HANG_GUARD)
    assert info.value.retryable is True
    assert info.value.status is None


class Answer(BaseModel):
    answer: str
    confidence: int


async def test_json_schema_request_and_pydantic_parsing(fault_server):
    fault_server.script(ok('{"answer": "4", "confidence": 9}'))
    completion = await make(fault_server).acomplete(MSG, response_format=Answer)
    assert completion.parsed == Answer(answer="4", confidence=9)
    sent = fault_server.requests[0].body["response_format"]
    assert sent["type"] == "json_schema"
    assert sent["json_schema"]["name"] == "Answer"
    assert sent["json_schema"]["schema"]["required"] == ["answer", "confidence"]


async def test_unparseable_structured_answer_gives_parsed_none(fault_server):
    fault_server.script(ok("sorry, no JSON today"))
    completion = await make(fault_server).acomplete(MSG, response_format=Answer)
    assert completion.parsed is None
    assert completion.text == "sorry, no JSON today"


async def test_rejected_json_schema_falls_back_for_the_engines_life(fault_server):
    rejection = '{"error": {"message": "response_format json_schema is not supported"}}'
    fault_server.script(
        error(400, body=rejection),  # json_schema rejected
        error(400, body=rejection),  # json_object rejected too
        ok('{"answer": "x", "confidence": 1}'),
        ok('{"answer": "y", "confidence": 2}'),
    )
    engine = make(fault_server, max_retries=0)
    system = [{"role": "system", "content": "Be brief."}, *MSG]
    first = await engine.acomplete(system, response_format=Answer)
    second = await engine.acomplete(MSG, response_format=Answer)
    assert (first.parsed.answer, second.parsed.answer) == ("x", "y")
    assert engine.structured_mode == "text"
    assert engine.supports_structured is False
    bodies = [r.body for r in fault_server.requests]
    assert [b.get("response_format", {}).get("type") for b in bodies] == [
        "json_schema", "json_object", None, None,
    ]
    # In text mode the schema is asked for in the system message (appended to the user's).
    assert bodies[2]["messages"][0]["content"].startswith("Be brief.\n\nReply with a single JSON")
    assert '"confidence"' in bodies[2]["messages"][0]["content"]
    assert bodies[3]["messages"][0]["role"] == "system"
    assert bodies[3]["messages"][1:] == MSG


async def test_other_400_does_not_trigger_the_fallback(fault_server):
    fault_server.script(error(400, body='{"error": {"message": "bad model"}}'))
    engine = make(fault_server)
    with pytest.raises(EngineError):
        await engine.acomplete(MSG, response_format=Answer)
    assert engine.structured_mode == "json_schema"


async def test_concurrency_limit_bounds_requests_in_flight(fault_server):
    # Each request waits at a barrier of 3 before it is answered: 3 must be in flight at
    # once (no timing luck needed to reach the limit), and the server sees any 4th.
    barrier = threading.Barrier(3, timeout=HANG_GUARD)

    def in_threes(request):
        barrier.wait()
        return ok()

    fault_server.responder = in_threes
    configure(max_concurrency=3)
    engine = make(fault_server)
    results = await asyncio.gather(*(engine.acomplete(MSG) for _ in range(9)))
    assert len(results) == 9 and len(fault_server.requests) == 9
    assert fault_server.max_in_flight == 3


async def test_context_overrides_timeout_and_explicit_wins(fault_server):
    fault_server.default = hang()  # never answered: the context's timeout is what ends it
    with context(timeout=0.3, max_retries=0):
        with pytest.raises(EngineTimeoutError, match=r"no answer within 0\.3s"):
            await asyncio.wait_for(make(fault_server).acomplete(MSG), HANG_GUARD)
    # A reply that takes at least 0.5 s, longer than the context's 0.1 s: it arrives because
    # the engine's own timeout (explicit, and generous for a loaded machine) beats the context.
    fault_server.default = slow(0.5)
    with context(timeout=0.1, max_retries=0):
        assert (await make(fault_server, timeout=60).acomplete(MSG)).text == "ok"


def test_sync_complete_inside_and_outside_a_loop(fault_server):
    engine = make(fault_server)
    assert engine.complete(MSG).text == "ok"

    async def inside():
        return engine.complete(MSG)  # blocking call from a running loop (notebooks)

    assert asyncio.run(inside()).text == "ok"
    assert len(fault_server.requests) == 2


def test_retry_after_header_forms(monkeypatch):
    import email.utils

    from tg_bridge.engines.openai_engine import _retry_after

    assert _retry_after({"retry-after": "2.5"}) == 2.5
    assert _retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert _retry_after({}) is None and _retry_after(None) is None
    assert _retry_after({"retry-after": "soon"}) is None
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now)  # the date is read against a fixed "now"
    in_3s = email.utils.formatdate(now + 3, usegmt=True)  # (whole seconds)
    assert _retry_after({"retry-after": in_3s}) == pytest.approx(int(now + 3) - now)
