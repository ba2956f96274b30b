"""create_react_agent's prompt and the tools of agents (issue 12 items 5 and 7).

Before: the prompt was found in traces but unbound (every step skipped), a callable prompt
was skipped silently, and tool descriptions were not parameters of either agent kind.
"""

from __future__ import annotations

import warnings

import pytest
from langchain.agents import create_agent
from langchain_core.messages import SystemMessage
from tg_bridge_langchain import adapter
from tg_bridge_langchain.runner import copy_target

import tg_bridge
from tests.support.openai_stub import OpenAIStub, tool_call
from tg_bridge.exceptions import UnwritablePromptWarning, UsageError
from tg_bridge.testing import FakeEngine

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

DESCRIPTION = "Get weather for a given city."


def get_weather(city: str) -> str:
    """Get weather for a given city."""
    return f"It's always sunny in {city}!"


def _react(model, prompt):
    from langgraph.prebuilt import create_react_agent

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return create_react_agent(model, [get_weather], prompt=prompt)


def _respond(request):
    last = request["messages"][-1]
    if request.get("tools") and last["role"] == "user":
        return tool_call("get_weather", {"city": "sf"})
    described = request["tools"][0]["function"]["description"] if request.get("tools") else ""
    return "Sunny. (checked with the weather tool)" if "weather tool" in described else "Sunny."


@pytest.fixture()
def stub():
    with OpenAIStub(_respond) as server:
        yield server


def _model(stub):
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model="stub-model", base_url=stub.base_url, api_key="t", max_retries=0)


def _ask(agent, text="weather in sf?"):
    return agent.invoke({"messages": [{"role": "user", "content": text}]})["messages"][-1].content


@pytest.mark.parametrize("prompt", ["You are a weather bot.", SystemMessage("You are a weather bot.")],
                         ids=["str", "SystemMessage"])
def test_react_prompt_is_bound_and_writable(stub, prompt):
    agent = _react(_model(stub), prompt)
    [binding] = adapter.bindings(agent)
    assert binding.read() == "You are a weather bot."
    binding.write("You are a terse weather bot.")
    _ask(agent)
    assert stub.chat_requests[-1]["messages"][0] == {"role": "system", "content": "You are a terse weather bot."}
    if isinstance(prompt, SystemMessage):
        assert prompt.content == "You are a weather bot."  # the user's object is not mutated
    binding.write("You are a weather bot.")
    _ask(agent)
    assert stub.chat_requests[-1]["messages"][0]["content"] == "You are a weather bot."


def test_react_copy_has_its_own_prompt(stub):
    agent = _react(_model(stub), "Original.")
    duplicate = copy_target(agent)
    [binding] = adapter.bindings(duplicate)
    binding.write("Copy only.")
    _ask(duplicate)
    assert stub.chat_requests[-1]["messages"][0]["content"] == "Copy only."
    _ask(agent)
    assert stub.chat_requests[-1]["messages"][0]["content"] == "Original."


def test_callable_prompt_is_reported_by_name(stub):
    def build_messages(state):
        return [SystemMessage("Dynamic prompt.")] + state["messages"]

    agent = _react(_model(stub), build_messages)
    with pytest.warns(UnwritablePromptWarning, match="build_messages"):
        found = adapter.bindings(agent)
    assert found == []
    assert adapter.unwritable(agent) == [f"{__name__}.test_callable_prompt_is_reported_by_name"
                                         ".<locals>.build_messages"]


def _describe_engine():
    def answer(messages, response_format):
        if "improved_value" in str(response_format):
            content = messages[-1]["content"]
            current = content.split("<current_value>\n", 1)[1].split("\n</current_value>", 1)[0]
            new = current + " Say you checked with the weather tool." if current == DESCRIPTION else current
            return {"improved_value": new}
        return "The answer should say where the weather came from."
    return FakeEngine(answer)


def _metric(example, output):
    return float("weather tool" in output)


@pytest.mark.parametrize("kind", ["create_agent", "create_react_agent"])
def test_tool_descriptions_are_opt_in_parameters(stub, kind):
    model = _model(stub)
    agent = (create_agent(model, [get_weather], system_prompt="Be a weather bot.")
             if kind == "create_agent" else _react(model, "Be a weather bot."))
    train = [({"messages": [{"role": "user", "content": "weather in sf?"}]}, None)]
    assert all("description" not in b.key for b in adapter.bindings(agent))  # off by default
    result = tg_bridge.optimize(agent, train, metric=_metric, backward_engine=_describe_engine(),
                                tool_descriptions=True, progress=False, store=":memory:")
    assert (result.baseline_score, result.best_score) == (0.0, 1.0)
    [change] = result.best_patch.changes
    assert change.target.endswith("/description") and change.old == DESCRIPTION
    stub.reset()
    assert "weather tool" in _ask(agent)
    offered = stub.chat_requests[0]["tools"][0]["function"]["description"]
    assert offered == DESCRIPTION + " Say you checked with the weather tool."


def test_optimize_names_the_unwritable_prompt_before_spending_anything(stub):
    def build_messages(state):
        return [SystemMessage("Dynamic prompt.")] + state["messages"]

    agent = _react(_model(stub), build_messages)
    train = [({"messages": [{"role": "user", "content": "weather in sf?"}]}, None)]
    before = len(stub.chat_requests)
    with pytest.warns(UnwritablePromptWarning), pytest.raises(UsageError) as info:
        tg_bridge.optimize(agent, train, metric=lambda ex, out: 0.0,
                           backward_engine=_describe_engine(), progress=False, store=":memory:")
    assert ("test_optimize_names_the_unwritable_prompt_before_spending_anything.<locals>"
            ".build_messages") in str(info.value)
    assert len(stub.chat_requests) == before  # refused before the baseline
