"""ReActAgent, as in LlamaIndex's "ReActAgent - A Simple Intro with Calculator Tools" example
(https://docs.llamaindex.ai/en/stable/examples/agent/react_agent/)::

    def multiply(a: int, b: int) -> int:
        \"\"\"Multiply two integers and returns the result integer\"\"\"
        return a * b

    def add(a: int, b: int) -> int:
        \"\"\"Add two integers and returns the result integer\"\"\"
        return a + b

    llm = OpenAI(model="gpt-4o-mini")
    agent = ReActAgent(tools=[multiply, add], llm=llm)
    ctx = Context(agent)
    handler = agent.run("What is 20+(2*4)?", ctx=ctx)
    response = await handler
"""

from __future__ import annotations

import asyncio

from llama_index.core.agent.workflow import ReActAgent
from llama_index.core.workflow import Context

from tests.support.llamaindex_stub import openai_like


def multiply(a: int, b: int) -> int:
    """Multiply two integers and returns the result integer"""
    return a * b


def add(a: int, b: int) -> int:
    """Add two integers and returns the result integer"""
    return a + b


def build(stub):
    llm = openai_like(stub)
    return ReActAgent(tools=[multiply, add], llm=llm)


def run(agent, question):
    async def main():
        ctx = Context(agent)
        handler = agent.run(question, ctx=ctx)
        response = await handler
        return str(response)

    return asyncio.run(main())


def test_react_agent_system_header(corpus, stub, tmp_path):
    seen = corpus.check_app(corpus.AppCase(
        build=build, run=run, expected=("react_header",), target="react_header",
        chosen=lambda old: old.startswith("You are designed to help with a variety of tasks"),
    ), stub, tmp_path)
    # the tool really ran between the two model calls, on the arguments the first call wrote
    [tool] = [n for n in seen["graph"].nodes if n.op is not None and n.op.kind == "tool_call"]
    assert tool.value == "42"
    ancestors, stack = [], list(tool.parents)
    while stack:
        node = stack.pop()
        ancestors.append(node)
        stack.extend(node.parents)
    assert any(n.kind == "llm_output" and "Action Input" in n.value for n in ancestors)
