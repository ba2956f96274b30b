"""The host-model engine, ainvoke on examples, owns(), and the entry point."""

from __future__ import annotations

import json
from itertools import cycle

import lc_apps
import pytest
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.language_models.fake import FakeListLLM
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from pydantic import BaseModel
from tg_bridge_langchain import LangChainEngine, adapter

from tg_bridge.adapters import Adapter, adapter_for, load_adapters
from tg_bridge.engines.usage import usage
from tg_bridge.exceptions import EngineError, UsageError


class Verdict(BaseModel):
    score: int
    reason: str


def structured_reply(messages):
    return AIMessage(
        content="",
        tool_calls=[
            {"name": "Verdict", "args": {"score": 7, "reason": "clear"}, "id": "c1", "type": "tool_call"}
        ],
    )


def test_entry_point_and_protocol():
    assert isinstance(adapter, Adapter)
    assert any(a is adapter for a in load_adapters())
    chain = ChatPromptTemplate.from_messages([("human", "{q}")]) | lc_apps.ScriptedChatModel()
    assert adapter_for(chain) is adapter
    assert adapter.owns(lc_apps.search) and adapter.owns(lc_apps.ScriptedChatModel())
    assert not adapter.owns("a string") and not adapter.owns(object())


async def test_engine_plain_completion_with_usage():
    model = lc_apps.ScriptedChatModel(reply=lambda msgs: AIMessage(content="three word answer"))
    engine = adapter.engine(model)
    assert isinstance(engine, LangChainEngine) and engine.supports_structured
    with usage() as counted:
        done = await engine.acomplete(
            [{"role": "system", "content": "Be nice."}, {"role": "user", "content": "hello there"}]
        )
    assert done.text == "three word answer" and done.parsed is None
    assert (done.prompt_tokens, done.completion_tokens) == (4, 3)
    assert done.model == "scripted-1"
    roles = [m.type for m in model.requests[0]]
    assert roles == ["system", "human"]
    assert counted.calls == 1


def test_engine_structured_through_tool_calling():
    model = lc_apps.ScriptedChatModel(reply=structured_reply)
    engine = adapter.engine(model)
    done = engine.complete([{"role": "user", "content": "grade it"}], response_format=Verdict)
    assert isinstance(done.parsed, Verdict) and done.parsed.score == 7
    assert json.loads(done.text) == {"score": 7, "reason": "clear"}
    schema = {"type": "object", "properties": {"score": {"type": "integer"}, "reason": {"type": "string"}}}
    model2 = lc_apps.ScriptedChatModel(
        reply=lambda msgs: AIMessage(
            content="",
            tool_calls=[{"name": "response", "args": {"score": 1, "reason": "r"}, "id": "x", "type": "tool_call"}],
        )
    )
    assert adapter.engine(model2).complete([{"role": "user", "content": "g"}], response_format=schema).parsed == {
        "score": 1,
        "reason": "r",
    }


def test_engine_json_in_text_when_the_model_cannot_bind_tools():
    model = GenericFakeChatModel(messages=cycle([AIMessage('```json\n{"score": 3, "reason": "ok"}\n```')]))
    engine = adapter.engine(model)
    assert not engine.supports_structured
    done = engine.complete([{"role": "user", "content": "grade"}], response_format=Verdict)
    assert done.parsed == Verdict(score=3, reason="ok")
    bad = adapter.engine(GenericFakeChatModel(messages=cycle([AIMessage("not json")])))
    assert bad.complete([{"role": "user", "content": "g"}], response_format=Verdict).parsed is None


def test_engine_over_completion_llm_and_bound_model():
    llm = FakeListLLM(responses=["plain text"])
    assert adapter.engine(llm).complete([{"role": "user", "content": "hi"}]).text == "plain text"
    bound = lc_apps.ScriptedChatModel(reply=lambda m: AIMessage("b")).bind(stop=["\n"])
    assert adapter.engine(bound).complete([{"role": "user", "content": "hi"}]).text == "b"
    with pytest.raises(UsageError):
        adapter.engine(RunnableLambda(lambda x: x))


def test_engine_errors_become_engine_errors():
    class RateLimitError(Exception):
        status_code = 429

    def fail(messages):
        raise RateLimitError("slow down")

    engine = LangChainEngine(lc_apps.ScriptedChatModel(reply=fail), max_retries=0)
    with pytest.raises(EngineError) as info:
        engine.complete([{"role": "user", "content": "hi"}])
    assert info.value.retryable and info.value.status == 429

    def broken(messages):
        raise ValueError("bad request")

    with pytest.raises(EngineError) as info:
        LangChainEngine(lc_apps.ScriptedChatModel(reply=broken), max_retries=0).complete(
            [{"role": "user", "content": "hi"}]
        )
    assert not info.value.retryable


async def test_ainvoke_dict_and_single_value_targets():
    chain, _ = lc_apps.make_rag()
    out = await adapter.ainvoke(chain, {"question": "What is the capital of France?"})
    assert out == "Answer: Paris is the capital of France."
    single = RunnableLambda(lambda s: s.upper())
    assert await adapter.ainvoke(single, {"text": "abc"}) == "ABC"
    prompt_model = ChatPromptTemplate.from_messages([("human", "{q}")]) | lc_apps.ScriptedChatModel(
        reply=lambda m: AIMessage("msg")
    )
    assert await adapter.ainvoke(prompt_model, {"q": "x"}) == "msg"
    dict_out = RunnableLambda(lambda d: {"answer": "A", "sources": [1]})
    assert await adapter.ainvoke(dict_out, {"a": 1, "b": 2}) == "A"
    with pytest.raises(UsageError):
        await adapter.ainvoke(single, "not a mapping")  # type: ignore[arg-type]


async def test_ainvoke_agent_state_output():
    agents = pytest.importorskip("langchain.agents")
    model = lc_apps.ScriptedChatModel(reply=lc_apps.agent_reply)
    agent = agents.create_agent(model, tools=[lc_apps.search], system_prompt=lc_apps.AGENT_SYSTEM)
    out = await adapter.ainvoke(agent, {"messages": [{"role": "user", "content": "capital of France"}]})
    assert out == "Final: Paris is the capital of France."
    assert StrOutputParser  # parsers are plain runnables too
