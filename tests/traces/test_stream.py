"""Streaming readers: same records as the whole-file reader, any chunking, any format."""

from __future__ import annotations

import base64
import json
import pathlib
import struct
import sys

import pytest

from tg_bridge.exceptions import TraceFormatError
from tg_bridge.traces import (
    group_by_trace,
    iter_spans,
    iter_traces,
    otlp_json,
    read_spans,
    sniff_format,
)
from tg_bridge.traces.otlp_scan import scan_spans

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
ALL_FIXTURES = sorted(
    [*FIXTURES.glob("*.json"), *FIXTURES.glob("*.jsonl"), *(FIXTURES / "conventions").glob("*.json")]
)
sys.path.insert(0, str(ROOT / "benchmarks"))
import gen_otlp

# Every test here runs with the C span conversion and with the pure-Python one.
pytestmark = pytest.mark.usefixtures("both_converters")


def old(path):
    """The whole-file reader this module replaces: the reference for equality."""
    return list(otlp_json.iter_spans(path))


def scan(path, chunk):
    with open(path, "rb") as handle:
        return list(scan_spans(handle, str(path), chunk_size=chunk))


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def _span(n, **attrs):
    return {"traceId": f"{n // 3 + 1:032x}", "spanId": f"{n + 1:016x}", "name": f"s{n}",
            "startTimeUnixNano": str(1000 + n), "endTimeUnixNano": str(2000 + n),
            "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attrs.items()]}  # fmt: skip


def _request(spans, resource="svc"):
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": resource}}]},
        "scopeSpans": [{"scope": {"name": "x"}, "spans": spans}],
    }]}  # fmt: skip


@pytest.mark.parametrize("path", ALL_FIXTURES, ids=lambda p: p.name)
def test_every_fixture_reads_as_the_whole_file_reader_does(path):
    reference = old(path)
    assert reference, "fixture without spans"
    assert read_spans(path) == reference
    assert [list(t) for t in iter_traces(path)] == list(group_by_trace(reference).values())


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 4096])
@pytest.mark.parametrize("path", [p for p in ALL_FIXTURES if p.suffix == ".json"], ids=lambda p: p.name)
def test_document_scanner_at_any_chunk_size(path, chunk):
    assert scan(path, chunk) == old(path)


# Strings full of what a scanner could mistake for structure, escapes and non-ASCII text.
TRICKY = [
    'quote \\" inside',
    "backslash at end \\",
    "\\\\\"\\\\",
    '{"not": ["a", "span"]} }}} ]]] {{{ [[[',
    '},{"traceId":"00000000000000000000000000000001","spanId":"0000000000000001"}',
    "é ü 中文 🙂 \u2028",
    "x" * 5000,
]


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 8, 13, 1024])
def test_chunk_boundaries_inside_strings_and_escapes(tmp_path, chunk):
    spans = [_span(i, **{f"a{j}": t for j, t in enumerate(TRICKY)}) for i in range(7)]
    for layout, text in {
        "compact": json.dumps(_request(spans), separators=(",", ":"), ensure_ascii=False),
        "pretty": json.dumps(_request(spans), indent=2),
        "escaped": json.dumps(_request(spans)),  # \\uXXXX escapes
    }.items():
        path = _write(tmp_path, f"{layout}.json", text + "\n")
        reference = old(path)
        assert len(reference) == 7
        assert reference[0].attributes["a1"] == TRICKY[1]
        assert scan(path, chunk) == reference, layout


def test_spans_with_links_that_look_like_the_next_span(tmp_path):
    """Links inside a span repeat the separator between spans (`},{"traceId":`): the fast
    guess must not cut a span there."""
    spans = []
    for i in range(12):
        span = _span(i, note="n")
        span["links"] = [{"traceId": f"{i + 9:032x}", "spanId": f"{i + 9:016x}"},
                         {"traceId": f"{i + 8:032x}", "spanId": f"{i + 8:016x}"}]  # fmt: skip
        spans.append(span)
    path = _write(tmp_path, "links.json", json.dumps(_request(spans), separators=(",", ":")))
    assert [s.span_id for s in scan(path, 1 << 20)] == [f"{i + 1:016x}" for i in range(12)]
    assert scan(path, 1 << 20) == scan(path, 3) == old(path)


def test_resource_written_after_its_spans_is_still_applied(tmp_path):
    body = ('{"resourceSpans":[{"scopeSpans":[{"spans":[%s,%s]}],"schemaUrl":"x",'  # noqa: UP031
            '"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"late"}}]}},'
            '{"resource":{"attributes":[]},"scopeSpans":[{"spans":[%s]}]}]}'
            % tuple(json.dumps(_span(i)) for i in range(3)))
    path = _write(tmp_path, "late.json", body)
    records = scan(path, 4)
    assert records == old(path)
    assert [r.resource for r in records] == [{"service.name": "late"}] * 2 + [{}]


def _generated(tmp_path, spans=2000):
    jsonl = tmp_path / "gen.jsonl"
    gen_otlp.write(str(jsonl), spans)
    requests = [json.loads(line) for line in jsonl.read_text().splitlines()]
    merged = {"resourceSpans": [rs for r in requests for rs in r["resourceSpans"]]}
    return jsonl, requests, merged


def test_generated_files_in_every_layout(tmp_path):
    jsonl, requests, merged = _generated(tmp_path)
    reference = old(jsonl)
    assert len(reference) == 2000
    layouts = {
        "one_line.json": json.dumps(merged, separators=(",", ":")),
        "pretty.json": json.dumps(merged, indent=1),
        "list.json": json.dumps(requests, indent=1),
        "concatenated.json": "\n\n".join(json.dumps(r, indent=1) for r in requests),
    }
    for name, text in layouts.items():
        path = _write(tmp_path, name, text)
        assert read_spans(path) == reference, name
    traces = list(iter_traces(jsonl))
    assert len(traces) == 400 and traces == list(group_by_trace(reference).values())


def test_a_jsonl_line_too_long_to_hold_is_scanned_span_by_span(tmp_path):
    _, requests, merged = _generated(tmp_path, 1000)
    assert len(requests) == 4
    lines = [json.dumps(r) for r in requests[:2]] + [json.dumps(merged)] + [json.dumps(requests[3])]
    path = _write(tmp_path, "mixed.jsonl", "\n".join(lines) + "\n")
    assert list(iter_spans(path, max_line_bytes=10_000, chunk_size=777)) == old(path)


def test_sniffing(tmp_path):
    assert sniff_format(FIXTURES / "oi_langchain_rag.jsonl") == "jsonl"
    assert sniff_format(FIXTURES / "genai_weather_agent.json") == "json"
    assert sniff_format(_write(tmp_path, "e.json", "  \n\n ")) == "empty"
    assert sniff_format(_write(tmp_path, "p.pb", b"\x0a\x84\x01\x0a\x00")) == "protobuf"
    assert read_spans(tmp_path / "e.json") == []


def test_a_small_protobuf_of_ascii_bytes_is_protobuf_not_json(tmp_path):
    """Every OTLP request starts with a newline byte (field 1's tag) and small ids and no
    timestamps leave no byte >= 0x80: still protobuf, since JSON text never holds a raw
    control character other than whitespace. It was read as JSON lines ("malformed JSON")."""
    pytest.importorskip("opentelemetry.proto")
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

    span = Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="llm")
    raw = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])])
    path = _write(tmp_path, "small.pb", raw.SerializeToString())
    assert path.read_bytes().decode("ascii")  # no byte a UTF-8 check would stop at
    assert sniff_format(path) == "protobuf"
    (record,) = read_spans(path)
    assert (record.name, record.trace_id, record.span_id) == ("llm", "01" * 16, "02" * 8)


# -- hostile input ----------------------------------------------------------------------------
def _doc_bytes(span_json: str) -> bytes:
    return ('{"resourceSpans":[{"scopeSpans":[{"spans":[%s]}]}]}' % span_json).encode()  # noqa: UP031


_OK = json.dumps(_span(0))
_HEAD = '{"resourceSpans":[{"scopeSpans":[{"spans":['


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (_HEAD + _OK + "]}]}]}]]", "malformed"),  # closes more than it opened
        (_HEAD + _OK + "]}]}", "truncated"),  # never closes the request
        (_HEAD + _OK + ',{"name":"x"]}]}]}', "malformed"),  # '{' closed by ']'
        (_HEAD + '{"name":"never closed', "truncated"),
        (_HEAD + _OK + " " + _OK + "]}]}]}", "expected ','"),
        ('{"resourceSpans": 5}', "not a list"),
    ],
)
def test_malformed_documents_name_the_file_and_a_byte_offset(tmp_path, body, words):
    path = _write(tmp_path, "bad.json", "\n" + body)  # the reader picks the scanner
    for chunk in (3, 1 << 20):
        with pytest.raises(TraceFormatError) as info, open(path, "rb") as handle:
            list(scan_spans(handle, str(path), chunk_size=chunk))
        err = info.value
        assert err.path == str(path) and "byte " in (err.where or "") and words in str(err)


def test_non_utf8_inside_a_span_names_the_exact_byte(tmp_path):
    body = _doc_bytes('{"traceId":"%s","spanId":"%s","name":"caf\xe9"}' % ("1" * 32, "2" * 16))  # noqa: UP031
    body = body.replace("caf\xe9".encode(), b"caf\xe9")
    assert b"\xe9" in body
    path = _write(tmp_path, "latin1.json", body)
    with pytest.raises(TraceFormatError, match="UTF-8") as info:
        scan(path, 5)
    bad = body.index(b"\xe9")
    assert f"at byte {bad}" in str(info.value)


def test_nesting_beyond_the_limit_is_an_error_not_a_crash(tmp_path):
    deep = '{"traceId":"%s","spanId":"%s","name":"x","attributes":%s}' % ("1" * 32, "2" * 16, "[" * 50_000)  # noqa: UP031
    path = _write(tmp_path, "deep.json", _doc_bytes(deep))
    with pytest.raises(TraceFormatError, match="nested deeper") as info:
        scan(path, 4096)
    assert "byte " in (info.value.where or "")


def test_a_huge_string_is_rejected_with_bounded_memory(tmp_path):
    import tracemalloc

    limit = 1 << 20
    path = tmp_path / "huge_string.json"
    with path.open("wb") as fh:  # a 24 MB string inside one span, never closed
        fh.write(b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"')
        for _ in range(24):
            fh.write(b"x" * (1 << 20))
    tracemalloc.start()
    try:
        with pytest.raises(TraceFormatError, match="larger than") as info, open(path, "rb") as handle:
            list(scan_spans(handle, str(path), chunk_size=1 << 16, max_value_bytes=limit))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "byte " in (info.value.where or "")
    assert peak < 6 * limit, peak


def test_nul_bytes_in_json_and_garbage_protobuf(tmp_path):
    with pytest.raises(TraceFormatError, match="binary"):
        read_spans(_write(tmp_path, "nul.json", b'{"resourceSpans": [\x00]}'))
    with pytest.raises(TraceFormatError, match="binary") as info:
        read_spans(_write(tmp_path, "junk.pb", bytes(range(256)) * 3))
    assert info.value.where == "byte 0"


# -- protobuf ---------------------------------------------------------------------------------
def _proto_messages(path):
    pytest.importorskip("opentelemetry.proto")
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return [json_format.Parse(line, ExportTraceServiceRequest()).SerializeToString() for line in lines]


def test_protobuf_stream_and_single_message_equal_the_json_records(tmp_path):
    source = FIXTURES / "oi_langchain_agent.jsonl"  # base64 ids, as protobuf-JSON writes them
    messages = _proto_messages(source)
    framed = b"".join(struct.pack(">I", len(m)) + m for m in messages)
    stream_path = _write(tmp_path, "traces.binpb", framed)
    assert sniff_format(stream_path) == "protobuf"
    assert read_spans(stream_path) == old(source)
    single = _write(tmp_path, "one.pb", messages[0])
    expected = list(otlp_json.records_from_object(json.loads(source.read_text().splitlines()[0])))
    assert read_spans(single) == expected


def test_ids_in_protobuf_are_bytes_and_come_out_as_hex(tmp_path):
    messages = _proto_messages(FIXTURES / "oi_langchain_agent.jsonl")
    spans = read_spans(_write(tmp_path, "t.pb", messages[0]))
    first = json.loads((FIXTURES / "oi_langchain_agent.jsonl").read_text().splitlines()[0])
    raw_id = first["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"]
    assert spans[0].trace_id == base64.b64decode(raw_id).hex()


# -- the JSON parser --------------------------------------------------------------------------
def test_without_orjson_the_standard_library_reads_the_same(monkeypatch, tmp_path):
    from tg_bridge.traces import fastjson

    jsonl, _, merged = _generated(tmp_path, 500)
    document = _write(tmp_path, "doc.json", json.dumps(merged, indent=1))
    expected = old(jsonl)
    monkeypatch.setattr(fastjson, "_fast", json.loads)
    assert read_spans(jsonl) == expected and read_spans(document) == expected
    with pytest.raises(TraceFormatError, match="truncated"):
        read_spans(_write(tmp_path, "cut.json", "\n" + json.dumps(merged)[:5000]))


def test_what_only_the_standard_library_accepts_still_reads(tmp_path):
    """orjson rejects the NaN literal and integers beyond 64 bits; json reads them: the fast
    path must fall back, not fail."""
    text = json.dumps(_request([_span(0)]))
    text = text.replace('"startTimeUnixNano": "1000"', '"startTimeUnixNano": 1000, "x": NaN, "y": 1' + "0" * 30)
    path = _write(tmp_path, "nan.jsonl", text + "\n")
    (record,) = read_spans(path)
    assert record.start_ns == 1000 and record == old(path)[0]


def test_protobuf_fields_read_as_protobuf_json_would(tmp_path):
    """The field-by-field protobuf conversion gives the records that going through
    json_format.MessageToDict (protobuf-JSON, the reference) gives, odd values included."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from tg_bridge.traces.otlp_json import _attributes, _span

    values = [{"stringValue": ""}, {"intValue": "-7"}, {"doubleValue": 1.5}, {"boolValue": False},
              {"bytesValue": "AAE="}, {"arrayValue": {"values": [{"intValue": "1"}, {}, {"stringValue": "x"}]}},
              {"kvlistValue": {"values": [{"key": "a", "value": {"boolValue": True}}, {"value": {"intValue": "2"}}]}},
              {}]  # fmt: skip
    attrs = [{"key": f"k{i}", "value": v} for i, v in enumerate(values)] + [{"value": {"stringValue": "no key"}}]
    spans = [
        {"traceId": "AAECAwQFBgcICQoLDA0ODw==", "spanId": "AQIDBAUGBwg=", "name": "full", "attributes": attrs,
         "startTimeUnixNano": "5", "endTimeUnixNano": "18446744073709551615", "status": {"code": "STATUS_CODE_ERROR"},
         "events": [{"name": "e", "timeUnixNano": "9", "attributes": attrs[:2]}, {}]},
        {"traceId": "AAECAwQ=", "spanId": "AQIDBAUGBwg=", "parentSpanId": "AAAAAAAAAAA="},  # odd/zero ids
        {"traceId": "AAECAwQFBgcICQoLDA0ODw==", "spanId": "AQIDBAUGBwk=", "parentSpanId": "AQIDBAUGBwg=",
         "status": {"code": 7}},
    ]  # fmt: skip
    request = {"resourceSpans": [{"resource": {"attributes": attrs[:3]}, "scopeSpans": [{"spans": spans}]}]}
    message = json_format.ParseDict(request, ExportTraceServiceRequest())
    path = _write(tmp_path, "odd.pb", message.SerializeToString())
    rs = message.resource_spans[0]
    resource = _attributes(json_format.MessageToDict(rs.resource).get("attributes"))
    expected = [_span(json_format.MessageToDict(s), resource, "x") for s in rs.scope_spans[0].spans]
    assert read_spans(path) == expected
    assert expected[0].attributes["k0"] == "" and "" not in expected[0].attributes


@pytest.mark.parametrize("gc_on", [True, False])
def test_the_gc_state_is_restored_after_reading_and_after_an_error(tmp_path, gc_on):
    """The readers pause the cyclic GC while they run (never while the caller's code runs) and
    put it back as they found it, also when the file is bad."""
    import gc

    good = _write(tmp_path, "good.jsonl", json.dumps(_request([_span(0), _span(1)])) + "\n")
    bad = _write(tmp_path, "bad.jsonl", json.dumps(_request([_span(0)])) + "\n{\"resourceSpans\": 5}\n")
    states = []
    was = gc.isenabled()
    try:
        gc.enable() if gc_on else gc.disable()
        for _trace in iter_traces(good):
            states.append(gc.isenabled())  # the caller's code runs with the GC as it set it
        for _ in iter_spans(good):
            states.append(gc.isenabled())
        with pytest.raises(TraceFormatError, match="line 2"):
            list(iter_traces(bad))
        states.append(gc.isenabled())
    finally:
        gc.enable() if was else gc.disable()
    assert states == [gc_on] * len(states) and len(states) == 4


def test_grouper_frees_each_trace_once_the_caller_moves_on():
    """Traces held in memory are handed out without keeping the earlier ones alive (graphs
    built one at a time then need less than the records of the whole file plus the graphs)."""
    import weakref

    from tg_bridge.spans import SpanRecord
    from tg_bridge.traces.grouping import TraceGrouper

    with TraceGrouper() as grouper:
        for span in range(3):
            for trace in range(4):
                grouper.add(SpanRecord(f"{trace:032x}", f"{span + 1:016x}", None, "s"))
        refs, alive = [], []
        for trace in grouper.traces():
            refs.append(weakref.ref(trace[0]))
            del trace
            alive.append(sum(ref() is not None for ref in refs[:-1]))
    assert len(refs) == 4 and alive == [0, 0, 0, 0]


def test_spilled_records_come_back_with_the_same_value_types():
    """The spill codec (marshal, JSON for anything else) keeps tuples, bools, NaN, big ints,
    events and odd mappings exactly."""
    import types

    from tg_bridge.spans import SpanRecord
    from tg_bridge.traces.grouping import TraceGrouper

    attrs = {"nan": float("nan"), "big": 10**30, "tuple": (1, "a", True, 2.5), "bool": False, "one": 1}
    spans = [
        SpanRecord(f"{t:032x}", f"{s + 1:016x}", None if s == 0 else "0" * 15 + "1", f"s{s}", s, s + 1,
                   dict(attrs, s=s), "OK", ({"name": "e", "time_ns": 3, "attributes": {"k": (1,)}},), {"svc": "x"})
        for t in range(3) for s in range(2)
    ]  # fmt: skip
    proxy = SpanRecord("f" * 32, "1" * 16, None, "proxy", attributes=types.MappingProxyType({"a": 1}))
    with TraceGrouper(max_open_spans=1) as grouper:
        grouper.add_all([proxy, *spans])  # not a dict: spilled through the JSON fallback
        out = [span for trace in grouper.traces() for span in trace]
        assert grouper.spilled_spans >= len(spans)
    assert out[0].name == "proxy" and dict(out[0].attributes) == {"a": 1}
    assert repr(out[1:]) == repr(spans)
    assert type(out[1].attributes["tuple"]) is tuple and out[1].attributes["bool"] is False
