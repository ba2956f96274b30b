"""The system prompt of LangChain 1.x ``create_agent`` as a live, writable parameter."""

from __future__ import annotations

import asyncio
import json

import lc_apps
import pytest
from langchain_core.messages import SystemMessage
from tg_bridge_langchain import adapter
from tg_bridge_langchain.agent_prompt import AgentPromptBinding

import tg_bridge
import tg_bridge.capturing as tgc
from tg_bridge import apply_patch
from tg_bridge import semconv as sc
from tg_bridge.exceptions import BindingError
from tg_bridge.patching.patch import Change, Patch
from tg_bridge.variable import content_hash

agents = pytest.importorskip("langchain.agents")
pytestmark = pytest.mark.usefixtures("instrumented")

QUESTION = {"messages": [{"role": "user", "content": "capital of France"}]}
NEW_SYSTEM = "You are a terse research agent. Always search first, then answer in one line."


def make_agent(system_prompt=lc_apps.AGENT_SYSTEM):
    model = lc_apps.ScriptedChatModel(reply=lc_apps.agent_reply)
    agent = agents.create_agent(model, tools=[lc_apps.search], system_prompt=system_prompt)
    return agent, model


def agent_bindings(agent):
    return [b for b in adapter.bindings(agent) if isinstance(b, AgentPromptBinding)]


def sent_systems(model):
    """The system message text of every request the model received, in order."""
    out = []
    for request in model.requests:
        assert request[0].type == "system"
        out.append(request[0].content)
    return out


def test_binding_is_listed_with_a_stable_key():
    agent, _ = make_agent()
    (binding,) = agent_bindings(agent)
    assert binding.template_format == "none"
    assert binding.read() == lc_apps.AGENT_SYSTEM
    assert binding.key.startswith("langchain:agent:") and binding.key.endswith("/system_prompt")
    (again,) = agent_bindings(agent)
    assert again is binding  # same key, same object for the life of the agent
    other, _ = make_agent()
    assert agent_bindings(other)[0].key != binding.key


def test_agent_without_system_prompt_has_no_binding():
    agent, model = make_agent(system_prompt=None)
    assert agent_bindings(agent) == []
    with tg_bridge.capture() as run:
        agent.invoke(QUESTION)
    assert run.hook_errors == 0
    assert not any(sc.TEMPLATES in s.attributes for s in run.spans)


def test_capture_records_the_prompt_and_the_graph_parameter_is_bound():
    agent, model = make_agent()
    (binding,) = agent_bindings(agent)
    with tg_bridge.capture() as run:
        state = agent.invoke(QUESTION)
    assert state["messages"][-1].content == "Final: Paris is the capital of France."
    assert run.hook_errors == 0
    llms = [s for s in run.spans if s.attributes.get(sc.SPAN_KIND) == "LLM"]
    assert len(llms) == 2
    for span in llms:
        (record,) = json.loads(span.attributes[sc.TEMPLATES])
        assert record["binding"] == binding.key
        assert (record["role"], record["format"], record["index"]) == ("system", "none", 0)
        assert record["template"] == lc_apps.AGENT_SYSTEM
    assert run.bindings[binding.key] is binding
    params = [p for p in run.graph().parameters() if p.value == lc_apps.AGENT_SYSTEM]
    assert len(params) == 1  # both model calls share one parameter
    assert params[0].binding is binding and params[0].key == binding.key


def test_capture_binds_without_calling_bindings_first():
    # the hook finds the prompt on its own: no adapter.bindings() call before the run
    agent, _ = make_agent()
    with tg_bridge.capture() as run:
        agent.invoke(QUESTION)
    (param,) = [p for p in run.graph().parameters() if p.value == lc_apps.AGENT_SYSTEM]
    assert isinstance(param.binding, AgentPromptBinding)
    assert param.binding.read() == lc_apps.AGENT_SYSTEM


async def test_async_capture_and_write():
    agent, model = make_agent()
    (binding,) = agent_bindings(agent)
    binding.write(NEW_SYSTEM)
    async with tg_bridge.capture() as run:
        await asyncio.gather(agent.ainvoke(QUESTION), agent.ainvoke(QUESTION))
    assert sent_systems(model) == [NEW_SYSTEM] * 4
    assert run.hook_errors == 0
    (param,) = [p for p in run.graph().parameters() if p.value == NEW_SYSTEM]
    assert param.binding is binding


def test_write_changes_the_next_call_and_revert_is_exact():
    original = lc_apps.AGENT_SYSTEM + "\n  trailing spaces and unicode: café  "
    user_message = SystemMessage(content=original, id="sys-1")
    agent, model = make_agent(system_prompt=user_message)
    (binding,) = agent_bindings(agent)
    assert binding.read() == original
    binding.write(NEW_SYSTEM)
    assert binding.read() == NEW_SYSTEM
    agent.invoke(QUESTION)
    assert sent_systems(model) == [NEW_SYSTEM, NEW_SYSTEM]
    assert model.requests[0][0].id == "sys-1"  # other fields of the message are kept
    assert user_message.content == original  # the user's object is never mutated
    binding.write(original)
    assert binding.read() == original
    agent.invoke(QUESTION)
    assert sent_systems(model)[2:] == [original, original]
    with pytest.raises(BindingError):
        binding.write(42)  # type: ignore[arg-type]


def test_stream_sends_the_written_prompt():
    agent, model = make_agent()
    (binding,) = agent_bindings(agent)
    binding.write(NEW_SYSTEM)
    list(agent.stream(QUESTION, stream_mode="updates"))
    assert sent_systems(model) == [NEW_SYSTEM, NEW_SYSTEM]


def test_apply_patch_by_key_writes_and_reverts():
    agent, model = make_agent()
    (binding,) = agent_bindings(agent)
    change = Change(
        target=binding.key, kind="replace", old=lc_apps.AGENT_SYSTEM, new=NEW_SYSTEM,
        old_hash=content_hash(lc_apps.AGENT_SYSTEM), provenance={"template_format": "none"},
    )
    text = Patch([change]).to_json()  # as if computed in another process
    applied = apply_patch(agent, text)
    assert applied.applied and binding.read() == NEW_SYSTEM
    agent.invoke(QUESTION)
    assert sent_systems(model) == [NEW_SYSTEM, NEW_SYSTEM]
    applied.revert()
    assert binding.read() == lc_apps.AGENT_SYSTEM
    agent.invoke(QUESTION)
    assert sent_systems(model)[2:] == [lc_apps.AGENT_SYSTEM] * 2


def test_patch_from_a_captured_graph_applies_through_the_parameter():
    agent, model = make_agent()
    with tg_bridge.capture() as run:
        agent.invoke(QUESTION)
    (param,) = [p for p in run.graph().parameters() if p.value == lc_apps.AGENT_SYSTEM]
    change = Change(param.key, "replace", param.value, NEW_SYSTEM, content_hash(param.value),
                    {"template_format": "none"})
    patch = Patch([change], targets={param.key: param}).apply()
    agent.invoke(QUESTION)
    assert sent_systems(model)[2:] == [NEW_SYSTEM, NEW_SYSTEM]
    patch.revert()
    assert param.binding.read() == lc_apps.AGENT_SYSTEM


def test_copy_has_its_own_system_prompt():
    agent, model = make_agent()
    (binding,) = agent_bindings(agent)
    duplicate = adapter.copy(agent)
    (dup_binding,) = agent_bindings(duplicate)
    assert dup_binding.key != binding.key
    assert dup_binding.read() == lc_apps.AGENT_SYSTEM
    dup_binding.write(NEW_SYSTEM)
    # deepcopy shares closure cells; detach() gave the copy its own, so the original is intact
    assert binding.read() == lc_apps.AGENT_SYSTEM and dup_binding.read() == NEW_SYSTEM
    agent.invoke(QUESTION)
    assert sent_systems(model) == [lc_apps.AGENT_SYSTEM] * 2
    # the copy runs (langgraph's identity sentinels survive the deep copy) with its own prompt
    duplicate.invoke(QUESTION)
    assert sent_systems(model) == [lc_apps.AGENT_SYSTEM] * 2 + [NEW_SYSTEM] * 2


def test_uninstrument_removes_the_node_hook():
    from langgraph._internal._runnable import RunnableCallable

    assert getattr(RunnableCallable.__dict__["invoke"], "__tg_bridge_wrapped__", False)
    tgc.uninstrument()
    try:
        assert not getattr(RunnableCallable.__dict__["invoke"], "__tg_bridge_wrapped__", False)
        assert not getattr(RunnableCallable.__dict__["ainvoke"], "__tg_bridge_wrapped__", False)
        agent, model = make_agent()
        agent.invoke(QUESTION)  # still works unhooked
        assert sent_systems(model) == [lc_apps.AGENT_SYSTEM] * 2
    finally:
        tgc.instrument()
    assert getattr(RunnableCallable.__dict__["invoke"], "__tg_bridge_wrapped__", False)


def test_langgraph_loaded_after_instrument_is_hooked_at_the_first_run():
    # instrument() never imports langgraph; the handler wraps the node class when it shows up
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "import sys, tg_bridge, tg_bridge.capturing as tgc\n"
        "tgc.instrument()\n"
        "assert 'langgraph._internal._runnable' not in sys.modules\n"
        "import lc_apps\n"
        "from langchain.agents import create_agent\n"
        "m = lc_apps.ScriptedChatModel(reply=lc_apps.agent_reply)\n"
        "a = create_agent(m, tools=[lc_apps.search], system_prompt=lc_apps.AGENT_SYSTEM)\n"
        "with tg_bridge.capture() as run:\n"
        "    a.invoke({'messages': [{'role': 'user', 'content': 'x'}]})\n"
        "print([p.binding.key for p in run.graph().parameters() if p.binding])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parent,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "/system_prompt']" in done.stdout
