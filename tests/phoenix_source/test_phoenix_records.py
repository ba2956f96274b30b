"""The Phoenix reader against what a broken or hostile server may send (no Phoenix needed):
Phoenix's JSON span form -> SpanRecord (flattened and nested attributes alike), and every
bad answer -> one TraceSourceError naming the URL, with paging bounded."""

from __future__ import annotations

import json
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from tests.support.fault_server import LoopbackServer
from tg_bridge.exceptions import TraceFormatError, TraceSourceError
from tg_bridge.reconstruction import phoenix_graphs
from tg_bridge.traces import phoenix as reader
from tg_bridge.traces.phoenix import PhoenixSource, record_of_span

TRACE = "0af7651916cd43dd8448eb211c80319c"
ROOT, LLM = "b7ad6b7169203331", "00f067aa0ba902b7"


def _span(span_id: str, parent: str | None, attributes: dict, kind: str = "LLM") -> dict:
    return {"name": "ChatOpenAI" if kind == "LLM" else "rag",
            "context": {"trace_id": TRACE, "span_id": span_id}, "span_kind": kind,
            "parent_id": parent, "start_time": "2026-01-02T03:04:05.123456+00:00",
            "end_time": "2026-01-02T03:04:06+00:00", "status_code": "OK",
            "attributes": attributes, "events": []}


FLAT = {"llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": "Be brief.",
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.content": "hi",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": "hello",
        "tag.tags": ["a", "b"]}
NESTED = {"llm": {"input_messages": [{"message": {"role": "system", "content": "Be brief."}},
                                     {"message": {"role": "user", "content": "hi"}}],
                  "output_messages": [{"message": {"role": "assistant", "content": "hello"}}]},
          "tag": {"tags": ["a", "b"]}}


def test_flattened_and_nested_attributes_give_the_same_record():
    flat = record_of_span(_span(LLM, ROOT, FLAT))
    nested = record_of_span(_span(LLM, ROOT, NESTED))
    assert flat == nested
    assert flat.attributes["openinference.span.kind"] == "LLM"
    assert flat.attributes["tag.tags"] == ("a", "b")
    assert flat.parent_id == ROOT and flat.status == "OK"
    assert flat.start_ns == 1767323045123456000 and flat.end_ns == 1767323046000000000


def test_a_nested_trace_rebuilds_like_a_flat_one():
    root = {"input": {"value": "hi"}, "output": {"value": "hello"}}
    graphs = phoenix_graphs(
        [record_of_span(_span(ROOT, None, root, "CHAIN")), record_of_span(_span(LLM, ROOT, NESTED))])
    (graph,) = graphs
    assert [p.value for p in graph.parameters()] == ["Be brief."]
    assert graph.metadata["output"] == "hello" and graph.metadata["skipped_spans"] == 0


@pytest.mark.parametrize("span, message", [
    ("not a span", "JSON object"),
    ({"context": "x"}, "context"),
    ({"context": {"trace_id": "zz", "span_id": LLM}}, "hex ids"),
    (_span(LLM, None, {"a": "b"}) | {"start_time": "yesterday"}, "yesterday"),
    (_span(LLM, None, ["not", "an", "object"]), "attributes must be"),  # type: ignore[arg-type]
])
def test_what_is_not_a_span_is_a_format_error(span, message):
    with pytest.raises(TraceFormatError, match=message):
        record_of_span(span)


def test_attributes_nested_too_deep_are_refused():
    deep: dict[str, Any] = {"leaf": "x"}
    for _ in range(reader.MAX_DEPTH + 5):
        deep = {"k": deep}
    with pytest.raises(TraceFormatError, match="nested more than"):
        record_of_span(_span(LLM, None, deep))


class _Scripted(LoopbackServer):
    """Answers every GET with ``answer(path, query) -> (status, body bytes)``; counts GETs."""

    label = "the scripted Phoenix"

    def __init__(self, answer: Callable[[str, dict], tuple[int, bytes]]) -> None:
        self.answer = answer
        self.gets = 0

    @property
    def url(self) -> str:
        return self.base_url.removesuffix("/v1")

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                server.gets += 1
                parsed = urlparse(self.path)
                status, body = server.answer(parsed.path, parse_qs(parsed.query))
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


def _fetch(answer: Callable[[str, dict], tuple[int, bytes]], **kw: Any) -> tuple[Any, _Scripted]:
    with _Scripted(answer) as server:
        try:
            return PhoenixSource(server.url, "p").fetch_spans(**kw), server
        except TraceSourceError as exc:
            assert exc.url == server.url and str(exc).startswith(server.url)
            assert "\n" not in str(exc)
            return exc, server


@pytest.mark.parametrize("status, body, message", [
    (200, b"<html>not json", "not JSON"),
    (200, b'{"data": "spans"}', "'data' list"),
    (200, b'{"data": []}', "has no spans"),
    (200, json.dumps({"data": [{"context": {}}]}).encode(), "span 1"),
    (500, b"Internal\nServer Error", "answered 500"),
    (401, b"", "API key"),
    (404, b'{"detail": "Project with name p not found"}', "no project 'p'"),
])
def test_bad_answers_are_one_line_source_errors(status, body, message):
    error, _ = _fetch(lambda path, query: (status, body))
    assert isinstance(error, TraceSourceError) and message in str(error)


def test_paging_is_bounded_by_max_spans_and_by_a_repeated_cursor(caplog):
    counter = iter(range(10_000))

    def endless(path: str, query: dict) -> tuple[int, bytes]:
        n = next(counter)  # a fresh cursor on every page, one span each
        span = _span(f"{n:016x}", None, {})
        return 200, json.dumps({"data": [span], "next_cursor": f"c{n}"}).encode()

    with caplog.at_level("WARNING", logger="tg_bridge.traces.phoenix"):
        spans, server = _fetch(endless, max_spans=7)
    assert len(spans) == 7 and server.gets == 7
    assert "more than max_spans=7" in caplog.text  # the cut is said, not silent
    caplog.clear()

    def stuck(path: str, query: dict) -> tuple[int, bytes]:
        return 200, json.dumps({"data": [_span(LLM, None, {})], "next_cursor": "same"}).encode()

    spans, server = _fetch(stuck, max_spans=1000)
    assert server.gets == 2 and len(spans) == 2  # the repeated cursor ends paging
    assert "max_spans" not in caplog.text


def test_an_oversized_answer_is_refused(monkeypatch):
    monkeypatch.setattr(reader, "MAX_BODY_BYTES", 1000)
    big = json.dumps({"data": [_span(LLM, None, {"x": "y" * 5000})]}).encode()
    error, _ = _fetch(lambda path, query: (200, big))
    assert isinstance(error, TraceSourceError) and "larger than 1000 bytes" in str(error)


def test_the_api_key_is_sent_as_a_bearer_token(monkeypatch):
    seen: list[str | None] = []

    class Auth(_Scripted):
        def handler_class(self):
            base = super().handler_class()

            class Handler(base):  # type: ignore[misc, valid-type]
                def do_GET(self) -> None:  # noqa: N802
                    seen.append(self.headers.get("authorization"))
                    super().do_GET()

            return Handler

    def answer(path: str, query: dict) -> tuple[int, bytes]:
        ok = seen[-1] == "Bearer k-123"
        return (200, json.dumps({"data": [_span(LLM, None, {})]}).encode()) if ok else (401, b"")

    monkeypatch.delenv("PHOENIX_API_KEY", raising=False)
    with Auth(answer) as server:
        with pytest.raises(TraceSourceError, match="API key"):
            PhoenixSource(server.url, "p").fetch_spans()
        assert len(PhoenixSource(server.url, "p", api_key="k-123").fetch_spans()) == 1
        monkeypatch.setenv("PHOENIX_API_KEY", "k-123")  # Phoenix's own variable is the default
        assert len(PhoenixSource(server.url, "p").fetch_spans()) == 1
    assert seen == [None, "Bearer k-123", "Bearer k-123"]
