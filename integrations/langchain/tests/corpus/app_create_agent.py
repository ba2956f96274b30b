"""A tool-calling agent, as LangChain 1.x's "Quickstart" (docs.langchain.com/oss/python/
langchain/quickstart) writes it: ``create_agent(model=..., tools=[get_weather],
system_prompt="You are a helpful assistant")`` called with
``agent.invoke({"messages": [{"role": "user", "content": "what is the weather in sf"}]})``.
"""

from __future__ import annotations

from typing import Any

from langchain.agents import create_agent

from .harness import get_weather, messages_agent

SYSTEM = "You are a helpful assistant"


def build(model: Any) -> Any:
    return create_agent(model=model, tools=[get_weather], system_prompt=SYSTEM)


SPEC = messages_agent("create_agent", build, SYSTEM)
