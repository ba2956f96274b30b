"""LocalEngine under concurrent load: waiting for the one in-process model is not the call's time.

No llama.cpp and no wall clock: the model is a stand-in whose generations block until the test
releases them, and the event loop runs on a clock that moves only when the test advances it
(asyncio's timers, ``wait_for``'s timeout included, fire by that clock). "The queue waited 1000
seconds" therefore costs no real time, and every step is ordered by events, not by sleeps.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

import tg_bridge
from tg_bridge.engines import local
from tg_bridge.engines.local import LocalEngine
from tg_bridge.exceptions import EngineDeadlineError, EngineTimeoutError

SAFETY = 30.0  # real seconds; only bounds a broken test, never reached when it works


class FakeClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose time moves only through :meth:`advance`."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class HeldModel:
    """Stands in for a llama context: records each prompt, then blocks until the test grants
    it a permit (``allow``). ``entries`` counts generations that began."""

    def __init__(self) -> None:
        self.prompts: list[str] = []
        self.entries = threading.Semaphore(0)
        self._permits = threading.Semaphore(0)

    def allow(self, n: int = 1) -> None:
        self._permits.release(n)

    async def entered(self) -> None:
        """Wait (without blocking the loop) until one more generation has begun."""
        assert await asyncio.to_thread(self.entries.acquire, True, SAFETY)

    def create_chat_completion(self, messages: list[dict[str, str]], **kwargs: Any) -> dict:
        self.prompts.append(messages[-1]["content"])
        self.entries.release()
        self._permits.acquire(True, SAFETY)
        return {
            "choices": [{"message": {"content": f"answer to {messages[-1]['content']}"}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2},
        }

    def close(self) -> None:
        pass


def _message(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def _run(
    monkeypatch: pytest.MonkeyPatch,
    scenario: Callable[[FakeClockLoop, LocalEngine, HeldModel, Any], Coroutine[Any, Any, Any]],
    **engine_kw: Any,
) -> Any:
    """Run ``scenario(loop, engine, model, submissions)`` on a fake-clock loop, with the
    engine's model replaced by a HeldModel; ``submissions(n)`` waits until n calls are queued
    on (or taken by) the model."""
    model = HeldModel()
    worker = local._ModelWorker(model, "held")
    monkeypatch.setattr(local, "_load", lambda *args: worker)
    loop = FakeClockLoop()
    engine = LocalEngine("held.gguf", cache=False, **engine_kw)
    engine._clock = loop.time  # the deadline is kept on the same clock as the timers
    counted = {"n": 0}
    changed = asyncio.Event()
    submit = worker.submit

    def counting_submit(job: Any) -> None:  # runs on the loop's thread
        submit(job)
        counted["n"] += 1
        changed.set()

    worker.submit = counting_submit  # type: ignore[method-assign]

    async def submissions(n: int) -> None:
        while counted["n"] < n:
            changed.clear()
            await changed.wait()

    try:
        return loop.run_until_complete(
            asyncio.wait_for(scenario(loop, engine, model, submissions), SAFETY * 1000)
        )
    finally:
        model.allow(100)  # whatever the scenario left held
        worker.close()
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


def test_calls_queued_behind_the_model_do_not_fail_but_an_overrun_does(monkeypatch):
    """One call holds the model far past timeout and deadline; three more queue behind it.
    The holder fails (a real overrun); the queued calls then run, in arrival order, each with
    its full time budget, and succeed. Before the fix their wait counted against their own
    timeout and they failed with it."""

    async def scenario(loop, engine, model, submissions):
        holder = asyncio.create_task(engine.acomplete(_message("first")))
        await model.entered()  # the model took the first call
        queued = [asyncio.create_task(engine.acomplete(_message(f"q{i}"))) for i in range(3)]
        await submissions(4)
        loop.advance(1000.0)  # 10x the timeout and 8x the deadline pass
        with pytest.raises(EngineTimeoutError, match="no answer within 100s"):
            await holder
        assert not any(task.done() for task in queued)
        model.allow(4)
        return await asyncio.gather(*queued), list(model.prompts)

    results, prompts = _run(monkeypatch, scenario, timeout=100, max_retries=0)
    assert prompts == ["first", "q0", "q1", "q2"]  # one model, first come first served
    assert [r.text for r in results] == ["answer to q0", "answer to q1", "answer to q2"]
    assert all(r.prompt_tokens == 3 and r.completion_tokens == 2 for r in results)


def test_a_call_that_waited_long_still_gets_its_whole_deadline(monkeypatch):
    """The deadline starts when the model takes the call: after a 1000 s wait a call whose
    work overruns still fails by the deadline (here shorter than the timeout), not at once
    and not never."""

    async def scenario(loop, engine, model, submissions):
        holder = asyncio.create_task(engine.acomplete(_message("first")))
        await model.entered()
        late = asyncio.create_task(engine.acomplete(_message("late")))
        await submissions(2)
        loop.advance(1000.0)
        with pytest.raises(EngineTimeoutError):
            await holder
        model.allow(1)  # the holder's generation ends; the late call's own work is held
        await model.entered()
        assert model.prompts == ["first", "late"]
        for _ in range(20):  # the late call gets its turn and starts its timer
            await asyncio.sleep(0)
        assert not late.done()
        loop.advance(49.0)  # within its 50 s deadline: still running
        for _ in range(20):
            await asyncio.sleep(0)
        assert not late.done()
        loop.advance(2.0)  # past it
        with pytest.raises(EngineTimeoutError, match="no answer within 50s"):
            await late

    with tg_bridge.context(deadline=50.0):
        _run(monkeypatch, scenario, timeout=100, max_retries=0)


@pytest.mark.parametrize("queues_calls", [True, False])
def test_waiting_for_a_concurrency_slot_is_not_counted_for_the_local_model(
    monkeypatch, queues_calls
):
    """With max_concurrency=1 the second call waits for the slot the first holds while the
    model works. For the local engine that wait is queueing, not the call's time; an engine
    that does not queue (the contrast) keeps the documented rule: the slot wait counts
    against the deadline."""
    monkeypatch.setattr(LocalEngine, "queues_calls", queues_calls)

    async def scenario(loop, engine, model, submissions):
        holder = asyncio.create_task(engine.acomplete(_message("first")))
        await model.entered()
        second = asyncio.create_task(engine.acomplete(_message("second")))
        for _ in range(20):  # let it reach the slot
            await asyncio.sleep(0)
        loop.advance(1000.0)
        with pytest.raises(EngineTimeoutError):
            await holder
        model.allow(2)
        return await asyncio.gather(second, return_exceptions=True)

    with tg_bridge.context(max_concurrency=1):
        (second,) = _run(monkeypatch, scenario, timeout=100, max_retries=0)
    if queues_calls:
        assert second.text == "answer to second"
    else:
        assert isinstance(second, EngineDeadlineError), second


def test_a_call_abandoned_while_queued_never_reaches_the_model(monkeypatch):
    async def scenario(loop, engine, model, submissions):
        holder = asyncio.create_task(engine.acomplete(_message("first")))
        await model.entered()
        dropped = asyncio.create_task(engine.acomplete(_message("dropped")))
        kept = asyncio.create_task(engine.acomplete(_message("kept")))
        await submissions(3)
        dropped.cancel()
        with pytest.raises(asyncio.CancelledError):
            await dropped
        model.allow(3)
        return await asyncio.gather(holder, kept), list(model.prompts)

    (first, kept), prompts = _run(monkeypatch, scenario, timeout=100, max_retries=0)
    assert (first.text, kept.text) == ("answer to first", "answer to kept")
    assert prompts == ["first", "kept"]  # the model never spent time on the dropped call
