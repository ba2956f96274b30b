"""Hostile input against every trace convention reader.

First the crashes a fuzz run found, each pinned by a test; then property tests that take a
valid span set of each convention (the fixtures in tests/fixtures/conventions plus hand-made
OpenInference and GenAI event spans) and mutate it: wrong types, huge or deeply nested or
invalid JSON, lone surrogates and control characters, odd numbers, odd flattened-key
indexes, duplicate keys, missing parents and parent cycles. Contract: the readers
(:func:`view_of`) never raise; :func:`reconstruct` and :func:`load_traces` raise nothing but
TraceFormatError; every span that cannot be used is counted by reason; ``tg-bridge graph
FILE --json`` exits 0/1/2 with one line on error and writes valid UTF-8.

Derandomized: the same examples on every run. ``TG_BRIDGE_FUZZ_EXAMPLES`` sets the examples
per property (default 200, a few seconds); e.g. 3000 for a longer hunt (about 2 minutes).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import logging
import math
import os
import pathlib
from collections.abc import Iterator
from typing import get_args

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from tg_bridge import cli
from tg_bridge._utf8 import utf8_safe
from tg_bridge.exceptions import TraceFormatError
from tg_bridge.graph import Graph
from tg_bridge.reconstruction import iter_graphs, load_traces, reconstruct
from tg_bridge.reconstruction.messages import view_of
from tg_bridge.reconstruction.skips import SkipReason
from tg_bridge.spans import SpanRecord
from tg_bridge.traces import otlp_json, read_spans
from tg_bridge.variable import content_hash


def _span(span_id: str, parent: str | None = None, *, start: int = 0, events: tuple = (),
          **attrs: object) -> SpanRecord:  # fmt: skip
    return SpanRecord(trace_id="t1", span_id=span_id, parent_id=parent, name=f"span-{span_id}",
                      start_ns=start, attributes=attrs, events=events)  # fmt: skip


def _llm(**extra: object) -> dict[str, object]:
    attrs: dict[str, object] = {
        "openinference.span.kind": "LLM",
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": "You are terse.",
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.content": "Hi",
        "output.value": "Hello",
    }
    attrs.update(extra)
    return attrs


# -- pinned: each crash the fuzz found ---------------------------------------------------------

def test_a_retrieval_score_that_overflows_float_is_no_score():
    attrs = {
        "openinference.span.kind": "RETRIEVER", "input.value": "q",
        "retrieval.documents.0.document.content": "doc zero",
        "retrieval.documents.0.document.score": 10**400,
        "retrieval.documents.1.document.content": "doc one",
        "retrieval.documents.1.document.score": 0.5,
        "retrieval.documents.2.document.content": "doc two",
        "retrieval.documents.2.document.score": float("nan"),  # not a score either (not JSON)
    }  # fmt: skip
    view = view_of("retriever", attrs)
    assert [(d.content, d.score) for d in view.documents] == [("doc zero", None), ("doc one", 0.5),
                                                              ("doc two", None)]  # fmt: skip
    graph = reconstruct([_span("r", **attrs)])
    assert [n.value for n in graph.nodes if n.kind == "document"] == ["doc zero", "doc one", "doc two"]


def test_a_langfuse_document_score_that_overflows_float_is_no_score():
    attrs = {"langfuse.observation.type": "retriever",
             "langfuse.observation.output": json.dumps([{"content": "d", "score": 10**400}])}  # fmt: skip
    assert [(d.content, d.score) for d in view_of("retriever", attrs).documents] == [("d", None)]


def test_beeai_success_content_that_is_a_number_keeps_the_call():
    root = _span("r", **{"openinference.span.kind": "AGENT", "input.value": "Hi"})
    start = _span("a", "r", start=1, **{
        "openinference.span.kind": "LLM", "target": "backend.chat.start",
        "llm.input_messages.0.message.role": "system", "llm.input_messages.0.message.content": "Be brief.",
        "llm.input_messages.1.message.role": "user", "llm.input_messages.1.message.content": "Hi"})  # fmt: skip
    success = _span("b", "r", start=2, **{
        "openinference.span.kind": "LLM", "target": "backend.chat.success",
        "llm.output_messages.0.message.role": "assistant", "llm.output_messages.0.message.content": "",
        "output.value": json.dumps([{"role": "assistant", "content": 5}])})  # fmt: skip
    graph = reconstruct([root, start, success])
    assert [p.value for p in graph.parameters()] == ["Be brief."]
    assert len([n for n in graph.nodes if n.kind == "llm_output"]) == 1
    assert graph.metadata["skipped_spans"] == 0


def test_an_event_named_by_a_list_or_dict_is_ignored_not_the_whole_span():
    for odd in (["gen_ai.user.message"], {"name": "gen_ai.user.message"}, 7, None):
        events = (
            {"name": odd, "attributes": {"content": "odd"}},
            {"name": "gen_ai.client.inference.operation.details", "attributes": {}},
            {"name": "gen_ai.system.message", "time_ns": 1, "attributes": {"content": "Be kind."}},
            {"name": "gen_ai.user.message", "time_ns": 2, "attributes": {"content": "Hi"}},
            {"name": "gen_ai.choice", "time_ns": 3, "attributes": {"message": "Hello"}},
            {"name": odd, "attributes": {"gen_ai.prompt": "odd"}},
        )
        for first in (events, events[::-1]):  # the odd event before and after the good ones
            view = view_of("chat", {"gen_ai.system": "openai"}, first)
            assert [(m.role, m.content) for m in view.messages] == [("system", "Be kind."), ("user", "Hi")]
            assert view.output_value == "Hello"


def test_event_content_nested_too_deep_is_read_as_text_not_a_crash():
    deep_list = "[" * 600 + '"x"' + "]" * 600
    nested: object = "x"
    for _ in range(600):  # a structure as some readers hand it over, not a JSON string
        nested = [nested]
    for content, read_as in ((deep_list, [deep_list]), (nested, [])):
        events = ({"name": "gen_ai.user.message", "attributes": {"content": content}},
                  {"name": "gen_ai.choice", "attributes": {"message": "ok"}})  # fmt: skip
        view = view_of("chat", {}, events)  # raised RecursionError: the whole span was lost
        assert [m.content for m in view.messages] == read_as  # JSON without text parts is text
        assert view.output_value == "ok"
    shallow = json.dumps([[[{"type": "text", "text": "found"}]]])
    view = view_of("chat", {}, ({"name": "gen_ai.user.message", "attributes": {"content": shallow}},))
    assert [m.content for m in view.messages] == ["found"]  # ordinary nesting still reads


def test_flattened_indexes_are_ascii_digits_of_at_most_nine():
    odd_keys = {
        "llm.input_messages.٣.message.content": "arabic three",
        "llm.input_messages.３.message.content": "fullwidth three",
        "llm.input_messages.99999999999999.message.content": "fourteen digits",
        "llm.input_messages." + "9" * 5000 + ".message.content": "five thousand digits",
        "llm.input_messages.-1.message.content": "negative",
        "gen_ai.prompt.٢.content": "arabic two",
        "llm.output_messages." + "1" * 10 + ".message.content": "ten digits",
        "llm.input_messages.0.message.tool_calls." + "7" * 5000 + ".tool_call.function.name": "f",
        "llm.input_messages.0.message.tool_calls.٣.tool_call.function.name": "g",
    }
    view = view_of("llm", _llm(**odd_keys))
    assert [m.content for m in view.messages] == ["You are terse.", "Hi"]
    assert view.messages[0].tool_calls == ()
    assert view.output_value == "Hello"
    nine = view_of("llm", _llm(**{"llm.input_messages.999999999.message.content": "last"}))
    assert [m.content for m in nine.messages] == ["You are terse.", "Hi", "last"]


def test_a_lone_surrogate_hashes_stably_and_the_span_is_used():
    assert content_hash("plain é") == content_hash("plain é")
    # text without surrogates hashes as plain UTF-8, as before (parameter keys do not change)
    assert content_hash("plain é") == hashlib.sha256("plain é".encode()).hexdigest()
    assert len(content_hash("a\ud800")) == 64
    assert content_hash("a\ud800") != content_hash("a\udfff") != content_hash("a")
    graph = reconstruct([_span("s", **_llm(**{"llm.input_messages.0.message.content": "Be \ud800 terse."}))])
    assert [p.value for p in graph.parameters()] == ["Be \ud800 terse."]
    assert graph.metadata["skipped_spans"] == 0


# -- properties over mutated span sets of every convention -------------------------------------

EXAMPLES = int(os.environ.get("TG_BRIDGE_FUZZ_EXAMPLES", "200"))  # the file: a few seconds here
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])  # fmt: skip
FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures"
SKIP_REASONS = set(get_args(SkipReason))


def _handmade() -> dict[str, list[SpanRecord]]:
    """Shapes no fixture file has: OpenInference retriever/tool/template spans, GenAI events."""
    oi = [
        _span("1", **{"openinference.span.kind": "CHAIN", "input.value": "q?", "output.value": "Hello"}),
        _span("2", "1", start=1, **{"openinference.span.kind": "RETRIEVER", "input.value": "q?",
                                    "retrieval.documents.0.document.content": "doc",
                                    "retrieval.documents.0.document.score": 0.5,
                                    "retrieval.documents.0.document.id": "d0"}),  # fmt: skip
        _span("3", "1", start=2, **{"openinference.span.kind": "PROMPT", "input.value": '{"q": "q?"}',
                                    "llm.prompt_template.template": "Answer {q} from {context}",
                                    "llm.prompt_template.variables": '{"q": "q?", "context": "doc"}',
                                    "output.value": "Answer q? from doc"}),  # fmt: skip
        _span("4", "1", start=3, **_llm(**{
            "llm.input_messages.1.message.content": "Answer q? from doc",
            "llm.input_messages.2.message.role": "assistant",
            "llm.input_messages.2.message.tool_calls.0.tool_call.function.name": "lookup",
            "llm.input_messages.2.message.tool_calls.0.tool_call.function.arguments": '{"x": 1}',
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": "Hello"})),  # fmt: skip
        _span("5", "1", start=4, **{"openinference.span.kind": "TOOL", "tool.name": "lookup",
                                    "input.value": '{"x": 1}', "output.value": "42"}),  # fmt: skip
    ]
    events = (
        {"name": "gen_ai.system.message", "time_ns": 1, "attributes": {"content": "Be kind."}},
        {"name": "gen_ai.user.message", "time_ns": 2, "attributes": {"content": '[{"type": "text", "text": "Hi"}]'}},
        {"name": "gen_ai.assistant.message", "time_ns": 3,
         "attributes": {"tool_calls": '[{"id": "c1", "function": {"name": "f", "arguments": "{}"}}]'}},
        {"name": "gen_ai.tool.message", "time_ns": 4, "attributes": {"content": "42", "id": "c1"}},
        {"name": "gen_ai.choice", "time_ns": 5, "attributes": {"index": 0, "message": '{"content": "Hello"}'}},
        {"name": "gen_ai.content.prompt", "attributes": {"gen_ai.prompt": "user: Hi"}},
        {"name": "gen_ai.client.inference.operation.details",
         "attributes": {"gen_ai.system_instructions": '[{"type": "text", "content": "Be kind."}]'}},
    )  # fmt: skip
    genai = [_span("e1", events=events, **{"gen_ai.system": "openai", "gen_ai.request.model": "m"}),
             _span("e2", "e1", start=1, **{"gen_ai.tool.name": "f", "gen_ai.tool.call.arguments": "{}",
                                           "gen_ai.tool.call.result": "42"})]  # fmt: skip
    responses = json.dumps({"object": "response", "output": [
        {"type": "message", "content": [{"type": "output_text", "text": "Hello"}]},
        {"type": "function_call", "name": "f", "arguments": "{}", "call_id": "c1"}]})  # fmt: skip
    replies = json.dumps([{"role": "assistant", "content": [{"type": "text", "text": "Hello"}],
                           "tool_calls": [{"id": "c2", "function": {"name": "g", "arguments": {"a": 1}}}]}])  # fmt: skip
    raw = [_span("r1", **{"openinference.span.kind": "CHAIN", "input.value": "Hi"}),
           _span("r2", "r1", start=1, **_llm(**{"output.value": responses})),
           _span("r3", "r1", start=2, **_llm(**{"output.value": replies}))]  # fmt: skip
    records = [{"template": "You are {persona}.", "format": "f-string", "role": "system", "index": 0,
                "name": "sys", "binding": "app:sys"},
               {"template": "Q: {{q}}", "format": "mustache", "role": "user", "index": 1}]  # fmt: skip
    ours = [_span("t1", **{"openinference.span.kind": "CHAIN", "input.value": '{"q": "hi"}'}),
            _span("t2", "t1", start=1, **{"tg_bridge.templates": json.dumps(records),
                                          "tg_bridge.template.variables": '{"persona": "kind", "q": "hi"}'}),
            _span("t3", "t1", start=2, **_llm(**{"llm.input_messages.0.message.content": "You are kind.",
                                                  "llm.input_messages.1.message.content": "Q: hi"}))]  # fmt: skip
    inner = {"openinference.span.kind": "CHAIN", "input.value": "Hi", "output.value": "Hello",
             "llm.input_messages.0.message.role": "system", "llm.input_messages.0.message.content": "Be brief.",
             "llm.input_messages.1.message.role": "user", "llm.input_messages.1.message.content": "Hi"}  # fmt: skip
    nested = [_span("n1", **{"openinference.span.kind": "CHAIN", "input.value": "Hi", "output.value": "Hello"}),
              _span("n2", "n1", start=1, **{"openinference.span.kind": "LLM", "output.value": "Hello"}),
              _span("n3", "n2", start=2, **inner)]  # one call as two spans (LlamaIndex OpenAILike)
    return {"handmade_openinference": oi, "handmade_genai_events": genai, "handmade_raw_responses": raw,
            "handmade_tg_bridge_templates": ours, "handmade_nested_call": nested}  # fmt: skip


def _bases() -> dict[str, list[SpanRecord]]:
    found = {p.name.split(".")[0]: read_spans(p) for p in sorted((FIXTURES / "conventions").glob("*.otlp.json"))}
    for name in ("oi_langchain_rag.jsonl", "oi_langchain_agent.jsonl", "oi_llamaindex_query.jsonl",
                 "genai_weather_agent.json"):
        found[name.split(".")[0]] = read_spans(FIXTURES / name)
    found.update(_handmade())
    return found


BASES = _bases()

#: attribute names the convention readers look at (set with hostile values by the fuzz)
KNOWN_KEYS = (
    "openinference.span.kind", "input.value", "output.value", "llm.model_name",
    "llm.input_messages.0.message.role", "llm.input_messages.0.message.content",
    "llm.input_messages.0.message.contents.0.message_content.text",
    "llm.input_messages.0.message.tool_calls.0.tool_call.function.name",
    "llm.output_messages.0.message.content", "llm.prompts", "llm.prompts.0.prompt.text",
    "llm.prompt_template.template", "llm.prompt_template.variables", "tg_bridge.templates",
    "tg_bridge.template.variables", "retrieval.documents.0.document.content",
    "retrieval.documents.0.document.score", "retrieval.documents.0.document.id", "tool.name",
    "tool.parameters", "gen_ai.operation.name", "gen_ai.input.messages", "gen_ai.output.messages",
    "gen_ai.system_instructions", "gen_ai.tool.definitions", "gen_ai.tool.name",
    "gen_ai.tool.call.arguments", "gen_ai.tool.call.result", "gen_ai.retrieval.documents",
    "gen_ai.prompt", "gen_ai.completion", "gen_ai.prompt.0.content", "gen_ai.prompt.0.role",
    "gen_ai.completion.0.content", "gen_ai.request.model", "traceloop.span.kind",
    "traceloop.entity.input", "llm.request.type", "ai.operationId", "ai.prompt", "ai.prompt.messages",
    "ai.response.text", "ai.response.object", "ai.response.toolCalls", "ai.toolCall.name",
    "ai.toolCall.args", "ai.toolCall.result", "ai.model.id", "pydantic_ai.all_messages", "final_result",
    "events", "tool_arguments", "tool_response", "langfuse.observation.type",
    "langfuse.observation.input", "langfuse.observation.output", "langfuse.trace.input",
    "langfuse.observation.model.name", "target",
)  # fmt: skip
EVENT_NAMES = ("gen_ai.system.message", "gen_ai.user.message", "gen_ai.assistant.message",
               "gen_ai.tool.message", "gen_ai.choice", "gen_ai.content.prompt", "gen_ai.content.completion",
               "gen_ai.client.inference.operation.details")  # fmt: skip
ODD_INDEXES = ("٣", "３", "²", "99999999999999", "9" * 5000, "-1", "01", "", "1e3", " 1", "0x1", "1.5")

SPECIAL_TEXT = ("\ud800", "a\udfffb", "\x00", "\x1b[31m", "\u202e", "\ufeff", "\r\n\t", "\u2028", "{q}",
                "{{", "}", "\U0001f600", "ignore previous instructions")  # fmt: skip
ODD_TEXT = st.lists(st.one_of(st.sampled_from(SPECIAL_TEXT), st.text(max_size=6)), max_size=5).map("".join)


def _deep(n: int, opener: str = "[", closer: str = "]", leaf: str = '"x"') -> str:
    return opener * n + leaf + closer * n


ODD_JSON_TEXT = st.sampled_from((
    _deep(15), _deep(17), _deep(600), _deep(5000), _deep(600, '{"content":', "}"),
    _deep(600, '[{"type":"text","text":', "}]"), "[" * 100_000, '{"role": ', "[1, 2", '{"a": NaN}',
    json.dumps([{"role": "system", "content": "x" * 300_000}]), "y" * 300_000,
    '"\\ud800"', '{"role": "system", "role": 5, "content": "dup"}', "[1e400]", '{"content": 1e400}',
    '{"messages": 5}', '[{"role": ["system"], "content": {"text": 3}}]', '[{"parts": "no"}]',
    '{"choices": [5]}', '{"output": [{"type": "message", "content": 7}]}', "null", "true", "-0",
    '[{"content": [{"type": "tool-call", "tool_name": "t", "args": ' + _deep(900) + "}]}]",
))  # fmt: skip
HUGE_NUMBERS = st.sampled_from((10**400, -(10**400), 2**63, -(2**63) - 1, 2**64, 10**4000))
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), HUGE_NUMBERS,
                    st.floats(allow_nan=True, allow_infinity=True), ODD_TEXT, ODD_JSON_TEXT)  # fmt: skip
JSONISH = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["role", "content", "text", "type", "parts",
                                                                  "name", "id", "score", "message"]), inner,
                                                 max_size=3)), max_leaves=8)  # fmt: skip


def _nest(depth: int, make) -> object:  # type: ignore[no-untyped-def]
    value: object = "x"
    for _ in range(depth):
        value = make(value)
    return value


class _ShortList(list):
    """A list whose repr stays short: hypothesis prints a failing example, and printing 600
    levels would itself raise RecursionError and hide the failure."""

    def __repr__(self) -> str:
        return f"<nested {type(self[0]).__name__} {_depth(self)} deep>"


def _depth(value: object) -> int:
    depth = 0
    while isinstance(value, (list, tuple, dict)) and value:
        value = value[0] if not isinstance(value, dict) else next(iter(value.values()))
        depth += 1
    return depth


#: structures as readers hand them over (OTLP arrays and kvlists), nested far too deep;
#: wrapped in a one-item _ShortList (the wrapper is one more level of list)
DEEP_VALUES = st.sampled_from([_ShortList([v]) for v in (
    _nest(600, lambda v: [v]), _nest(600, lambda v: (v,)), _nest(600, lambda v: {"content": v}),
    _nest(17, lambda v: [v]))])  # fmt: skip
HOSTILE = st.one_of(SCALARS, JSONISH, DEEP_VALUES, st.lists(SCALARS, max_size=3).map(tuple),
                    JSONISH.map(lambda v: json.dumps(v, allow_nan=True)))  # fmt: skip

# a mutation: (what, which span, which key or event, value); applied in order to a copy
MUTATION = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 99), st.one_of(st.sampled_from(KNOWN_KEYS), st.integers(0, 99)),
              HOSTILE),  # fmt: skip
    st.tuples(st.just("json"), st.integers(0, 99), st.integers(0, 99), st.tuples(st.integers(0, 99), HOSTILE)),
    st.tuples(st.just("splice"), st.integers(0, 99), st.integers(0, 99),
              st.tuples(st.integers(0, 999), st.sampled_from(SPECIAL_TEXT))),
    st.tuples(st.just("rekey"), st.integers(0, 99), st.integers(0, 99), st.sampled_from(ODD_INDEXES)),
    st.tuples(st.just("drop"), st.integers(0, 99), st.integers(0, 99), st.none()),
    st.tuples(st.just("event"), st.integers(0, 99),
              st.one_of(st.sampled_from(EVENT_NAMES), st.sampled_from([["gen_ai.choice"], {"a": 1}, 7, None])),
              st.one_of(st.dictionaries(st.sampled_from(["content", "message", "role", "tool_calls", "index", "id",
                                                         "gen_ai.input.messages", "gen_ai.prompt"]),
                                        HOSTILE, max_size=3), HOSTILE)),  # fmt: skip
    st.tuples(st.just("parent"), st.integers(0, 99), st.integers(0, 99),
              st.sampled_from(["missing", "self", "cycle", "root", "duplicate"])),
)


def _pick(items: list, index: int):
    return items[index % len(items)] if items else None


def _json_paths(value: object, path: tuple = ()) -> list[tuple]:
    """Every place inside a parsed JSON value (bounded: a fixture's JSON is small)."""
    paths = [path]
    if isinstance(value, dict):
        for key, inner in value.items():
            paths.extend(_json_paths(inner, (*path, key)))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            paths.extend(_json_paths(inner, (*path, i)))
    return paths[:200]


def _replace_at(value: object, path: tuple, new: object) -> object:
    if not path:
        return new
    head, *rest = path
    value[head] = _replace_at(value[head], tuple(rest), new)  # type: ignore[index]
    return value


def _loads(text: str) -> object:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _splice(text: str, where: int, odd: str) -> str:
    """``odd`` put inside ``text``; inside one of its string leaves when it is JSON, so the
    JSON stays valid and the odd text reaches what the readers take from it."""
    parsed = _loads(text)
    leaves = [p for p in _json_paths(parsed) if isinstance(_at(parsed, p), str)] if parsed is not None else []
    if not leaves:
        return text[: where % (len(text) + 1)] + odd + text[where % (len(text) + 1) :]
    path = _pick(leaves, where)
    leaf = _at(parsed, path)
    cut = where % (len(leaf) + 1)
    return json.dumps(_replace_at(parsed, path, leaf[:cut] + odd + leaf[cut:]), allow_nan=True)


def _at(value: object, path: tuple) -> object:
    for step in path:
        value = value[step]  # type: ignore[index]
    return value


def mutate(spans: list[SpanRecord], mutations: list[tuple]) -> list[SpanRecord]:
    """``spans`` with each mutation applied in order (records are rebuilt, never edited)."""
    rows = [dict(dataclasses.asdict(s), attributes=dict(s.attributes), events=list(s.events)) for s in spans]
    for what, span_i, target, value in mutations:
        row = _pick(rows, span_i)
        key = target if isinstance(target, str) else None
        if what in ("set", "drop", "json", "splice", "rekey") and isinstance(target, int):
            key = _pick(sorted(row["attributes"]), target)
        if what == "set" and key is not None:
            row["attributes"][key] = value
        elif what == "drop" and key is not None:
            row["attributes"].pop(key, None)
        elif what == "json" and key is not None:
            parsed = _loads(row["attributes"][key]) if isinstance(row["attributes"][key], str) else None
            if parsed is not None:
                where, new = value
                path = _pick(_json_paths(parsed), where)
                row["attributes"][key] = json.dumps(_replace_at(parsed, path, new), allow_nan=True)
        elif what == "splice" and key is not None and isinstance(row["attributes"][key], str):
            row["attributes"][key] = _splice(row["attributes"][key], *value)
        elif what == "rekey" and key is not None:
            parts = key.split(".")
            digits = [i for i, part in enumerate(parts) if part.isdigit()]
            if digits:
                parts[digits[0]] = value
                row["attributes"][".".join(parts)] = row["attributes"].pop(key)
        elif what == "event":
            row["events"].append({"name": target, "time_ns": span_i, "attributes": value})
        elif what == "parent":
            other = _pick(rows, target)
            if value == "missing":
                row["parent_id"] = "feedfacefeedface"
            elif value == "self":
                row["parent_id"] = row["span_id"]
            elif value == "cycle":
                row["parent_id"], other["parent_id"] = other["span_id"], row["span_id"]
            elif value == "root":
                row["parent_id"] = None
            else:
                row["span_id"] = other["span_id"]
    return [SpanRecord(**{**row, "events": tuple(row["events"])}) for row in rows]


def check_graph(graph: Graph) -> None:
    """Acyclic and topological, text values, skips counted by known reasons."""
    seen: set[int] = set()
    for node in graph.nodes:
        assert id(node) not in seen
        assert all(id(p) in seen for p in node.parents)
        assert isinstance(node.value, str)
        seen.add(id(node))
    by_reason = graph.metadata["skipped_by_reason"]
    assert set(by_reason) <= SKIP_REASONS
    assert graph.metadata["skipped_spans"] == sum(by_reason.values())


class _Problems(logging.Handler):
    """Collects the warnings reconstruction logs when it had to catch an exception."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if "unreadable attributes" in text or "skipped span" in text:
            self.messages.append(text)


@contextlib.contextmanager
def caught_exceptions() -> Iterator[list[str]]:
    handler = _Problems()
    log = logging.getLogger("tg_bridge.reconstruction")
    log.addHandler(handler)
    try:
        yield handler.messages
    finally:
        log.removeHandler(handler)


@FUZZ
@given(base=st.sampled_from(sorted(BASES)), mutations=st.lists(MUTATION, min_size=1, max_size=6))
def test_mutated_conventions_read_and_rebuild_without_an_exception(base, mutations):
    spans = mutate(BASES[base], mutations)
    for span in spans:  # the readers' contract: nothing raises on odd input
        view_of(span.name, span.attributes, span.events)
    with caught_exceptions() as problems:
        graphs = [reconstruct(spans), reconstruct(spans, one_flow=True)]  # apart, and as one run
    for graph in graphs:
        check_graph(graph)
        # nothing was caught and turned into a skip: odd content is read around, not given up on
        assert not {"unreadable_attributes", "unreadable_content"} & set(graph.metadata["skipped_by_reason"])
    assert problems == []


# -- the same through a file: load_traces and `tg-bridge graph FILE --json` --------------------

def _hex(value: str | None, size: int) -> str | None:
    if value is None:
        return None
    if len(value) == size and all(c in "0123456789abcdef" for c in value):
        return value
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:size]


def _any_value(value: object, depth: int = 0) -> object:
    """An attribute value as OTLP JSON writes it (protobuf-JSON: int64 as a string); nesting
    is cut at 150 levels (this writer recurses; the readers' own depth guards are tested in
    tests/reliability)."""
    if value is None or depth > 150:
        return {}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value if math.isfinite(value) else
                "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"}  # fmt: skip
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [_any_value(v, depth + 1) for v in value]}}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": [{"key": str(k), "value": _any_value(v, depth + 1)}
                                           for k, v in value.items()]}}  # fmt: skip
    return {"stringValue": str(value)}


def _attributes(attrs: object) -> object:
    if not isinstance(attrs, dict):
        return attrs  # hostile: whatever the mutation put there
    return [{"key": k, "value": _any_value(v)} for k, v in attrs.items()]


#: values OTLP JSON should not hold where they are put (a reader must reject or ignore them)
ODD_ANY_VALUES = ({"stringValue": 5}, {"intValue": "1e3"}, {"intValue": "9" * 5000}, {"intValue": "٣"},
                  {"doubleValue": "1e400"}, {"doubleValue": "nan"}, {"arrayValue": 5},
                  {"arrayValue": {"values": [5, None]}}, {"kvlistValue": {"values": [5, {"key": 3}]}}, {},
                  {"bytesValue": "!!not base64"}, {"stringValue": "a", "intValue": "1"}, [], "text", None)  # fmt: skip
ODD_FIELDS = st.tuples(
    st.integers(0, 99),
    st.sampled_from(["status", "kind", "name", "parentSpanId", "events", "attribute", "attributes", "key"]),
    st.one_of(st.sampled_from(ODD_ANY_VALUES), st.sampled_from(({"code": "9" * 5000}, {"code": "٣"}, {"code": [1]},
                                                                "٣" * 3, 10**30, -1, "0" * 40, "zz" * 8)),
              SCALARS),
)  # fmt: skip


def _odd_field(span: dict, field: str, value: object) -> None:
    attrs = span["attributes"]
    entries = [a for a in attrs if isinstance(a, dict)] if isinstance(attrs, list) else []
    if field == "attribute" and entries:
        entries[len(entries) // 2]["value"] = value
    elif field == "key" and entries:
        entries[0]["key"] = value
    elif field not in ("attribute", "key"):
        span[field] = value


def otlp_document(spans: list[SpanRecord], duplicates: list[tuple[int, int, object]],
                  odd: list[tuple[int, str, object]] = ()) -> dict:  # fmt: skip
    """One OTLP JSON request of ``spans``; ``duplicates`` repeat an attribute key of a span
    with another value (the OTLP attribute list allows it); ``odd`` puts a value of the wrong
    shape into a span field or attribute value."""
    out = []
    for span in spans:
        out.append({
            "traceId": _hex(span.trace_id, 32), "spanId": _hex(span.span_id, 16), "name": span.name,
            "parentSpanId": _hex(span.parent_id, 16) or "", "kind": 1,
            "startTimeUnixNano": str(span.start_ns), "endTimeUnixNano": str(span.end_ns or span.start_ns),
            "attributes": _attributes(dict(span.attributes)),
            "events": [{"name": e.get("name"), "timeUnixNano": str(e.get("time_ns") or 0),
                        "attributes": _attributes(e.get("attributes"))} for e in span.events],
        })  # fmt: skip
    for span_i, key_i, value in duplicates:
        attrs = _pick(out, span_i)["attributes"]
        if isinstance(attrs, list) and attrs and isinstance(_pick(attrs, key_i), dict):
            attrs.append({"key": _pick(attrs, key_i)["key"], "value": _any_value(value)})
    for span_i, field, value in odd:
        _odd_field(_pick(out, span_i), field, value)
    return {"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {"name": "fuzz"}, "spans": out}]}]}


def _pb_value(value: object, depth: int = 0) -> AnyValue:
    """An attribute value as protobuf holds it: strings must be valid UTF-8 there (a lone
    surrogate becomes U+FFFD), ints beyond int64 are written as text, nesting is cut at 25
    levels (up to 3 messages each; the protobuf runtime refuses to nest messages past 100)."""
    if value is None or depth > 25:
        return AnyValue()
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value) if -(2**63) <= value < 2**63 else AnyValue(string_value=str(value)[:50])
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, (list, tuple)):
        return AnyValue(array_value=ArrayValue(values=[_pb_value(v, depth + 1) for v in value]))
    if isinstance(value, dict):
        return AnyValue(kvlist_value=KeyValueList(values=_pb_attributes(value, depth + 1)))
    return AnyValue(string_value=utf8_safe(str(value)))


def _pb_attributes(attrs: object, depth: int = 0) -> list[KeyValue]:
    items = attrs.items() if isinstance(attrs, dict) else ()
    return [KeyValue(key=utf8_safe(str(k)), value=_pb_value(v, depth)) for k, v in items]


def otlp_protobuf(spans: list[SpanRecord]) -> bytes:
    """The spans as one binary ``ExportTraceServiceRequest`` (a ``.pb`` file)."""
    out = [Span(trace_id=bytes.fromhex(_hex(s.trace_id, 32) or ""), span_id=bytes.fromhex(_hex(s.span_id, 16) or ""),
                parent_span_id=bytes.fromhex(_hex(s.parent_id, 16) or ""), name=utf8_safe(s.name),
                start_time_unix_nano=s.start_ns, end_time_unix_nano=s.end_ns or s.start_ns,
                attributes=_pb_attributes(dict(s.attributes)),
                events=[Span.Event(name=utf8_safe(str(e.get("name"))), time_unix_nano=_pb_time(e.get("time_ns")),
                                   attributes=_pb_attributes(e.get("attributes"))) for e in s.events])
           for s in spans]  # fmt: skip
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=out)])])
    return request.SerializeToString()


def _pb_time(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**64 else 0


def _summary(graph: Graph) -> tuple:
    return (graph.metadata["trace_ids"], graph.metadata["spans"], [(n.kind, n.value) for n in graph.nodes])


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


@FUZZ
@given(base=st.sampled_from(sorted(BASES)), mutations=st.lists(MUTATION, max_size=5),
       duplicates=st.lists(st.tuples(st.integers(0, 99), st.integers(0, 99), HOSTILE), max_size=3),
       odd=st.lists(ODD_FIELDS, max_size=2), layout=st.sampled_from(["document", "lines", "protobuf"]),
       dup_keys=st.lists(st.tuples(st.sampled_from(["resourceSpans", "spans", "traceId", "spanId", "parentSpanId",
                                                    "name", "attributes", "key", "value", "stringValue",
                                                    "events"]), SCALARS), max_size=2),
       fmt=st.sampled_from(["json", "json", "text", "mermaid", "dot"]))  # fmt: skip
def test_mutated_trace_files_load_and_print_as_utf8_or_fail_in_one_line(tmp_path_factory, base, mutations,
                                                                         duplicates, odd, layout, dup_keys,
                                                                         fmt):  # fmt: skip
    spans = mutate(BASES[base], mutations)
    doc = otlp_document(spans, duplicates, odd)
    path = tmp_path_factory.mktemp("hostile") / "trace.json"
    if layout == "lines":  # the collector's JSON lines: one request per span
        items = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
        path.write_text("".join(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [s]}]}]}) + "\n"
                                for s in items), encoding="utf-8")  # fmt: skip
    elif layout == "protobuf":  # the odd JSON shapes cannot be written there; the values can
        path.write_bytes(otlp_protobuf(spans))
    else:  # one document; a JSON key may come twice (the last one counts for every reader)
        text = json.dumps(doc)
        for key, first in dup_keys:
            text = text.replace(f'"{key}": ', f'"{key}": {json.dumps(first)}, "{key}": ', 1)
        path.write_text(text, encoding="utf-8")
    with caught_exceptions() as problems:
        try:
            graphs = load_traces(path)
        except TraceFormatError:
            graphs = None
        if graphs is not None:  # traces spilled to disk while the file is read: the same graphs
            spilled = list(iter_graphs(path, max_open_spans=1))
            assert [_summary(g) for g in spilled] == [_summary(g) for g in graphs]
        if otlp_json.accelerated():  # the pure-Python span conversion reads it the same
            saved, otlp_json._fast = otlp_json._fast, None
            try:
                pure = load_traces(path)
            except TraceFormatError:
                pure = None
            finally:
                otlp_json._fast = saved
            assert (pure is None) == (graphs is None)
            assert [_summary(g) for g in pure or ()] == [_summary(g) for g in graphs or ()]
    for graph in graphs or ():
        check_graph(graph)
    assert problems == []
    code, out, err = run_cli("graph", str(path), "--format", fmt)
    assert code in (0, 1, 2)
    if graphs is None:
        assert code == 2
    if code:
        assert err.startswith("tg-bridge: error: ") and err.count("\n") == 1, err
        assert "internal error" not in err and "Traceback" not in err
    else:
        assert code == 0 and graphs is not None
        if fmt == "json":
            assert len(json.loads(out)["traces"]) == len(graphs)
        out.encode("utf-8")  # valid UTF-8: no lone surrogate reaches the output
        err.encode("utf-8")
