"""FunctionAgent, as in LlamaIndex's "Building an agent" tutorial
(https://docs.llamaindex.ai/en/stable/understanding/agent/)::

    def multiply(a: float, b: float) -> float:
        \"\"\"Multiply two numbers and returns the product\"\"\"
        return a * b

    agent = FunctionAgent(
        tools=[multiply],
        llm=OpenAI(model="gpt-4o-mini"),
        system_prompt="You are a helpful assistant that can multiply two numbers.",
    )

    async def main():
        response = await agent.run("What is 1234 * 4567?")
        print(str(response))

    asyncio.run(main())
"""

from __future__ import annotations

import asyncio

import pytest
import tg_bridge_llamaindex
from llama_index.core.agent.workflow import FunctionAgent

from tests.support.llamaindex_stub import openai_like


def multiply(a: float, b: float) -> float:
    """Multiply two numbers and returns the product"""
    return a * b


def build(stub):
    llm = openai_like(stub, is_function_calling_model=True)
    return FunctionAgent(
        tools=[multiply],
        llm=llm,
        system_prompt="You are a helpful assistant that can multiply two numbers.",
    )


def run(agent, question):
    async def main():
        response = await agent.run(question)
        return str(response)

    return asyncio.run(main())


def test_function_agent(corpus, stub, tmp_path):
    corpus.check_app(corpus.AppCase(
        build=build, run=run, expected=("system_prompt",), target="system_prompt",
        chosen=lambda old: old.startswith("You are a helpful assistant that can multiply"),
    ), stub, tmp_path)


@pytest.fixture
def tool_descriptions():
    tg_bridge_llamaindex.adapter.tool_descriptions = True
    yield
    tg_bridge_llamaindex.adapter.tool_descriptions = False


def test_tool_arguments_come_from_the_llm_call_that_chose_them(corpus, stub):
    agent = build(stub)
    _, graph = corpus.captured_paths(agent, lambda: run(agent, "What is 6 * 7?"))
    [tool] = [n for n in graph.nodes if n.op is not None and n.op.kind == "tool_call"]
    assert tool.value == "42"
    [source] = tool.parents
    assert source.kind == "llm_output" and source.op.kind == "llm_call"
    assert "multiply" in source.value
    # the assistant turn replayed into the second call is that same output, not a new leaf
    [final] = [n for n in graph.nodes if n.op is not None and n.op.kind == "llm_call" and n is not source]
    assert any(p is source for p in final.parents) and any(p is tool for p in final.parents)


def test_tool_descriptions_are_opt_in_parameters(corpus, stub, tmp_path, tool_descriptions):
    found, graph = corpus.captured_paths(agent := build(stub), lambda: run(agent, "What is 6 * 7?"))
    assert "tools[0]/description" in found
    corpus.check_app(corpus.AppCase(
        build=build, run=run, expected=("system_prompt", "tools[0]/description"),
        target="tools[0]/description", chosen=lambda old: "Multiply two numbers" in old,
    ), stub, tmp_path)


def test_tool_descriptions_are_not_parameters_by_default(corpus, stub):
    agent = build(stub)
    found, _ = corpus.captured_paths(agent, lambda: run(agent, "What is 6 * 7?"))
    assert found == ["system_prompt"]
