"""A tool-calling agent, as LangChain 1.x's "Quickstart" (docs.langchain.com/oss/python/
langchain/quickstart) writes it: ``create_agent(model=..., tools=[get_weather],
system_prompt="You are a helpful assistant")`` called with
``agent.invoke({"messages": [{"role": "user", "content": "what is the weather in sf"}]})``.
"""

from __future__ import annotations

from typing import Any

from langchain.agents import create_agent

from .harness import CorpusApp

SYSTEM = "You are a helpful assistant"


def get_weather(city: str) -> str:
    """Get weather for a given city."""
    return f"It's always sunny in {city}!"


def build(model: Any) -> Any:
    return create_agent(model=model, tools=[get_weather], system_prompt=SYSTEM)


def _inputs(question: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": question}]}


SPEC = CorpusApp(
    name="create_agent",
    build=build,
    run=lambda app, q: app.invoke(_inputs(q))["messages"][-1].content,
    arun=lambda app, q: _last(app.ainvoke(_inputs(q))),
    expected=(SYSTEM,),
    target=SYSTEM,
    examples=lambda questions: [{"inputs": _inputs(q)} for q in questions],
)


async def _last(pending: Any) -> str:
    return (await pending)["messages"][-1].content
