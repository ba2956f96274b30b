"""Third-party trace conventions, each on its fixture (tests/fixtures/conventions/, provenance
in the *.ATTRIBUTION.md next to each): the prompts are found as parameters, the answer is
connected to the LLM call that produced it, and unusable spans are counted by reason."""

from __future__ import annotations

import json
import pathlib

import pytest

from tg_bridge import semconv as sc
from tg_bridge.reconstruction import load_traces, reconstruct

CONVENTIONS = (
    pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "conventions"
)


def by_kind(graph, kind: str) -> list:
    return [n for n in graph.nodes if n.kind == kind]


def _load(name: str, pool: dict | None = None):
    return load_traces(
        CONVENTIONS / f"{name}.otlp.json", parameters=pool if pool is not None else {}
    )


@pytest.mark.parametrize(
    "name",
    sorted(p.name[: -len(".otlp.json")] for p in CONVENTIONS.glob("*.otlp.json")),
)
def test_every_fixture_has_its_attribution_next_to_it(name):
    assert len(list(CONVENTIONS.glob("*.otlp.json"))) >= 8
    note = (CONVENTIONS / f"{name}.ATTRIBUTION.md").read_text(encoding="utf-8")
    assert "License" in note  # whose terms the fixture keeps
    assert "BUILT BY HAND" in note or "ADAPTED FROM" in note  # and how it was made


def _final_llm_output(graph):
    out = graph.outputs[0]
    return (
        out
        if out.kind == "llm_output"
        else next(p for p in out.parents if p.kind == "llm_output")
    )


def test_beeai_start_and_success_spans_are_one_call_each():
    pool: dict = {}
    agent, failed = _load("beeai_start_success", pool)
    (system,) = agent.parameters()
    assert system.value.startswith("You are a helpful assistant. Use the tools")
    first, second = by_kind(agent, "llm_output")
    assert (
        system in first.parents and system in second.parents
    )  # one parameter, both calls
    assert "OpenMeteoTool" in first.value  # the call recovered from output.value
    (tool,) = by_kind(agent, "tool_result")
    assert tool.parents == (first,) and "temperature_2m" in tool.value
    assert tool in second.parents
    assert second.value == "It is 11.4 °C in Prague right now (source: Open-Meteo)."
    assert _final_llm_output(agent) is second
    assert (
        agent.metadata["skipped_by_reason"] == {}
        and agent.metadata["skipped_spans"] == 0
    )
    # the second trace's call failed: start span only. Its prompt is kept and the span counted.
    assert failed.metadata["skipped_by_reason"] == {"llm_without_output": 1}
    assert [p.value for p in failed.parameters()] == [
        "You translate English into formal German. Reply with the translation only."
    ]
    assert len(pool) == 2


def test_agno_raw_chat_completion_output_is_unwrapped_and_connected():
    (graph,) = _load("agno_raw_completion")
    (system,) = graph.parameters()
    assert "You are a stock price agent." in system.value
    first, second = by_kind(graph, "llm_output")
    assert first.value == '[tool call] get_current_stock_price({"symbol": "TSLA"})'
    (tool,) = by_kind(graph, "tool_result")
    assert tool.parents == (first,) and tool.value == "248.5000"
    assert second.value.startswith("Tesla (TSLA) last traded at $248.50")
    assert "chatcmpl" not in second.value
    assert graph.outputs[0] is second and graph.metadata["output"] == second.value
    assert set(second.parents) >= {system, first, tool}
    assert graph.metadata["skipped_spans"] == 0


def test_vercel_ai_sdk_prompt_messages_response_and_tool_call():
    (graph,) = _load("vercel_ai_sdk")
    (system,) = graph.parameters()
    assert system.value.startswith("You are a concise travel assistant.")
    first, second = by_kind(graph, "llm_output")
    assert first.op.attrs["model"] == "gpt-4o-mini"
    assert first.value == '[tool call] weather({"location":"San Francisco"})'
    (tool,) = by_kind(graph, "tool_result")
    assert tool.parents == (first,) and tool.op.attrs["tool"] == "weather"
    assert (
        tool in second.parents
    )  # the tool-result part quoted in the next call matches
    assert graph.outputs[0] is second and second.value.startswith("It's 61°F and foggy")
    (question,) = by_kind(graph, "input")
    assert question.value == "I'm in San Francisco today. What should I wear?"
    assert graph.metadata["skipped_spans"] == 0


def test_pydantic_ai_agent_run_chat_spans_and_tool_without_operation_name():
    tools_run, events_run = _load("pydantic_ai")
    (system,) = tools_run.parameters()
    assert system.value.startswith(
        "You are a weather assistant for sailors."
    )  # gen_ai.system_instructions
    first, second = by_kind(tools_run, "llm_output")
    (tool,) = by_kind(tools_run, "tool_result")  # 'running tool': gen_ai.tool.name only
    assert tool.op.attrs["tool"] == "harbour_forecast" and tool.parents == (first,)
    assert tool.value == "wind 14 kn W, gusts 22 kn, at 15:00"
    assert tool in second.parents and tools_run.outputs[0] is second
    assert first.op.attrs["tools"] == [
        {
            "name": "harbour_forecast",
            "description": "Wind forecast for a harbour at an hour.",
        }
    ]
    assert (
        tools_run.metadata["input"] == "Is it safe to sail out of Kiel this afternoon?"
    )
    assert tools_run.metadata["skipped_spans"] == 0
    # Logfire's event_mode="attributes": the GenAI events ride in an `events` JSON attribute
    (coach,) = events_run.parameters()
    assert coach.value == "You are a sailing coach. Keep answers under 20 words."
    (answer,) = by_kind(events_run, "llm_output")
    assert (
        answer.value == "In 25 knots use a reefed main and a storm jib."
        and coach in answer.parents
    )
    assert events_run.outputs[0] is answer


def test_langfuse_observation_attributes_stored_as_strings():
    (graph,) = _load("langfuse_sdk")
    (system,) = graph.parameters()
    assert system.value.startswith("Answer only from the context.")
    docs = by_kind(graph, "document")
    assert [d.value for d in docs] == [
        "Kiel Week 2025 runs from 21 to 29 June.",
        "The first races of Kiel Week start on the Saturday morning.",
    ]
    (answer,) = by_kind(graph, "llm_output")
    assert (
        answer.value == "Kiel Week 2025 starts on Saturday 21 June."
    )  # JSON-encoded string unwrapped
    assert answer.op.attrs["model"] == "gpt-4o-mini"
    (context,) = [p for p in answer.parents if p.kind == "value"]
    assert set(docs) <= set(
        context.parents
    )  # the prompt's context came from the retriever
    assert graph.outputs[0] is answer
    assert graph.metadata["input"] == "When does the Kiel Week regatta start in 2025?"
    assert graph.metadata["skipped_by_reason"] == {"tool_without_result": 1}


def test_deprecated_gen_ai_prompt_and_completion():
    openlit, json_strings = _load("genai_deprecated_prompt")
    (answer,) = by_kind(
        openlit, "llm_output"
    )  # event form, OpenLIT's "role: text" prompt
    assert answer.value.startswith(
        "LLM Observability stands for logs, metrics, and traces"
    )
    (question,) = answer.parents
    assert question.value == "What is LLM Observability?"
    assert openlit.metadata["skipped_spans"] == 0
    (system,) = json_strings.parameters()
    assert system.value == "You are an SRE mentor. Explain terms in two sentences."
    (out,) = by_kind(json_strings, "llm_output")
    assert out.value.startswith("An SLO is a target") and system in out.parents


def test_current_genai_attributes_events_system_instructions_and_tool_definitions():
    pool: dict = {}
    attributes_run, events_run = _load("genai_current", pool)
    # the same instructions, read from attributes (trace 3) and from the details event (trace 4)
    assert {p.value for p in pool.values()} == {
        "You are a support agent for Contoso. Look up the order before answering and never promise refunds."
    }
    for graph, tool_name in (
        (attributes_run, "get_order_status"),
        (events_run, "cancel_order"),
    ):
        (system,) = graph.parameters()
        first, second = by_kind(graph, "llm_output")
        (tool,) = by_kind(graph, "tool_result")
        assert tool.op.attrs["tool"] == tool_name and tool.parents == (first,)
        assert system in first.parents and tool in second.parents
        assert graph.outputs[0] is second
        assert [t["name"] for t in first.op.attrs["tools"]] == ["get_order_status"]
        assert graph.metadata["skipped_spans"] == 0


def test_vendor_spans_from_langfuse_tests():
    vercel, generation = _load("langfuse_vendor_spans")
    (answer,) = by_kind(
        vercel, "llm_output"
    )  # ai.operationId "generateText", no "ai." prefix
    assert answer.value == "Hello! How can I help you today?"
    assert [p.value for p in answer.parents] == ["Say hello"] and answer.op.attrs[
        "model"
    ] == "gpt-4-turbo"
    (out,) = by_kind(
        generation, "llm_output"
    )  # input/output are JSON objects, not messages
    assert (
        out.value == '{"result": "test output"}'
        and out.op.attrs["model"] == "claude-3-opus"
    )
    assert [p.value for p in out.parents] == ['{"query": "test input"}']
    assert generation.metadata["missing_parents"] == 1
    assert vercel.metadata["skipped_spans"] == generation.metadata["skipped_spans"] == 0


# -- behaviours without a fixture -----------------------------------------------------------------
def test_llm_span_with_messages_but_no_output_keeps_its_prompt_and_is_counted(
    make_span,
):
    spans = [
        make_span("chain", "r", **{sc.SPAN_KIND: "CHAIN", sc.INPUT_VALUE: "hi"}),
        make_span(
            "llm",
            "l",
            "r",
            start=1,
            **{
                sc.SPAN_KIND: "LLM",
                "llm.input_messages.0.message.role": "system",
                "llm.input_messages.0.message.content": "Be brief.",
                "llm.input_messages.1.message.role": "user",
                "llm.input_messages.1.message.content": "hi",
            },
        ),
    ]
    g = reconstruct(spans)
    assert [p.value for p in g.parameters()] == ["Be brief."]
    assert (
        g.metadata["skipped_by_reason"] == {"llm_without_output": 1}
        and g.metadata["skipped_spans"] == 1
    )


def test_skipped_spans_are_counted_by_reason(make_span):
    spans = [
        make_span("root", "r", **{sc.SPAN_KIND: "CHAIN", sc.INPUT_VALUE: "q"}),
        make_span("empty llm", "a", "r", start=1, **{sc.SPAN_KIND: "LLM"}),
        make_span(
            "answer only",
            "b",
            "r",
            start=2,
            **{sc.SPAN_KIND: "LLM", sc.OUTPUT_VALUE: "x"},
        ),
        make_span(
            "retriever",
            "c",
            "r",
            start=3,
            **{sc.SPAN_KIND: "RETRIEVER", sc.INPUT_VALUE: "q"},
        ),
        make_span(
            "tool", "d", "r", start=4, **{sc.SPAN_KIND: "TOOL", sc.TOOL_NAME: "t"}
        ),
    ]
    g = reconstruct(spans)
    assert g.metadata["skipped_by_reason"] == {
        "llm_empty": 1,
        "llm_without_input": 1,
        "retriever_without_documents": 1,
        "tool_without_result": 1,
    }
    assert g.metadata["skipped_spans"] == 4


def test_responses_api_output_is_unwrapped(make_span):
    body = (
        '{"object": "response", "output": [{"type": "message", "role": "assistant", '
        '"content": [{"type": "output_text", "text": "Forty-two."}]}]}'
    )
    spans = [
        make_span(
            "llm",
            "l",
            **{
                sc.SPAN_KIND: "LLM",
                sc.INPUT_VALUE: "What is six times seven?",
                sc.OUTPUT_VALUE: body,
            },
        )
    ]
    (out,) = by_kind(reconstruct(spans), "llm_output")
    assert out.value == "Forty-two."


@pytest.mark.parametrize("attrs", [
    {"pydantic_ai.all_messages": "[1, 2, {]"},
    {"pydantic_ai.all_messages": '[{"role": 5, "parts": "nope"}, null, "x"]', "final_result": 3},
    {"ai.operationId": "ai.generateText.doGenerate", "ai.prompt.messages": '[{"role": "user", "content": [1, {"type": "tool-call"}]}]',
     "ai.response.toolCalls": '{"not": "a list"}'},
    {"ai.operationId": "ai.toolCall", "ai.toolCall.args": '{"a": [[[[[]]]]]}'},
    {"langfuse.observation.type": "generation", "langfuse.observation.input": '"\\"[{\\\\\\"role\\\\\\": 1}]\\""',
     "langfuse.observation.output": "[]"},
    {"langfuse.observation.type": "retriever", "langfuse.observation.output": '[{"score": "high"}, 7]'},
    {"gen_ai.prompt": "{", "gen_ai.completion": "[null]", "gen_ai.operation.name": "chat"},
    {"gen_ai.tool.definitions": '[{"function": 3}, "x", {"name": ""}]', "gen_ai.operation.name": "chat"},
    {"events": '[{"event.name": 1}, {"event.name": "gen_ai.choice", "message": "[[["}]'},
    {"target": "backend.x.success", sc.SPAN_KIND: "LLM", sc.OUTPUT_VALUE: '[{"content": [{"type": "tool-call"}]}]'},
])  # fmt: skip
def test_hostile_convention_attributes_never_raise(make_span, attrs):
    spans = [
        make_span("root", "r", **{sc.SPAN_KIND: "CHAIN", sc.INPUT_VALUE: "q"}),
        make_span("odd", "o", "r", start=1, **attrs),
    ]
    g = reconstruct(spans)
    assert g.metadata["skipped_by_reason"].get("unreadable_attributes", 0) == 0
    assert g.metadata["skipped_by_reason"].get("unreadable_content", 0) == 0


def test_a_start_half_never_pairs_across_traces(make_span):
    start = {
        sc.SPAN_KIND: "LLM",
        "llm.input_messages.0.message.role": "user",
        "llm.input_messages.0.message.content": "hello",
    }
    done = {
        sc.SPAN_KIND: "LLM",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": "hi",
    }
    spans = [
        make_span("start", "a", trace="t1", **start),
        make_span("success", "b", trace="t2", start=1, **done),
    ]
    g = reconstruct(spans)
    assert by_kind(g, "llm_output") == []
    assert g.metadata["traces"][0]["trace_id"] == "t1"
    assert sum(1 for t in g.metadata["trace_ids"]) == 2


def test_details_event_with_structured_otlp_values(tmp_path):
    """The details event may carry the messages as OTLP arrays of kvlists, not JSON strings."""

    def kv(obj):
        if isinstance(obj, dict):
            return {
                "kvlistValue": {
                    "values": [{"key": k, "value": kv(v)} for k, v in obj.items()]
                }
            }
        if isinstance(obj, list):
            return {"arrayValue": {"values": [kv(v) for v in obj]}}
        return {"stringValue": obj}

    event_attrs = {
        "gen_ai.system_instructions": [{"type": "text", "content": "Reply in French."}],
        "gen_ai.input.messages": [
            {"role": "user", "parts": [{"type": "text", "content": "Good morning"}]}
        ],
        "gen_ai.output.messages": [
            {"role": "assistant", "parts": [{"type": "text", "content": "Bonjour"}]}
        ],
    }
    span = {
        "traceId": "1" * 32, "spanId": "2" * 16, "name": "chat m", "kind": 3,
        "startTimeUnixNano": "1", "endTimeUnixNano": "2",
        "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}}],
        "events": [{"timeUnixNano": "1", "name": "gen_ai.client.inference.operation.details",
                    "attributes": [{"key": k, "value": kv(v)} for k, v in event_attrs.items()]}],
    }  # fmt: skip
    path = tmp_path / "structured.json"
    path.write_text(
        json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}),
        encoding="utf-8",
    )
    (graph,) = load_traces(path)
    (system,) = graph.parameters()
    assert system.value == "Reply in French."
    (out,) = by_kind(graph, "llm_output")
    assert out.value == "Bonjour" and [p.value for p in out.parents] == [
        "Reply in French.",
        "Good morning",
    ]


def test_system_instructions_attribute_as_an_otlp_array(make_span):
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system_instructions": (
            '{"type": "text", "content": "Answer in haiku."}',
        ),
        "gen_ai.input.messages": (
            '{"role": "user", "parts": [{"type": "text", "content": "Rain?"}]}',
        ),
        "gen_ai.output.messages": '[{"role": "assistant", "parts": [{"type": "text", "content": "Clouds gather"}]}]',
    }
    g = reconstruct([make_span("chat m", "c", **attrs)])
    assert [p.value for p in g.parameters()] == ["Answer in haiku."]


def test_an_llm_span_with_its_own_input_value_is_never_a_success_half(make_span):
    failed = {
        sc.SPAN_KIND: "LLM",
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": "Be terse.",
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.content": "a",
    }
    whole = {sc.SPAN_KIND: "LLM", sc.INPUT_VALUE: "b", sc.OUTPUT_VALUE: "B!"}
    spans = [
        make_span("root", "r", **{sc.SPAN_KIND: "CHAIN"}),
        make_span("first", "f", "r", start=1, **failed),
        make_span("second", "s", "r", start=2, **whole),
    ]
    g = reconstruct(spans)
    (out,) = by_kind(g, "llm_output")
    assert out.value == "B!" and [p.value for p in out.parents] == ["b"]
    assert g.metadata["skipped_by_reason"] == {"llm_without_output": 1}
