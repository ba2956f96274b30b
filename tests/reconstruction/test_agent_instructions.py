"""An agent span's ``gen_ai.system_instructions`` become the system prompt of the model calls
under it that record none (conventions/agent_instructions.py)."""

from __future__ import annotations

import json

from tg_bridge.reconstruction import reconstruct

INSTRUCTIONS = "gen_ai.system_instructions"


def _instructions(text: str) -> str:
    return json.dumps([{"type": "text", "content": text}])


def _agent(make_span, sid, parent=None, instructions=None, start=0):
    attrs = {"gen_ai.operation.name": "invoke_agent"}
    if instructions is not None:
        attrs[INSTRUCTIONS] = _instructions(instructions)
    return make_span(f"invoke_agent {sid}", sid, parent, start=start, **attrs)


def _chat(make_span, sid, parent, question="Hi", answer="Hello", system=None, start=1):
    messages = ([{"role": "system", "parts": [{"type": "text", "content": system}]}] if system else []) + [
        {"role": "user", "parts": [{"type": "text", "content": question}]}]
    return make_span("chat model", sid, parent, start=start, **{
        "gen_ai.operation.name": "chat",
        "gen_ai.input.messages": json.dumps(messages),
        "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": answer}]}]),
    })


def test_a_chat_call_without_system_message_gets_its_agents_instructions(make_span):
    graph = reconstruct([_agent(make_span, "a", instructions="Answer in French."),
                         _chat(make_span, "c", "a")])
    (system,) = graph.parameters()
    assert system.value == "Answer in French."
    (call,) = [n for n in graph.nodes if n.kind == "llm_output"]
    assert system in call.parents and call.value == "Hello"


def test_the_nearest_agent_decides_and_one_without_instructions_gives_none(make_span):
    spans = [
        _agent(make_span, "outer", instructions="Outer rules."),
        _agent(make_span, "inner", "outer", start=1),  # no instructions of its own
        _chat(make_span, "c1", "inner", question="q1", answer="a1", start=2),
        _agent(make_span, "other", "outer", instructions="Inner rules.", start=3),
        make_span("step", "s", "other", start=4),  # not an agent: passes the instructions down
        _chat(make_span, "c2", "s", question="q2", answer="a2", start=5),
    ]
    graph = reconstruct(spans)
    assert [p.value for p in graph.parameters()] == ["Inner rules."]
    calls = {n.value: n for n in graph.nodes if n.kind == "llm_output"}
    assert not any(p.requires_grad for p in calls["a1"].parents)
    assert graph.parameters()[0] in calls["a2"].parents


def test_a_call_that_records_its_own_system_message_keeps_it(make_span):
    graph = reconstruct([_agent(make_span, "a", instructions="Agent rules."),
                         _chat(make_span, "c", "a", system="Call rules.")])
    assert [p.value for p in graph.parameters()] == ["Call rules."]


def test_without_an_agent_ancestor_nothing_is_added(make_span):
    graph = reconstruct([make_span("chain", "r", **{INSTRUCTIONS: _instructions("Not an agent.")}),
                         _chat(make_span, "c", "r")])
    assert graph.parameters() == []


def test_unreadable_agent_instructions_are_ignored(make_span):
    for raw in ("   ", "[1, 2]", "[{\"type\": \"text\"}]", "{\"content\": 3}", 7):
        agent = make_span("invoke_agent a", "a", **{"gen_ai.operation.name": "invoke_agent", INSTRUCTIONS: raw})
        graph = reconstruct([agent, _chat(make_span, "c", "a")])
        assert graph.parameters() == [], raw


def _chat_with_instructions(make_span, system: str, instructions: str):
    span = _chat(make_span, "c", None, system=system)
    return make_span(span.name, "c", **{**span.attributes, INSTRUCTIONS: _instructions(instructions)})


def test_span_instructions_and_a_different_system_message_are_both_kept(make_span):
    graph = reconstruct([_chat_with_instructions(make_span, "You are a close friend.", "You are helpful.")])
    assert sorted(p.value for p in graph.parameters()) == ["You are a close friend.", "You are helpful."]


def test_instructions_copied_into_the_system_message_are_not_a_second_prompt(make_span):
    graph = reconstruct([_chat_with_instructions(make_span, "Be kind.\nAnswer briefly.", "Answer briefly.")])
    assert [p.value for p in graph.parameters()] == ["Be kind.\nAnswer briefly."]
