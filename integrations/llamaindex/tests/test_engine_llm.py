"""EngineLLM: a LlamaIndex LLM over tg_bridge engines (sync, async, streaming, an OpenAI-compatible
server on loopback) whose calls are captured as the app's LLM steps."""

from __future__ import annotations

import asyncio
import json

import pytest
from llama_index.core import PromptTemplate
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from tg_bridge_llamaindex import EngineLLM, LlamaIndexEngine

import tg_bridge
from tg_bridge import capture
from tg_bridge import semconv as sc
from tg_bridge.exceptions import EngineError, UsageError
from tg_bridge.testing import FakeEngine

QA = "Context:\n{context_str}\nQuestion: {query_str}\nShort answer:"
QA_KEY = "response_synthesizer:text_qa_template"


def echo(messages):
    return "echo: " + " | ".join(f"{m['role']}={m['content']}" for m in messages)


def test_chat_and_complete_send_messages_and_params():
    engine = FakeEngine(echo)
    llm = EngineLLM(engine, max_tokens=12, temperature=0.0)
    chat = llm.chat([ChatMessage(role=MessageRole.SYSTEM, content="be brief"),
                     ChatMessage(role=MessageRole.USER, content="hi")])
    assert chat.message.role == MessageRole.ASSISTANT
    assert chat.message.content == "echo: system=be brief | user=hi"
    assert engine.calls[-1][0] == [{"role": "system", "content": "be brief"},
                                   {"role": "user", "content": "hi"}]
    assert engine.calls[-1][2] == {"max_tokens": 12, "temperature": 0.0}
    done = llm.complete("what?")
    assert done.text == "echo: user=what?"
    # usage is reported the way hosted models do it (FakeEngine counts words)
    assert done.raw["usage"] == {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    assert llm.metadata.is_chat_model and llm.metadata.num_output == 12
    assert llm.metadata.model_name == "fake-model"


def test_per_call_sampling_kwargs_pass_and_framework_kwargs_do_not():
    engine = FakeEngine(default="ok")
    llm = EngineLLM(engine, max_tokens=12)
    llm.complete("x", temperature=0.7, tools=["not for the engine"])
    assert engine.calls[-1][2] == {"max_tokens": 12, "temperature": 0.7}


def test_tool_roles_become_user_messages():
    engine = FakeEngine(echo)
    EngineLLM(engine).chat([ChatMessage(role=MessageRole.TOOL, content="42")])
    assert engine.calls[-1][0] == [{"role": "user", "content": "42"}]


async def test_async_and_streaming_paths():
    engine = FakeEngine(echo, delay=0.05)
    llm = EngineLLM(engine)
    chat, done = await asyncio.gather(
        llm.achat([ChatMessage(role=MessageRole.USER, content="a")]), llm.acomplete("b"))
    assert chat.message.content == "echo: user=a" and done.text == "echo: user=b"
    chunks = [c async for c in await llm.astream_chat([ChatMessage(role=MessageRole.USER, content="c")])]
    assert [c.delta for c in chunks] == ["echo: user=c"]
    chunks = [c async for c in await llm.astream_complete("d")]
    assert [(c.text, c.delta) for c in chunks] == [("echo: user=d", "echo: user=d")]
    assert [c.text for c in llm.stream_complete("e")] == ["echo: user=e"]
    assert [c.message.content for c in llm.stream_chat([ChatMessage(role="user", content="f")])] == [
        "echo: user=f"]
    assert engine.call_count == 6


def test_engine_errors_reach_the_caller():
    llm = EngineLLM(FakeEngine([EngineError("down", engine_id="fake")]))
    with pytest.raises(EngineError, match="down"):
        llm.complete("x")


def test_spec_strings_build_engines(fault_server, monkeypatch):
    from tests.support.fault_server import ok

    monkeypatch.setenv("OPENAI_BASE_URL", fault_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    fault_server.script(ok("Tampere"))
    llm = EngineLLM("openai:fault-model", max_tokens=8)
    assert llm.engine_spec == "openai:fault-model"
    assert llm.complete("Where?").text == "Tampere"
    body = fault_server.requests[-1].body
    assert body["model"] == "fault-model" and body["max_tokens"] == 8
    assert body["messages"] == [{"role": "user", "content": "Where?"}]
    with pytest.raises(tg_bridge.ConfigurationError):
        EngineLLM("no-such-engine:x")


def test_query_engine_calls_are_captured_as_app_steps(index):
    engine = FakeEngine(lambda messages: "330 metres")
    query_engine = index.as_query_engine(llm=EngineLLM(engine), similarity_top_k=1)
    query_engine.update_prompts({QA_KEY: PromptTemplate(QA)})
    with capture() as run:
        answer = query_engine.query("How tall is the Eiffel Tower?")
    assert str(answer) == "330 metres"
    assert run.hook_errors == 0
    # the engine's internal_call() does not hide the app's LLM span
    llm_spans = [s for s in run.spans if s.attributes.get(sc.SPAN_KIND) == "LLM"]
    assert [s.name for s in llm_spans] == ["EngineLLM.chat"]
    attrs = llm_spans[0].attributes
    assert attrs[f"{sc.LLM_OUTPUT_MESSAGES}.0.{sc.MESSAGE_CONTENT}"] == "330 metres"
    assert attrs[sc.LLM_TOKEN_COUNT_COMPLETION] == 2
    graph = run.graph()
    params = graph.parameters()
    assert [p.key.rsplit("/", 1)[-1] for p in params] == [QA_KEY]
    assert params[0].value == QA and params[0].binding is not None
    calls = [n for n in graph.nodes if n.op is not None and n.op.kind == "llm_call"]
    assert len(calls) == 1 and calls[0].value == "330 metres"
    sent = calls[0].op.attrs["messages"]
    assert sent[-1]["content"].startswith("Context:\n")
    assert sent[-1]["content"].endswith("Question: How tall is the Eiffel Tower?\nShort answer:")
    # the parameter reaches the LLM output through the graph (backward can find it)
    ancestors, stack = [], [calls[0]]
    while stack:
        node = stack.pop()
        ancestors.append(node)
        stack.extend(node.parents)
    assert any(node is params[0] for node in ancestors)


async def test_concurrent_async_queries_are_captured_separately(index):
    engine = FakeEngine(lambda messages: "answer", delay=0.05)
    query_engine = index.as_query_engine(llm=EngineLLM(engine), similarity_top_k=1)

    async def ask(question):
        async with capture() as run:
            await query_engine.aquery(question)
        return run

    runs = await asyncio.gather(ask("Eiffel Tower height?"), ask("Mount Fuji height?"))
    for run, word in zip(runs, ("Eiffel", "Fuji")):
        llm = [s for s in run.spans if s.attributes.get(sc.SPAN_KIND) == "LLM"]
        assert len(llm) == 1
        assert word in llm[0].attributes[sc.INPUT_VALUE]


def test_as_tg_bridge_engine_its_calls_stay_internal():
    # EngineLLM wrapped back into an Engine (tg_bridge's own use): not an app step
    inner = FakeEngine(default="feedback")
    wrapped = LlamaIndexEngine(EngineLLM(inner))
    with capture() as run:
        assert wrapped.complete([{"role": "user", "content": "criticize"}]).text == "feedback"
    assert run.spans == []
    assert json.dumps(inner.calls[-1][0]) == json.dumps([{"role": "user", "content": "criticize"}])


def test_copies_share_the_engine():
    engine = FakeEngine(default="x")
    llm = EngineLLM(engine, max_tokens=5)
    clone = llm.model_copy()
    assert clone.engine is engine and clone.params == {"max_tokens": 5}


def test_llm_kwargs_reach_llamaindex_but_cannot_shadow_engine_llm_arguments():
    llm = EngineLLM(FakeEngine(echo), llm_kwargs={"system_prompt": "Be terse."})
    assert llm.system_prompt == "Be terse."
    with pytest.raises(UsageError, match="context_window"):
        EngineLLM(FakeEngine(echo), llm_kwargs={"context_window": 5})


def test_complete_applies_completion_to_prompt_unless_formatted():
    llm = EngineLLM(FakeEngine(echo), llm_kwargs={"completion_to_prompt": lambda p: f"<<{p}>>"})
    assert llm.complete("hi").text == "echo: user=<<hi>>"
    assert llm.complete("hi", formatted=True).text == "echo: user=hi"
    assert EngineLLM(FakeEngine(echo)).complete("hi").text == "echo: user=hi"
