"""A prebuilt ReAct agent, as LangGraph's "Agents" guide (langchain-ai.github.io/langgraph/
agents/agents/) writes it: ``create_react_agent(model=..., tools=[get_weather],
prompt="You are a helpful assistant")`` called with
``agent.invoke({"messages": [{"role": "user", "content": "what is the weather in sf"}]})``.
"""

from __future__ import annotations

import warnings
from typing import Any

from .harness import CorpusApp

SYSTEM = "You are a helpful assistant"


def get_weather(city: str) -> str:
    """Get weather for a given city."""
    return f"It's always sunny in {city}!"


def build(model: Any) -> Any:
    from langgraph.prebuilt import create_react_agent

    with warnings.catch_warnings():  # "moved to langchain.agents" (still the guide's code)
        warnings.simplefilter("ignore")
        return create_react_agent(model=model, tools=[get_weather], prompt=SYSTEM)


def _inputs(question: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": question}]}


async def _last(pending: Any) -> str:
    return (await pending)["messages"][-1].content


SPEC = CorpusApp(
    name="create_react_agent",
    build=build,
    run=lambda app, q: app.invoke(_inputs(q))["messages"][-1].content,
    arun=lambda app, q: _last(app.ainvoke(_inputs(q))),
    expected=(SYSTEM,),
    target=SYSTEM,
    examples=lambda questions: [{"inputs": _inputs(q)} for q in questions],
)
