"""EngineChatModel: a real LangChain chat model over tg_bridge engines (sync, async, usage,
captured as the app's LLM step)."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from tg_bridge_langchain import EngineChatModel

import tg_bridge
from tg_bridge.exceptions import ConfigurationError, EngineError
from tg_bridge.testing import FakeEngine


def echo_engine(**kw):
    """Answers with the roles and the last message, so tests see what reached the engine."""
    return FakeEngine(
        lambda msgs: "|".join(m["role"] for m in msgs) + " :: " + msgs[-1]["content"], **kw
    )


def test_sync_invoke_converts_messages_and_reports_usage():
    engine = echo_engine(model="echo-1")
    model = EngineChatModel(engine=engine, max_tokens=16, temperature=0.2)
    reply = model.invoke([
        SystemMessage("be brief"),
        HumanMessage("hi"),
        AIMessage("hello"),
        ToolMessage("42", tool_call_id="c1", name="calc"),
    ])
    assert isinstance(reply, AIMessage)
    assert reply.content == "system|user|assistant|user :: Result of tool calc:\n42"
    messages, _, params = engine.calls[0]
    assert messages[0] == {"role": "system", "content": "be brief"}
    assert params == {"max_tokens": 16, "temperature": 0.2}
    # FakeEngine counts whitespace-separated words as tokens
    assert reply.usage_metadata == {"input_tokens": 9, "output_tokens": 7, "total_tokens": 16}
    assert reply.response_metadata["model_name"] == "echo-1"
    assert model.model_name == "echo-1" and model.engine_id == "fake"
    assert model.params == {"max_tokens": 16, "temperature": 0.2}


def test_call_params_override_and_stop_cuts_text():
    engine = FakeEngine(lambda msgs: "Paris. STOP then more")
    model = EngineChatModel(engine=engine, max_tokens=16)
    reply = model.bind(max_tokens=4).invoke("capital?", stop=["STOP"])
    assert reply.content == "Paris. "
    assert engine.calls[0][2] == {"max_tokens": 4, "stop": ["STOP"]}


async def test_async_generation_runs_concurrently():
    engine = FakeEngine(lambda msgs: msgs[-1]["content"].upper())
    engine.hold_until(4)  # each call waits until all four are in flight: counted, not timed
    model = EngineChatModel(engine=engine)
    replies = await model.abatch(["a", "b", "c", "d"])
    assert [r.content for r in replies] == ["A", "B", "C", "D"]
    assert engine.max_in_flight == 4  # the four calls overlapped, not one after another
    assert engine.call_count == 4


async def test_sync_invoke_inside_a_running_loop():
    model = EngineChatModel(engine=FakeEngine(lambda msgs: "ok"))
    assert model.invoke("x").content == "ok"  # blocking call from async code (notebooks)


def test_bad_spec_raises_configuration_error():
    with pytest.raises(ConfigurationError):
        EngineChatModel(engine="nosuch:thing")


def test_engine_errors_reach_the_chain():
    model = EngineChatModel(engine=FakeEngine([EngineError("down", engine_id="fake")]))
    with pytest.raises(EngineError, match="down"):
        model.invoke("x")


def test_calls_are_captured_as_the_apps_llm_step():
    engine = FakeEngine(lambda msgs: "Paris")
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Answer in one word."), ("human", "Question: {question}")]
    )
    chain = prompt | EngineChatModel(engine=engine, max_tokens=8) | StrOutputParser()
    with tg_bridge.usage() as meter, tg_bridge.capture("app") as run:
        assert chain.invoke({"question": "Capital of France?"}) == "Paris"
    llm_spans = [s for s in run.spans if s.attributes.get("openinference.span.kind") == "LLM"]
    assert [s.name for s in llm_spans] == ["EngineChatModel"]
    attrs = llm_spans[0].attributes
    assert attrs["llm.input_messages.0.message.content"] == "Answer in one word."
    assert attrs["llm.input_messages.1.message.content"] == "Question: Capital of France?"
    assert attrs["llm.token_count.completion"] == 1
    graph = run.graph()
    calls = [n for n in graph.nodes if n.op is not None and n.op.kind == "llm_call"]
    assert len(calls) == 1 and calls[0].value == "Paris"
    params = {p.value: p for p in graph.parameters()}
    assert set(params) == {"Answer in one word.", "Question: {question}"}
    assert meter.calls == 1  # the engine call was metered once


def test_engine_calls_made_by_tg_bridge_itself_stay_invisible():
    """The same model used as tg_bridge's engine (backward/update) is NOT an app step."""
    from tg_bridge._internal import internal_call

    model = EngineChatModel(engine=FakeEngine(lambda msgs: "x"))
    with tg_bridge.capture("ours") as run:
        with internal_call():
            model.invoke("gradient please")
    assert run.spans == []


@pytest.mark.slow
def test_embedded_model_answers_through_a_chain():
    pytest.importorskip("llama_cpp")
    prompt = ChatPromptTemplate.from_messages([("human", "Say hello.")])
    model = EngineChatModel(max_tokens=8)
    with tg_bridge.capture("local") as run:
        reply = (prompt | model).invoke({})
    assert reply.content.strip()
    assert 0 < reply.usage_metadata["output_tokens"] <= 8
    assert model.engine_id == "local" and "SmolLM2" in reply.response_metadata["model_name"]
    assert any(s.name == "EngineChatModel" for s in run.spans)
