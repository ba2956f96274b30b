"""Trace readers on spans that OTHER PEOPLE'S exporters recorded in their own test suites.

Each ``*_upstream.otlp.json`` in tests/fixtures/conventions/ keeps the attribute names, values
and structure an upstream project's test snapshot recorded (provenance, license and what was
added in the ``*_upstream.ATTRIBUTION.md`` next to it). The assertions name the recorded texts,
so a reader that stops understanding the real exporter fails here.
"""

from __future__ import annotations

import json
import pathlib

import pytest

from tg_bridge.cli import main
from tg_bridge.reconstruction import load_traces

CONVENTIONS = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "conventions"
UPSTREAM = sorted(p.name[: -len(".otlp.json")] for p in CONVENTIONS.glob("*_upstream.otlp.json"))


def _load(name: str, pool: dict | None = None) -> list:
    return load_traces(CONVENTIONS / f"{name}.otlp.json", parameters={} if pool is None else pool)


def _kind(graph, kind: str) -> list:
    return [n for n in graph.nodes if n.kind == kind]


def _graph_json(name: str, capsys) -> dict:
    assert main(["graph", "--json", str(CONVENTIONS / f"{name}.otlp.json")]) == 0
    return json.loads(capsys.readouterr().out)


def _graph_text(name: str, capsys) -> str:
    assert main(["graph", str(CONVENTIONS / f"{name}.otlp.json")]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("name", UPSTREAM)
def test_every_upstream_fixture_says_where_it_came_from(name):
    note = (CONVENTIONS / f"{name}.ATTRIBUTION.md").read_text(encoding="utf-8")
    assert "ADAPTED FROM" in note and "License" in note and "github.com/" in note


# --- Vercel AI SDK: vercel/ai telemetry snapshots (streamText 2 steps; generateText tool call)


def test_vercel_stream_text_tool_result_is_decoded_and_feeds_the_second_step():
    stream, _ = _load("vercel_ai_upstream")
    assert stream.metadata["root"] == "ai.streamText"
    assert stream.parameters() == []  # the upstream test passes no system prompt: none invented
    (question,) = [n for n in _kind(stream, "input") if n.value == "test-input"]
    first, second = _kind(stream, "llm_output")
    assert first.value == '[tool call] tool1({"value":"value"})' and first.parents == (question,)
    (tool,) = _kind(stream, "tool_result")
    # ai.toolCall.result is JSON.stringify("result1"): the recorded text is "result1", unquoted,
    # and it is the tool message the second doStream call read (no stray input node for it)
    assert tool.value == "result1" and tool.parents == (first,)
    assert tool in second.parents and question in second.parents
    assert [n.value for n in _kind(stream, "input")] == ["test-input"]
    assert second.value == "Hello, world!"
    assert stream.metadata["output"] == "Hello, world!"
    assert stream.metadata["skipped_by_reason"] == {}


def test_vercel_generate_text_tool_call_span_is_a_tool_of_the_call():
    _, generate = _load("vercel_ai_upstream")
    (call,) = _kind(generate, "llm_output")
    assert call.value == '[tool call] tool1({ "value": "value" })'  # input kept as the model wrote it
    (tool,) = _kind(generate, "tool_result")
    assert tool.value == "result1" and tool.parents == (call,)
    assert generate.metadata["skipped_by_reason"] == {}


def test_vercel_upstream_in_the_cli(capsys):
    doc = _graph_json("vercel_ai_upstream", capsys)
    assert doc["parameters"] == []
    values = {n["kind"]: n["value"] for n in doc["traces"][0]["nodes"] if n["kind"] != "input"}
    assert values["tool_result"] == "result1"
    text = _graph_text("vercel_ai_upstream", capsys)
    assert "2 trace(s), 0 parameter(s)" in text and '"\\"result1\\""' not in text


# --- Pydantic AI: pydantic/pydantic-ai tests/test_logfire.py::test_instructions_with_structured_output


def test_pydantic_ai_agent_instructions_are_the_chat_calls_system_parameter():
    (graph,) = _load("pydantic_ai_upstream")
    (system,) = graph.parameters()
    assert system.value == "Here are some instructions"
    (call,) = _kind(graph, "llm_output")
    assert system in call.parents
    assert call.value == '[tool call] final_result({"content": "a"})'
    assert graph.outputs[0].value == '{"content":"a"}' and call in graph.outputs[0].parents
    assert graph.metadata["skipped_by_reason"] == {}


def test_pydantic_ai_upstream_in_the_cli(capsys):
    doc = _graph_json("pydantic_ai_upstream", capsys)
    assert [p["value"] for p in doc["parameters"]] == ["Here are some instructions"]
    assert doc["traces"][0]["metadata"]["skipped_by_reason"] == {}
    text = _graph_text("pydantic_ai_upstream", capsys)
    assert "1 trace(s), 1 parameter(s)" in text and "Here are some instructions" in text


# --- Logfire (current GenAI attributes): pydantic/logfire tests/otel_integrations/test_anthropic.py


def test_logfire_anthropic_system_instructions_are_the_parameter_of_the_call():
    pool: dict = {}
    answered, streamed, log, stream_request, stream_log = _load("logfire_anthropic_upstream", pool)
    (system,) = answered.parameters()
    assert system.value == "You are a helpful assistant."
    (call,) = _kind(answered, "llm_output")
    assert call.value == "Nine" and system in call.parents
    assert [p.value for p in call.parents if not p.requires_grad] == ["What is four plus five?"]
    assert answered.metadata["output"] == "Nine" and answered.metadata["skipped_by_reason"] == {}
    # the streamed call returned nothing: its instructions stay a parameter, the span is counted
    for graph in (streamed, log):
        assert [p.value for p in graph.parameters()] == ["empty response chunk"]
        assert graph.metadata["skipped_by_reason"] == {"llm_without_output": 1}
    # same text under two span names: two addresses (a content hash alone is not an address);
    # the same span name and text in another trace: the same parameter
    assert stream_request.parameters() == [system]
    assert len(pool) == 4


def test_logfire_streamed_answer_is_read_from_response_data():
    *_, stream_request, stream_log = _load("logfire_anthropic_upstream")
    # the request span closes before the stream is read: its answer is logged in another trace
    assert stream_request.metadata["skipped_by_reason"] == {"llm_without_output": 1}
    (answer,) = _kind(stream_log, "llm_output")
    assert answer.value == "The answer is secret"  # response_data.combined_chunk_content
    assert sorted(p.value for p in answer.parents) == ["What is four plus five?", "You are a helpful assistant."]
    assert stream_log.metadata["skipped_by_reason"] == {}


def test_logfire_anthropic_upstream_in_the_cli(capsys):
    doc = _graph_json("logfire_anthropic_upstream", capsys)
    assert [p["value"] for p in doc["parameters"]] == ["You are a helpful assistant.", "empty response chunk",
                                                       "empty response chunk", "You are a helpful assistant."]
    assert [t["metadata"]["skipped_by_reason"] for t in doc["traces"]] == [
        {}, {"llm_without_output": 1}, {"llm_without_output": 1}, {"llm_without_output": 1}, {}]
    text = _graph_text("logfire_anthropic_upstream", capsys)
    assert "5 trace(s), 4 parameter(s)" in text and "The answer is secret" in text
    assert text.count("== skipped spans: 1 (1 LLM call without an output") == 3


# --- OpenInference (BeeAI): Arize-ai/openinference beeai test_instrumentor.py::test_llm_with_tools


def test_openinference_beeai_message_contents_give_the_system_parameter():
    (graph,) = _load("openinference_beeai_upstream")
    (system,) = graph.parameters()
    assert system.value == "Answer the user's question using the available tools."
    (call,) = _kind(graph, "llm_output")
    assert call.value == ('[tool call] OpenMeteoTool({"location_name":"Las Vegas","country":"USA",'
                          '"start_date":null,"end_date":null,"temperature_unit":"celsius"})')
    assert system in call.parents
    assert [p.value for p in call.parents if not p.requires_grad] == ["What's the current weather in Las Vegas?"]
    assert graph.metadata["skipped_by_reason"] == {}


def test_openinference_beeai_upstream_in_the_cli(capsys):
    doc = _graph_json("openinference_beeai_upstream", capsys)
    assert [p["value"] for p in doc["parameters"]] == ["Answer the user's question using the available tools."]
    assert "OpenMeteoTool" in _graph_text("openinference_beeai_upstream", capsys)


# --- Mirascope (whole-span snapshots of real gpt-4o calls): Mirascope/mirascope test_model_stream.py


def test_mirascope_system_instructions_tool_calls_and_json_answer():
    tools, book, failed = _load("mirascope_upstream")
    (system,) = tools.parameters()
    assert system.value == "Use parallel tool calling."
    (call,) = _kind(tools, "llm_output")
    assert call.value == ('[tool call] secret_retrieval_tool({"password": "mellon"})\n'
                          '[tool call] secret_retrieval_tool({"password": "radiance"})')
    assert system in call.parents and tools.metadata["skipped_by_reason"] == {}
    (system,) = book.parameters()
    assert system.value == ("Always respond to the user's query using the "
                            "__mirascope_formatted_output_tool__ tool for structured output.")
    (answer,) = _kind(book, "llm_output")
    assert json.loads(answer.value)["title"] == "THE NAME OF THE WIND" and system in answer.parents
    # the provider raised: no system prompt was recorded, the call without output is counted
    assert failed.parameters() == [] and failed.metadata["skipped_by_reason"] == {"llm_without_output": 1}


def test_mirascope_upstream_in_the_cli(capsys):
    doc = _graph_json("mirascope_upstream", capsys)
    assert len(doc["parameters"]) == 2 and doc["parameters"][0]["value"] == "Use parallel tool calling."
    text = _graph_text("mirascope_upstream", capsys)
    assert "3 trace(s), 2 parameter(s)" in text and "THE NAME OF THE WIND" in text
    assert "== skipped spans: 1 (1 LLM call without an output" in text


# --- OpenAI Agents SDK through Logfire: pydantic/logfire test_openai_agents.py::test_responses_simple


def test_openai_agents_responses_answer_is_read_and_feeds_the_next_run():
    (graph,) = _load("openai_agents_logfire_upstream")
    assert graph.parameters() == []  # Agent(name="agent1") has no instructions upstream
    first, second = _kind(graph, "llm_output")
    # the answer is the Responses API `response.output`; Logfire also lists it as the last
    # assistant event, which is not an input of the call that produced it
    assert first.value == "2 + 2 equals 4." and second.value == "Yes, 2 + 2 equals 4."
    assert [p.value for p in first.parents] == ["2+2?"]
    assert first in second.parents  # the second run replays the first answer
    assert sorted(p.value for p in second.parents if p.kind == "input") == ["2+2?", "4?"]
    assert graph.metadata["skipped_by_reason"] == {}


def test_openai_agents_logfire_upstream_in_the_cli(capsys):
    doc = _graph_json("openai_agents_logfire_upstream", capsys)
    assert doc["traces"][0]["metadata"]["skipped_by_reason"] == {}
    values = [n["value"] for n in doc["traces"][0]["nodes"] if n["kind"] == "llm_output"]
    assert values == ["2 + 2 equals 4.", "Yes, 2 + 2 equals 4."]
    assert "== skipped spans" not in _graph_text("openai_agents_logfire_upstream", capsys)


# --- Logfire's OpenAI Responses API stream: pydantic/logfire test_openai.py::test_responses_stream


def test_logfire_streamed_responses_answer_is_the_trailing_assistant_event():
    request, streamed = _load("logfire_openai_responses_upstream")
    # the request span closes before the stream is read: its answer is logged in another trace
    assert request.metadata["skipped_by_reason"] == {"llm_without_output": 1}
    (answer,) = _kind(streamed, "llm_output")
    assert answer.value == "Four plus five equals **nine**."
    assert [p.value for p in answer.parents] == ["What is four plus five?"]
    assert streamed.metadata["skipped_by_reason"] == {}


def test_logfire_openai_responses_upstream_in_the_cli(capsys):
    doc = _graph_json("logfire_openai_responses_upstream", capsys)
    assert [t["metadata"]["skipped_by_reason"] for t in doc["traces"]] == [{"llm_without_output": 1}, {}]
    assert "Four plus five equals **nine**." in _graph_text("logfire_openai_responses_upstream", capsys)


# --- Logfire before GenAI attributes: pydantic/logfire test_anthropic.py at 603b793 (request_data/response_data)


def test_logfire_request_and_response_data_spans_are_llm_calls():
    answered, stream_request, stream_log = _load("logfire_anthropic_v1_upstream")
    (system,) = answered.parameters()
    assert system.value == "You are a helpful assistant."  # request_data.system
    (call,) = _kind(answered, "llm_output")
    assert call.value == "Nine" and system in call.parents  # response_data.message
    assert [p.value for p in call.parents if not p.requires_grad] == ["What is four plus five?"]
    assert answered.metadata["skipped_by_reason"] == {}
    # a stream: the request span has no answer (counted), the log span has it
    assert [p.value for p in stream_request.parameters()] == ["You are a helpful assistant."]
    assert stream_request.metadata["skipped_by_reason"] == {"llm_without_output": 1}
    (answer,) = _kind(stream_log, "llm_output")
    assert answer.value == "The answer is secret" and stream_log.metadata["skipped_by_reason"] == {}


def test_logfire_anthropic_v1_upstream_in_the_cli(capsys):
    doc = _graph_json("logfire_anthropic_v1_upstream", capsys)
    assert {p["value"] for p in doc["parameters"]} == {"You are a helpful assistant."}
    text = _graph_text("logfire_anthropic_v1_upstream", capsys)
    assert "3 trace(s)" in text and "Nine" in text and "The answer is secret" in text


# --- Microsoft.Extensions.AI OpenTelemetryChatClient: OpenTelemetryChatClientTests.ExpectedInformationLogged_Async


def test_meai_instructions_and_the_system_message_are_both_parameters():
    (graph,) = _load("meai_chat_client_upstream")
    # ChatOptions.Instructions is recorded only as gen_ai.system_instructions; the conversation
    # has its own system message too: the model read both, so both are prompts of the call
    assert sorted(p.value for p in graph.parameters()) == ["You are a close friend.", "You are helpful."]
    (call,) = _kind(graph, "llm_output")
    assert call.value == "The blue whale, I think."
    assert all(p in call.parents for p in graph.parameters())
    assert "What's the biggest animal?" in [p.value for p in call.parents]
    # a recorded call without arguments is a call without arguments, not "(null)"
    assert "[tool call] GetPersonName()" in [p.value for p in call.parents]
    assert graph.metadata["skipped_by_reason"] == {}


def test_meai_chat_client_upstream_in_the_cli(capsys):
    doc = _graph_json("meai_chat_client_upstream", capsys)
    assert sorted(p["value"] for p in doc["parameters"]) == ["You are a close friend.", "You are helpful."]
    assert "1 trace(s), 2 parameter(s)" in _graph_text("meai_chat_client_upstream", capsys)
