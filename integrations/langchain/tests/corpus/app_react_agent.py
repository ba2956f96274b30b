"""A prebuilt ReAct agent, as LangGraph's "Agents" guide (langchain-ai.github.io/langgraph/
agents/agents/) writes it: ``create_react_agent(model=..., tools=[get_weather],
prompt="You are a helpful assistant")`` called with
``agent.invoke({"messages": [{"role": "user", "content": "what is the weather in sf"}]})``.
"""

from __future__ import annotations

import warnings
from typing import Any

from .harness import get_weather, messages_agent

SYSTEM = "You are a helpful assistant"


def build(model: Any) -> Any:
    from langgraph.prebuilt import create_react_agent

    with warnings.catch_warnings():  # "moved to langchain.agents" (still the guide's code)
        warnings.simplefilter("ignore")
        return create_react_agent(model=model, tools=[get_weather], prompt=SYSTEM)


SPEC = messages_agent("create_react_agent", build, SYSTEM)
