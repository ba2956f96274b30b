"""A ReAct agent with a system prompt and a tool; hook failures; instrument idempotence."""

from __future__ import annotations

import json

from llama_index.core.agent.workflow import ReActAgent
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.tools import FunctionTool
from tg_bridge_llamaindex import adapter, handlers

from tg_bridge import semconv as sc
from tg_bridge.capturing import capture

TOOL_STEP = 'Thought: I need to use a tool to help me answer the question.\nAction: add\nAction Input: {"a": 2, "b": 3}'
FINAL_STEP = "Thought: I can answer without using any more tools.\nAnswer: The sum is 5"


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def _agent(llm):
    return ReActAgent(tools=[FunctionTool.from_defaults(add)], llm=llm, system_prompt="You are a careful calculator.")


async def test_react_agent_capture_tool_and_system_prompt(make_llm):
    llm = make_llm(answers=[TOOL_STEP, FINAL_STEP])
    agent = _agent(llm)
    before = set(handlers.installed().deferred)
    async with capture() as run:
        out = await adapter.ainvoke(agent, {"question": "What is 2 + 3?"})
    assert out == "The sum is 5"
    assert run.hook_errors == 0
    root = next(s for s in run.spans if s.name == "ReActAgent.run")
    assert root.attributes[sc.SPAN_KIND] == "AGENT"
    templates = json.loads(root.attributes[sc.TEMPLATES])
    system = next(t for t in templates if t["binding"].endswith("/system_prompt"))
    assert system["template"] == "You are a careful calculator." and system["format"] == "none"
    assert any(t["binding"].endswith("/react_header") for t in templates)
    assert system["binding"] in run.bindings
    tool = next(s for s in run.spans if s.attributes.get(sc.SPAN_KIND) == "TOOL")
    assert tool.attributes[sc.TOOL_NAME] == "add"
    assert "Add two integers." in tool.attributes[sc.TOOL_DESCRIPTION]
    assert json.loads(tool.attributes[sc.INPUT_VALUE]) == {"a": 2, "b": 3}  # as the model wrote them
    assert tool.attributes[sc.OUTPUT_VALUE] == "5"
    llm_spans = [s for s in run.spans if s.attributes.get(sc.SPAN_KIND) == "LLM"]
    assert len(llm_spans) == 2  # two agent steps, one LLM request each
    assert all(s.trace_id == root.trace_id for s in run.spans)
    assert "You are a careful calculator." in llm_spans[0].attributes[f"{sc.LLM_INPUT_MESSAGES}.0.{sc.MESSAGE_CONTENT}"]
    assert llm_spans[1].attributes[sc.OUTPUT_VALUE] == FINAL_STEP
    assert set(handlers.installed().deferred) <= before  # every streamed LLM span ended


async def test_agent_system_prompt_write_back(make_llm):
    llm = make_llm(answers=[FINAL_STEP, FINAL_STEP])
    agent = _agent(llm)
    binding = next(b for b in adapter.bindings(agent) if b.key.endswith("/system_prompt"))
    binding.write("You are a terse calculator.")
    await adapter.ainvoke(agent, {"question": "2+3?"})
    assert "You are a terse calculator." in llm.received[-1]
    assert "careful" not in llm.received[-1]


def test_injected_hook_failure_never_breaks_the_query(index, llm, monkeypatch):
    from tg_bridge_llamaindex import attributes

    def boom(*args, **kwargs):
        raise RuntimeError("injected")

    monkeypatch.setattr(attributes, "output_text", boom)
    monkeypatch.setattr(attributes, "documents", boom)
    engine = index.as_query_engine(llm=llm)
    with capture() as run:
        answer = engine.query("How tall is the Eiffel Tower?")
    assert str(answer).startswith("answer:")
    assert run.hook_errors >= 1
    assert not handlers.installed().open  # spans were not leaked by the failing exits


def test_instrument_is_idempotent_and_uninstrument_removes_handlers(index, llm):
    dispatcher = get_dispatcher()

    def ours():
        return sum(isinstance(h, handlers.TgBridgeSpanHandler) for h in dispatcher.span_handlers), sum(
            isinstance(h, handlers.TgBridgeEventHandler) for h in dispatcher.event_handlers
        )

    adapter.instrument()
    adapter.instrument()
    assert ours() == (1, 1)
    adapter.uninstrument()
    adapter.uninstrument()
    assert ours() == (0, 0)
    with capture(instrument=False) as run:
        index.as_query_engine(llm=llm).query("q")
    assert run.spans == []
    from tg_bridge.capturing import provider

    adapter.instrument(provider.tracer_provider())
    assert ours() == (1, 1)
    with capture() as run:
        index.as_query_engine(llm=llm).query("q")
    assert run.spans


async def test_ainvoke_query_chat_and_errors(index, llm):
    import pytest
    from llama_index.core.chat_engine import SimpleChatEngine

    from tg_bridge.exceptions import UsageError

    assert (await adapter.ainvoke(index.as_query_engine(llm=llm), {"query": "hi"})).startswith("answer:")
    chat = SimpleChatEngine.from_defaults(llm=llm, system_prompt="Be nice.")
    assert await adapter.ainvoke(chat, {"message": "hello"})
    assert "Be nice." in llm.received[-1]
    with pytest.raises(UsageError):
        await adapter.ainvoke(chat, {"a": 1, "b": 2})
    with pytest.raises(UsageError):
        await adapter.ainvoke(object(), {"query": "x"})
