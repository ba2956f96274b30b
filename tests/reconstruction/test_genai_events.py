"""OTel GenAI event-based messages (gen_ai.*.message / gen_ai.choice span events)."""

from __future__ import annotations

import json

from tg_bridge.reconstruction import reconstruct
from tg_bridge.reconstruction.events import event_messages
from tg_bridge.reconstruction.messages import view_of
from tg_bridge.spans import SpanRecord

SYSTEM = "You are a terse assistant. Answer with one word."


def _event(name: str, t: int, **attrs) -> dict:
    return {"name": name, "time_ns": t, "attributes": attrs}


def _chat_span(events, *, span_id="s1", parent=None, start=0, **attrs) -> SpanRecord:
    base = {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-x"}
    base.update(attrs)
    return SpanRecord(trace_id="t1", span_id=span_id, parent_id=parent, name="chat gpt-x",
                      start_ns=start, attributes=base, events=tuple(events))  # fmt: skip


def test_event_messages_normalizes_roles_json_content_tool_calls_and_choices():
    calls = [{"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "x"}'}}]
    events = [
        _event("gen_ai.user.message", 20, content=json.dumps([{"type": "text", "text": "Hi"}])),
        _event("gen_ai.system.message", 10, content=SYSTEM),
        _event("gen_ai.assistant.message", 30, tool_calls=json.dumps(calls)),
        _event("gen_ai.tool.message", 40, content='"42"', id="c1"),
        _event("gen_ai.user.message", 50, content='{"not": "text parts"}'),
        _event("gen_ai.choice", 60, index=1, finish_reason="stop", message=json.dumps({"content": "second"})),
        _event("gen_ai.choice", 60, index=0, finish_reason="stop",
               message=json.dumps({"role": "assistant", "content": "first"})),
        _event("unrelated.event", 70, content="ignored"),
        "not an event",
    ]  # fmt: skip
    ins, outs = event_messages(events)
    assert [m["role"] for m in ins] == ["system", "user", "assistant", "tool", "user"]
    assert ins[0]["content"] == SYSTEM
    assert ins[1]["content"] == "Hi"
    assert ins[2]["parts"] == [{"type": "tool_call", "name": "lookup", "arguments": '{"q": "x"}', "id": "c1"}]
    assert ins[3]["parts"] == [{"type": "tool_call_response", "id": "c1", "response": "42"}]
    assert ins[4]["content"] == '{"not": "text parts"}'  # JSON that is not a message body stays text
    assert [m["content"] for m in outs] == ["first", "second"]
    assert outs[1]["role"] == "assistant"


def test_choice_forms_flattened_and_bare_string():
    _, outs = event_messages([_event("gen_ai.choice", 1, **{"message.content": "flat", "message.role": "assistant"})])
    assert outs[0]["content"] == "flat"
    _, outs = event_messages([_event("gen_ai.choice", 1, message="plain answer")])
    assert outs[0]["content"] == "plain answer"
    _, outs = event_messages([_event("gen_ai.choice", 1, finish_reason="stop")])
    assert outs == []


def test_view_reads_events_only_without_attribute_messages():
    events = (_event("gen_ai.system.message", 1, content=SYSTEM), _event("gen_ai.user.message", 2, content="Hi"),
              _event("gen_ai.choice", 3, index=0, message=json.dumps({"content": "Hello"})))  # fmt: skip
    view = view_of("chat", {"gen_ai.system": "openai"}, events)
    assert view.kind == "llm"
    assert [(m.role, m.content) for m in view.messages] == [("system", SYSTEM), ("user", "Hi")]
    assert view.output_value == "Hello"
    attrs = {"gen_ai.operation.name": "chat",
             "gen_ai.input.messages": json.dumps([{"role": "user", "content": "From attributes"}])}  # fmt: skip
    view = view_of("chat", attrs, events)
    assert [m.content for m in view.messages] == ["From attributes"]  # attributes win
    assert view.output_value == "Hello"  # but the answer may still come from the choice event
    assert view_of("chat", {}, ()).kind == "other"


def test_event_span_becomes_llm_call_with_system_prompt_parameter():
    events = [
        _event("gen_ai.system.message", 1, content=SYSTEM),
        _event("gen_ai.user.message", 2, content="Capital of France?"),
        _event("gen_ai.choice", 3, index=0, finish_reason="stop",
               message=json.dumps({"role": "assistant", "content": "Paris"})),
    ]  # fmt: skip
    pool: dict = {}
    graph = reconstruct([_chat_span(events, **{"gen_ai.operation.name": "chat"})], parameters=pool)
    [param] = graph.parameters()
    assert param.value == SYSTEM and param.requires_grad
    assert param.metadata["message_role"] == "system"
    [out] = [n for n in graph.nodes if n.kind == "llm_output"]
    assert out.value == "Paris" and out.op.kind == "llm_call"
    assert out.parents[0] is param
    assert [n.value for n in out.parents[1:]] == ["Capital of France?"]
    assert out.op.attrs["model"] == "gpt-x"
    assert [m["role"] for m in out.op.attrs["messages"]] == ["system", "user"]
    # the same system prompt in another trace is the same pooled parameter
    graph2 = reconstruct([_chat_span(events, span_id="s2")], parameters=pool)
    assert graph2.parameters()[0] is param


def test_tool_round_trip_from_events_links_tool_call_to_the_llm():
    calls = [{"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}]
    first = [
        _event("gen_ai.system.message", 1, content=SYSTEM),
        _event("gen_ai.user.message", 2, content="Weather in Oslo?"),
        _event("gen_ai.choice", 3, index=0, finish_reason="tool_calls",
               message=json.dumps({"role": "assistant", "tool_calls": calls})),
    ]  # fmt: skip
    tool = SpanRecord(trace_id="t1", span_id="tool", parent_id="root", name="execute_tool weather", start_ns=5,
                      attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "weather",
                                  "gen_ai.tool.call.result": "rainy"})  # fmt: skip
    second = [*first[:2], _event("gen_ai.assistant.message", 6, tool_calls=json.dumps(calls)),
              _event("gen_ai.tool.message", 7, content="rainy", id="c1"),
              _event("gen_ai.choice", 8, index=0, message=json.dumps({"content": "Rainy."}))]  # fmt: skip
    root = SpanRecord(trace_id="t1", span_id="root", parent_id=None, name="agent", start_ns=0,
                      attributes={"input.value": "Weather in Oslo?", "output.value": "Rainy."})  # fmt: skip
    graph = reconstruct([root, _chat_span(first, parent="root", start=1), tool,
                         _chat_span(second, span_id="s2", parent="root", start=6)])  # fmt: skip
    outs = [n for n in graph.nodes if n.kind == "llm_output"]
    assert len(outs) == 2
    [result] = [n for n in graph.nodes if n.kind == "tool_result"]
    assert result.parents[0] is outs[0]  # the tool call came from the first LLM's choice
    assert any(p is result for p in outs[1].parents)  # and its result fed the second call
    assert len(graph.parameters()) == 1  # one system prompt shared by both calls


def test_malformed_events_never_crash():
    odd = [{"name": "gen_ai.user.message", "attributes": None}, {"name": 5}, {"attributes": {"content": 1}},
           _event("gen_ai.choice", "late", index=True, message="[1, 2"),
           _event("gen_ai.assistant.message", 1, tool_calls="{bad json"),
           _event("gen_ai.tool.message", 2, content=None, id=7)]  # fmt: skip
    ins, outs = event_messages(odd)
    assert [m["role"] for m in ins] == ["tool"]
    assert outs[0]["content"] == "[1, 2"
    graph = reconstruct([_chat_span(odd)])
    assert graph.metadata["skipped_spans"] == 0


def test_messages_attributes_without_an_operation_name_are_an_llm_call(make_span):
    """A writer that records ``gen_ai.input.messages`` / ``output.messages`` but omits
    ``gen_ai.operation.name`` still made a model call: read it, never drop it silently."""
    system = [{"role": "system", "parts": [{"type": "text", "content": "Answer in one word."}]}]
    user = [{"role": "user", "parts": [{"type": "text", "content": "Capital of Peru?"}]}]
    answer = [{"role": "assistant", "parts": [{"type": "text", "content": "Lima"}]}]
    graph = reconstruct([make_span("chat", "c", None, **{
        "gen_ai.input.messages": json.dumps(system + user),
        "gen_ai.output.messages": json.dumps(answer)})])
    (param,) = graph.parameters()
    assert param.value == "Answer in one word."
    (call,) = [n for n in graph.nodes if n.kind == "llm_output"]
    assert call.value == "Lima" and param in call.parents

    only_input = reconstruct([make_span("chat", "c", None, **{
        "gen_ai.input.messages": json.dumps(system + user)})])
    assert [p.value for p in only_input.parameters()] == ["Answer in one word."]
    assert only_input.metadata["skipped_by_reason"] == {"llm_without_output": 1}
