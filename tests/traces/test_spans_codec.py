"""The spill codec: span records survive JSON bytes exactly (tuples stay tuples), with no pickle."""

from __future__ import annotations

import math

from tg_bridge.spans import SpanRecord, spans_from_json_bytes, spans_to_json_bytes


def test_records_round_trip_exactly():
    span = SpanRecord(
        "a" * 32, "b" * 16, None, "llm", 1, 2,
        attributes={"tags": ("x", "y"), "n": 3, "ok": True, "f": 0.5, "text": "é \u0000tuple"},
        status="OK", events=({"name": "e", "time_ns": 5, "attributes": {"ids": (1, 2)}},),
        resource={"service.name": "rag", "list": ("a",)},
    )
    back = spans_from_json_bytes(spans_to_json_bytes([span, span]))
    assert back == [span, span]
    assert isinstance(back[0].attributes["tags"], tuple)
    assert isinstance(back[0].events[0]["attributes"]["ids"], tuple)


def test_non_finite_numbers_survive():
    span = SpanRecord("a" * 32, "b" * 16, None, "x", attributes={"score": math.inf})
    assert spans_from_json_bytes(spans_to_json_bytes([span]))[0].attributes["score"] == math.inf
