"""Logfire's ``request_data`` / ``response_data`` JSON on its LLM spans
(conventions/logfire_data.py): older Logfire wrote nothing else."""

from __future__ import annotations

import json

from tg_bridge.reconstruction import reconstruct


def _span(make_span, request=None, response=None, tags=("LLM",), **attrs):
    if request is not None:
        attrs["request_data"] = json.dumps(request)
    if response is not None:
        attrs["response_data"] = json.dumps(response)
    if tags is not None:
        attrs["logfire.tags"] = tags
    return make_span("Chat Completion with {request_data[model]!r}", "s", **attrs)


def _only(graph, kind):
    return [n for n in graph.nodes if n.kind == kind]


def test_openai_chat_request_with_a_tool_call_answer(make_span):
    request = {"model": "gpt-4o", "messages": [{"role": "system", "content": "Be terse."},
                                               {"role": "user", "content": "Weather in Pune?"}]}
    response = {"message": {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Pune"}'}}]}}
    graph = reconstruct([_span(make_span, request, response)])
    assert [p.value for p in graph.parameters()] == ["Be terse."]
    (call,) = _only(graph, "llm_output")
    assert call.value == '[tool call] weather({"city":"Pune"})'


def test_anthropic_system_blocks_and_a_completions_prompt(make_span):
    blocks = {"system": [{"type": "text", "text": "Answer in French."}],
              "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]}
    graph = reconstruct([_span(make_span, blocks, {"message": {"role": "assistant", "content": "Salut"}})])
    assert [p.value for p in graph.parameters()] == ["Answer in French."]
    assert [n.value for n in _only(graph, "llm_output")] == ["Salut"]
    completion = reconstruct([_span(make_span, {"model": "x", "prompt": "2+2="},
                                    {"combined_chunk_content": "4", "chunk_count": 1})])
    assert [n.value for n in _only(completion, "llm_output")] == ["4"]


def test_an_empty_stream_is_no_answer_and_untagged_spans_are_not_llm_calls(make_span):
    empty = reconstruct([_span(make_span, {"messages": [{"role": "user", "content": "Hi"}]},
                               {"combined_chunk_content": "", "chunk_count": 0})])
    assert empty.metadata["skipped_by_reason"] == {"llm_without_output": 1}
    web = reconstruct([_span(make_span, {"messages": [{"role": "user", "content": "Hi"}]},
                             {"message": {"role": "assistant", "content": "Yo"}}, tags=("http",))])
    assert _only(web, "llm_output") == [] and web.metadata["skipped_by_reason"] == {}


def test_odd_request_and_response_data_are_ignored(make_span):
    for request, response in (("not json", "[1, 2]"), ("[]", "{}"), ('{"messages": 7}', '{"message": "x"}')):
        span = make_span("Message", "s", request_data=request, response_data=response, **{"logfire.tags": ("LLM",)})
        graph = reconstruct([span])
        assert _only(graph, "llm_output") == [] and graph.parameters() == []
