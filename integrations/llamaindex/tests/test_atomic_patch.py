"""A patch changing two prompts of a LlamaIndex app is seen whole by concurrent host calls
(issue 11 leftover: proven for LangChain, not for LlamaIndex).

Real LlamaIndex classes: a ``VectorStoreIndex`` query engine in ``refine`` mode formats
``text_qa_template`` for the first node and ``refine_template`` for the second, and a
``CondensePlusContextChatEngine`` formats its system prompt and context template. The LLM is
``MockLLM``, which echoes its prompt. So each answer carries the version marker of every
patched prompt that the call used. Threads and an event loop call the app while the main
thread applies and reverts a two-prompt patch (tests/support/concurrent_patch.py); every
call must carry ONE version.

The other tests pin the lock's contract: a writer waits for calls in flight (bounded); a
nested call re-enters the lock while a writer waits; an async call that waits leaves its
event loop running; a cancelled waiter holds nothing; a writer on an event loop does not
wait for the calls suspended on that same loop (which would deadlock).
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable
from typing import Any

import pytest
from llama_index.core import Document, MockEmbedding, PromptTemplate, VectorStoreIndex
from llama_index.core.chat_engine import CondensePlusContextChatEngine, CondenseQuestionChatEngine
from llama_index.core.llms import CompletionResponse, MockLLM
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.memory import ChatMemoryBuffer
from tg_bridge_llamaindex import adapter, call_lock

import tg_bridge
from tests.support.concurrent_patch import fast_switching, race
from tg_bridge.exceptions import BindingError
from tg_bridge.patching.apply import patch_between

CYCLES = 150
QA = "[qa:{v}] Context: {{context_str}} Question: {{query_str}}"
REFINE = "[refine:{v}] More: {{context_msg}} Question: {{query_str}} Draft: {{existing_answer}}"
SYSTEM = "[sys:{v}] Answer briefly."
CONTEXT = "[ctx:{v}] Context: {{context_str}}"
_MARK = re.compile(r"\[(?:qa|refine|sys|ctx):([AB])\]")


def _index() -> VectorStoreIndex:
    docs = [Document(text=f"Fact number {i}.", id_=f"d{i}") for i in range(2)]
    return VectorStoreIndex.from_documents(docs, embed_model=MockEmbedding(embed_dim=8))


def _versions(text: str, expected: int) -> tuple[str, ...]:
    found = tuple(_MARK.findall(text))
    assert len(found) == expected, f"expected {expected} version markers in {text!r}"
    return found


class _Slot:
    def __init__(self, suffix: str, template: str) -> None:
        self.suffix = suffix
        self.template = template


def _patch(app: Any, slots: list[_Slot]):
    """The A -> B patch of the slots' prompts (bindings found on the live app)."""
    bindings = {b.key: b for b in adapter.bindings(app)}
    keys = [next(k for k in bindings if k.endswith(slot.suffix)) for slot in slots]
    originals = {key: bindings[key].read() for key in keys}
    assert list(originals.values()) == [slot.template.format(v="A") for slot in slots]
    return patch_between(originals, {key: s.template.format(v="B") for key, s in zip(keys, slots)})


def _query_app():
    engine = _index().as_query_engine(llm=MockLLM(), response_mode="refine", similarity_top_k=2)
    engine.update_prompts(
        {
            "response_synthesizer:text_qa_template": PromptTemplate(QA.format(v="A")),
            "response_synthesizer:refine_template": PromptTemplate(REFINE.format(v="A")),
        }
    )
    patch = _patch(engine, [_Slot(":text_qa_template", QA), _Slot(":refine_template", REFINE)])

    def call() -> tuple[str, ...]:
        return _versions(str(engine.query("What is known?")), 2)

    async def acall() -> tuple[str, ...]:
        return _versions(str(await engine.aquery("What is known?")), 2)

    return engine, patch, call, acall


def _chat_app():
    # the echo is the system message only (system prompt + context template): the history a
    # shared chat engine accumulates holds other calls' answers, which are not this call's.
    # A list memory: the default Memory's aiosqlite store hangs when threads and an event
    # loop share it (LlamaIndex's limit, with or without tg_bridge)
    llm = MockLLM(messages_to_prompt=lambda messages: messages[0].content)
    engine = CondensePlusContextChatEngine.from_defaults(
        _index().as_retriever(similarity_top_k=2),
        llm=llm,
        memory=ChatMemoryBuffer.from_defaults(token_limit=2000),
        system_prompt=SYSTEM.format(v="A"),
        context_prompt=CONTEXT.format(v="A"),
    )
    patch = _patch(engine, [_Slot("/system_prompt", SYSTEM), _Slot("/context_prompt_template", CONTEXT)])

    def call() -> tuple[str, ...]:
        return _versions(str(engine.chat("What is known?", chat_history=[])), 2)

    async def acall() -> tuple[str, ...]:
        return _versions(str(await engine.achat("What is known?", chat_history=[])), 2)

    return engine, patch, call, acall


@pytest.mark.parametrize("make", [_query_app, _chat_app], ids=["query_engine_refine", "chat_engine"])
def test_concurrent_calls_never_see_a_mixed_patch(make: Callable[[], Any]) -> None:
    engine, patch, call, acall = make()
    before = {key: b.read() for key, b in ((b.key, b) for b in adapter.bindings(engine))}
    with fast_switching():
        result = race(
            call, acall, lambda: tg_bridge.apply_patch(engine, patch), lambda p: p.revert(), cycles=CYCLES
        )
    assert not result.errors, result.errors[:3]
    assert len(result.seen) >= 2 * CYCLES
    assert result.versions == {"A", "B"}
    assert len(result.mixed) == 0, f"{len(result.mixed)} of {len(result.seen)} calls saw a mixed patch"
    assert {b.key: b.read() for b in adapter.bindings(engine)} == before


# -- the lock's contract --------------------------------------------------------------------


class _GatedLLM(MockLLM):
    """MockLLM whose calls wait for ``gate`` (a host call held in flight, without timing);
    ``entered`` is set when a call is waiting."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._gate = threading.Event()
        self._entered = threading.Event()

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        self._entered.set()
        assert self._gate.wait(timeout=60), "the test never opened the gate"
        return CompletionResponse(text=prompt)


def _engine_with_patch(llm: Any):
    engine = _index().as_query_engine(llm=llm, response_mode="refine", similarity_top_k=2)
    engine.update_prompts(
        {
            "response_synthesizer:text_qa_template": PromptTemplate(QA.format(v="A")),
            "response_synthesizer:refine_template": PromptTemplate(REFINE.format(v="A")),
        }
    )
    patch = _patch(engine, [_Slot(":text_qa_template", QA), _Slot(":refine_template", REFINE)])
    return engine, patch


def _in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(_outcome(fn)))
    thread.start()
    return thread, out


def _outcome(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except BaseException as exc:  # handed to the test
        return exc


def test_a_patch_waits_for_calls_in_flight_and_gives_up_cleanly(monkeypatch) -> None:
    llm = _GatedLLM()
    engine, patch = _engine_with_patch(llm)
    query, answers = _in_thread(lambda: str(engine.query("q")))
    assert llm._entered.wait(timeout=60)
    # a call is in flight: a patch that may not wait for it writes nothing
    monkeypatch.setattr(call_lock, "DRAIN_TIMEOUT", 0.0)
    with pytest.raises(BindingError, match="1 host call"):
        tg_bridge.apply_patch(engine, patch)
    assert engine.get_prompts()["response_synthesizer:text_qa_template"].template == QA.format(v="A")
    llm._gate.set()
    query.join(timeout=60)
    assert _versions(answers[0], 2) == ("A", "A")
    # nothing in flight any more: the same patch goes in at once
    applied = tg_bridge.apply_patch(engine, patch)
    assert _versions(str(engine.query("q")), 2) == ("B", "B")
    applied.revert()


def test_a_nested_call_reenters_while_a_patch_waits() -> None:
    # a condense-question chat engine calls its inner query engine: both share the app's lock,
    # and the inner call must not queue behind the patch that waits for the outer call
    llm = _GatedLLM()
    index = _index()
    inner = index.as_query_engine(llm=MockLLM(), response_mode="refine", similarity_top_k=2)
    chat = CondenseQuestionChatEngine.from_defaults(query_engine=inner, llm=llm)
    inner.update_prompts(
        {
            "response_synthesizer:text_qa_template": PromptTemplate(QA.format(v="A")),
            "response_synthesizer:refine_template": PromptTemplate(REFINE.format(v="A")),
        }
    )
    patch = _patch(chat, [_Slot(":text_qa_template", QA), _Slot(":refine_template", REFINE)])
    lock = call_lock.lock_of(chat)
    assert lock is not None and call_lock.lock_of(inner) is lock
    # history makes the chat engine condense first: its LLM call holds the outer call
    history = [_message("user", "hi"), _message("assistant", "hello")]
    outer, answers = _in_thread(lambda: str(chat.chat("What is known?", chat_history=history)))
    assert llm._entered.wait(timeout=60)
    writer, applied = _in_thread(lambda: tg_bridge.apply_patch(chat, patch))
    with lock._cond:  # the patch waits for the outer call (a condition, no timing)
        assert lock._cond.wait_for(lambda: lock._waiting_writers == 1, timeout=60)
    llm._gate.set()
    outer.join(timeout=60)
    writer.join(timeout=60)
    assert not outer.is_alive() and not writer.is_alive()
    assert _versions(answers[0], 2) == ("A", "A")
    assert not isinstance(applied[0], BaseException), applied[0]
    assert _versions(str(inner.query("q")), 2) == ("B", "B")
    applied[0].revert()


def _message(role: str, text: str) -> Any:
    from llama_index.core.base.llms.types import ChatMessage

    return ChatMessage(role=role, content=text)


def test_an_async_call_waiting_for_a_patch_leaves_its_event_loop_running() -> None:
    engine, _ = _engine_with_patch(MockLLM())
    lock = call_lock.lock_of(engine)
    assert lock is not None
    loop_alive = threading.Event()

    async def marker() -> None:
        loop_alive.set()

    async def calls() -> tuple[str, ...]:
        answer, _ = await asyncio.gather(engine.aquery("q"), marker())
        return _versions(str(answer), 2)

    with lock:  # a patch being written
        runner, answers = _in_thread(lambda: asyncio.run(calls()))
        # the query waits for the patch; the loop still runs the other task
        assert loop_alive.wait(timeout=60), "the waiting call blocked its event loop"
        assert not answers
    runner.join(timeout=60)
    assert answers == [("A", "A")]


def test_a_cancelled_waiting_call_holds_nothing() -> None:
    engine, _ = _engine_with_patch(MockLLM())
    lock = call_lock.lock_of(engine)
    assert lock is not None

    async def cancel_while_waiting() -> bool:
        task = asyncio.ensure_future(engine.aquery("q"))
        await asyncio.sleep(0)  # one loop turn: the task ran up to its wait for the lock
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return True
        return False

    with lock:  # a patch being written on this thread; the call runs on another one
        runner, cancelled = _in_thread(lambda: asyncio.run(cancel_while_waiting()))
        runner.join(timeout=60)
        assert cancelled == [True]
    assert "readers=0" in repr(lock)
    # no read hold was left behind: a patch on another thread that may not wait gets the lock
    lock.drain_timeout = 0.0
    writer, out = _in_thread(lambda: (lock.acquire(), lock.release()))
    writer.join(timeout=60)
    assert out == [(True, None)]


class _AsyncGatedLLM(MockLLM):
    """MockLLM whose async calls wait for an asyncio event (a call suspended on its loop)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._gate: asyncio.Event | None = None
        self._entered: asyncio.Event | None = None

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        assert self._gate is not None and self._entered is not None
        self._entered.set()
        await self._gate.wait()
        return CompletionResponse(text=prompt)


def test_a_patch_on_the_event_loop_does_not_wait_for_its_own_suspended_calls(monkeypatch) -> None:
    # waiting for a call suspended on the writer's own loop would deadlock: the writer goes on
    # (the documented limit: that one call may see the patch between its two prompts)
    llm = _AsyncGatedLLM()
    engine, patch = _engine_with_patch(llm)
    monkeypatch.setattr(call_lock, "DRAIN_TIMEOUT", 0.0)  # a wait would fail at once

    async def patch_while_a_call_is_suspended() -> str:
        llm._gate, llm._entered = asyncio.Event(), asyncio.Event()
        call = asyncio.ensure_future(engine.aquery("q"))
        await llm._entered.wait()
        applied = tg_bridge.apply_patch(engine, patch)
        llm._gate.set()
        answer = str(await call)
        applied.revert()
        return answer

    answer = asyncio.run(patch_while_a_call_is_suspended())
    assert len(_versions(answer, 2)) == 2
    assert "readers=0" in repr(call_lock.lock_of(engine))
