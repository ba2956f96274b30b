"""OTLP JSON reading: formats, id encodings, AnyValue decoding, and located errors."""

from __future__ import annotations

import base64
import json
import pathlib

import pytest

from tg_bridge.exceptions import TraceFormatError
from tg_bridge.reconstruction import load_traces
from tg_bridge.traces import iter_spans, read_spans
from tg_bridge.traces.otlp_json import decode_any_value, normalize_id, records_from_object

# Every test here runs with the C span conversion and with the pure-Python one.
pytestmark = pytest.mark.usefixtures("both_converters")

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures"
TRACE = "5b8efff798038103d269b633813fc60c"
SPAN = "eee19b7ec3c1b174"


def _otlp_span(trace=TRACE, span=SPAN, parent="", **extra):
    return {"traceId": trace, "spanId": span, "parentSpanId": parent, "name": "s", **extra}


def _request(*spans):
    return {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
                               "scopeSpans": [{"scope": {"name": "x"}, "spans": list(spans)}]}]}


def _b64(hex_id):
    return base64.b64encode(bytes.fromhex(hex_id)).decode()


def _write(tmp_path, text, name="t.jsonl"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_normalize_id_hex_base64_and_odd_forms():
    assert normalize_id(TRACE.upper(), 16) == TRACE
    assert normalize_id(_b64(TRACE), 16) == TRACE
    assert normalize_id(_b64(SPAN), 8) == SPAN
    assert normalize_id("0x" + SPAN, 8) == SPAN
    assert normalize_id(int(SPAN, 16), 8) == SPAN
    assert normalize_id("", 8) is None and normalize_id("0" * 16, 8) is None
    assert normalize_id("not-an-id", 8) == "not-an-id"


def test_base64_and_hex_fixtures_give_same_structure():
    hex_spans = read_spans(FIXTURES / "oi_langchain_rag.jsonl")  # hex ids
    b64_spans = read_spans(FIXTURES / "oi_langchain_agent.jsonl")  # base64 ids
    for spans in (hex_spans, b64_spans):
        ids = {s.span_id for s in spans}
        assert all(len(s.trace_id) == 32 and len(s.span_id) == 16 for s in spans)
        assert all(s.trace_id == s.trace_id.lower() for s in spans)
        assert all(s.parent_id is None or s.parent_id in ids for s in spans)
        assert sum(s.parent_id is None for s in spans) == len({s.trace_id for s in spans})


def test_same_request_hex_vs_base64(tmp_path):
    hexed = _request(_otlp_span(), _otlp_span(span="00f067aa0ba902b7", parent=SPAN))
    b64 = _request(_otlp_span(_b64(TRACE), _b64(SPAN)),
                   _otlp_span(_b64(TRACE), _b64("00f067aa0ba902b7"), _b64(SPAN)))
    a = read_spans(_write(tmp_path, json.dumps(hexed), "a.jsonl"))
    b = read_spans(_write(tmp_path, json.dumps(b64), "b.jsonl"))
    assert a == b and a[1].parent_id == SPAN


def test_jsonl_vs_one_pretty_document_vs_list(tmp_path):
    lines = [line for line in (FIXTURES / "oi_langchain_rag.jsonl").read_text().splitlines() if line]
    requests = [json.loads(line) for line in lines]
    jsonl = read_spans(FIXTURES / "oi_langchain_rag.jsonl")
    merged = {"resourceSpans": [rs for r in requests for rs in r["resourceSpans"]]}
    pretty = read_spans(_write(tmp_path, json.dumps(merged, indent=2), "doc.json"))
    listed = read_spans(_write(tmp_path, json.dumps(requests, indent=1), "list.json"))
    assert jsonl == pretty == listed and len(jsonl) == 32


def test_flattened_span_dicts_and_sdk_to_json_form(tmp_path):
    flat = [
        {"trace_id": TRACE, "span_id": SPAN, "parent_id": None, "name": "root",
         "attributes": {"input.value": "hi", "n": 3, "tags": ["a", "b"], "obj": {"k": 1}}},
        {"name": "child", "context": {"trace_id": "0x" + TRACE, "span_id": "0x00f067aa0ba902b7"},
         "parent_id": "0x" + SPAN, "start_time": "2024-01-01T00:00:00.000001Z",
         "status": {"status_code": "ERROR"}, "attributes": {}},
    ]
    spans = read_spans(_write(tmp_path, json.dumps(flat), "flat.json"))
    assert [s.name for s in spans] == ["root", "child"]
    assert spans[0].attributes == {"input.value": "hi", "n": 3, "tags": ("a", "b"), "obj": '{"k": 1}'}
    assert spans[1].parent_id == SPAN and spans[1].status == "ERROR" and spans[1].start_ns > 0


def test_any_value_decoding_status_and_events(tmp_path):
    attrs = [
        {"key": "s", "value": {"stringValue": "x"}},
        {"key": "i", "value": {"intValue": "42"}},
        {"key": "i2", "value": {"intValue": 7}},
        {"key": "d", "value": {"doubleValue": 0.5}},
        {"key": "nan", "value": {"doubleValue": "NaN"}},
        {"key": "b", "value": {"boolValue": True}},
        {"key": "arr", "value": {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "1"}]}}},
        {"key": "kv", "value": {"kvlistValue": {"values": [{"key": "k", "value": {"stringValue": "v"}}]}}},
        {"key": "bytes", "value": {"bytesValue": "AAEC"}},
        {"key": "empty", "value": {}},
        {"key": "bad", "value": {"intValue": "not a number"}},
        {"nokey": True},
        "garbage",
    ]
    span = _otlp_span(attributes=attrs, status={"code": 2, "message": "boom"}, startTimeUnixNano="100",
                      events=[{"name": "exception", "timeUnixNano": "150",
                               "attributes": [{"key": "exception.message", "value": {"stringValue": "boom"}}]}])
    (rec,) = read_spans(_write(tmp_path, json.dumps(_request(span))))
    a = rec.attributes
    assert a["s"] == "x" and a["i"] == 42 and a["i2"] == 7 and a["d"] == 0.5 and a["b"] is True
    assert a["nan"] != a["nan"]  # NaN kept as a float
    assert a["arr"] == ("a", 1) and json.loads(a["kv"]) == {"k": "v"} and a["bytes"] == "AAEC"
    assert "empty" not in a and "bad" not in a
    assert rec.status == "ERROR" and rec.start_ns == 100
    assert rec.events == ({"name": "exception", "time_ns": 150, "attributes": {"exception.message": "boom"}},)
    assert rec.resource == {"service.name": "svc"}
    assert decode_any_value({"stringValue": "only"}) == "only"


@pytest.mark.parametrize(
    ("content", "where", "words"),
    [
        (json.dumps(_request(_otlp_span())) + "\n{not json}\n", "line 2", "malformed"),
        (json.dumps(_request(_otlp_span())) + "\n" + json.dumps(_request(_otlp_span()))[:40], "line 2", "truncated"),
        ('{\n  "resourceSpans": [\n    {"scopeSpans": [\n', "line", "JSON"),
        (json.dumps(_request({"name": "no ids"})), "line 1 span 0", "traceId"),
        (json.dumps({"hello": 1}), "line 1", "resourceSpans"),
        (b"\x0a\x0b\x00\x01\x02protobuf", "byte 0", "binary"),
        (b'{"resourceSpans": []}\n\xff\xfe{"x": 1}\n', "line 2", "UTF-8"),
    ],
)
def test_bad_files_raise_trace_format_error_with_file_and_place(tmp_path, content, where, words):
    path = _write(tmp_path, content, "bad.jsonl")
    with pytest.raises(TraceFormatError) as info:
        read_spans(path)
    err = info.value
    assert err.path == str(path) and where in (err.where or "")
    assert str(path) in str(err) and words in str(err)


def test_missing_file_is_a_trace_format_error(tmp_path):
    with pytest.raises(TraceFormatError, match="cannot open"):
        read_spans(tmp_path / "nope.jsonl")


def test_jsonl_streams_line_by_line(tmp_path):
    good = json.dumps(_request(_otlp_span()))
    path = _write(tmp_path, good + "\n" + "{broken\n")
    stream = iter_spans(path)
    first = next(stream)  # the first line is decoded before the broken one is read
    assert first.span_id == SPAN
    with pytest.raises(TraceFormatError, match="line 2"):
        next(stream)


def test_empty_file_has_no_spans(tmp_path):
    assert read_spans(_write(tmp_path, "\n\n")) == []
    assert load_traces(_write(tmp_path, "", "e.json")) == []


def test_load_traces_metadata_and_shared_pool():
    pool = {}
    graphs = load_traces(FIXTURES / "oi_langchain_rag.jsonl", parameters=pool)
    assert [g.metadata["root"] for g in graphs] == ["rag", "rag"]
    assert graphs[0].metadata["trace_id"] != graphs[1].metadata["trace_id"]
    assert all(g.metadata["spans"] == 16 for g in graphs)
    assert json.loads(graphs[1].metadata["input"])["question"] == "What is the highest mountain in Japan?"
    assert graphs[1].metadata["output"] == "Mount Fuji."
    assert len(pool) == 4


# -- the canonical-spelling fast path in otlp_json._span must give what the general code gives --
_ATTRS = [{"key": "a", "value": {"stringValue": "x"}}, {"key": "n", "value": {"intValue": "7"}},
          {"key": 3, "value": {"stringValue": "bad key"}}, "not an entry",
          {"key": "two", "value": {"intValue": "1", "stringValue": "first wins"}},
          {"key": "s", "value": {"stringValue": 5}}]  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, {"trace_id": TRACE, "span_id": SPAN, "parent_id": None, "start_ns": 5, "end_ns": 9}),
        ({"traceId": TRACE.upper(), "spanId": "0x" + SPAN}, {"trace_id": TRACE, "span_id": SPAN}),
        ({"traceId": _b64(TRACE), "parentSpanId": _b64(SPAN)}, {"trace_id": TRACE, "parent_id": SPAN}),
        ({"parentSpanId": "0" * 16}, {"parent_id": None}),
        ({"parentSpanId": SPAN.upper()}, {"parent_id": SPAN}),
        ({"startTimeUnixNano": 12, "endTimeUnixNano": 12.0}, {"start_ns": 12, "end_ns": 12}),
        ({"startTimeUnixNano": " 12 ", "endTimeUnixNano": str(2**64 - 1)}, {"start_ns": 12, "end_ns": 2**64 - 1}),
        ({"startTimeUnixNano": "\u0663"}, {"start_ns": 3}),  # a non-ASCII digit: what int() reads
        ({"startTimeUnixNano": "2023-11-14T22:13:20Z"}, {"start_ns": 1_700_000_000_000_000_000}),
        ({"status": {"code": 2}}, {"status": "ERROR"}),
        ({"status": {"code": True}}, {"status": "OK"}),
        ({"status": {"code": "STATUS_CODE_ERROR"}}, {"status": "ERROR"}),
        ({"status": {"code": 9}}, {"status": "UNSET"}),
        ({"status": {"code": "9" * 5000}}, {"status": "UNSET"}),  # int() raised: exit 1, internal error
        ({"status": {"code": "2"}}, {"status": "ERROR"}),
        ({"name": 12}, {"name": "12"}),
        ({"attributes": _ATTRS}, {"attributes": {"a": "x", "n": 7, "two": 1, "s": "5"}}),
    ],
)
def test_canonical_and_other_spellings_read_the_same(fields, expected):
    span = {**_otlp_span(), "startTimeUnixNano": "5", "endTimeUnixNano": "9", **fields}
    (record,) = records_from_object(_request(span))
    assert {key: getattr(record, key) for key in expected} == expected


@pytest.mark.parametrize(
    "fields",
    [
        {"traceId": "0" * 32},  # all-zero is "no id", not a fast-path id
        {"startTimeUnixNano": str(2**64)},  # 20 digits, beyond fixed64
        {"endTimeUnixNano": "99999999999999999999"},
        {"startTimeUnixNano": "NaN"},
        {"startTimeUnixNano": True},
    ],
)
def test_out_of_range_and_missing_ids_stay_typed_errors(fields):
    with pytest.raises(TraceFormatError):
        list(records_from_object(_request({**_otlp_span(), **fields})))


def test_records_before_a_bad_span_come_first_then_the_error():
    good = _otlp_span(span="1" * 16)
    records = records_from_object(_request(good, _otlp_span(span="2" * 16, startTimeUnixNano=-1)))
    assert next(records).span_id == "1" * 16
    with pytest.raises(TraceFormatError, match="span 1"):
        next(records)


def test_the_fast_record_constructor_builds_the_same_frozen_record():
    import dataclasses
    import pickle

    from tg_bridge.spans import SpanRecord
    from tg_bridge.traces import otlp_json

    args = (TRACE, SPAN, None, "n", 1, 2, {"a": ("x", 1)}, "OK", ({"name": "e", "time_ns": 3, "attributes": {}},),
            {"service.name": "svc"})  # fmt: skip
    assert otlp_json._make_record is otlp_json._record_fast  # in use for today's SpanRecord
    fast, slow = otlp_json._record_fast(*args), SpanRecord(*args)
    assert fast == slow and repr(fast) == repr(slow) and dataclasses.astuple(fast) == dataclasses.astuple(slow)
    assert pickle.loads(pickle.dumps(fast)) == slow and dataclasses.replace(fast, name="m").name == "m"
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.name = "changed"  # type: ignore[misc]


def test_attribute_lists_and_mappings_of_other_types_read_like_plain_ones():
    from collections import OrderedDict, UserList

    class Entries(list):
        pass

    entries = [{"key": "a", "value": {"stringValue": "x"}}, OrderedDict(key="n", value={"intValue": "3"})]
    for raw in (Entries(entries), UserList(entries)):
        (record,) = records_from_object(_request({**_otlp_span(), "attributes": raw}))
        assert record.attributes == ({"a": "x", "n": 3} if isinstance(raw, list) else {})
