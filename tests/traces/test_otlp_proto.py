"""The protobuf reader (tg_bridge.traces.otlp_proto): same records as the JSON reader for the
same spans, located typed errors, memory bounded by one message."""

from __future__ import annotations

import base64
import json
import math
import pathlib
import struct
import tempfile
import tracemalloc
from typing import Any

import pytest

pytest.importorskip("opentelemetry.proto")

from google.protobuf import json_format  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402

from tg_bridge.exceptions import TraceFormatError  # noqa: E402
from tg_bridge.traces import iter_spans, iter_traces, read_spans, sniff_format  # noqa: E402

# -- generated spans ----------------------------------------------------------------------------
# A plain-Python description of the data (what hypothesis generates and shrinks), then built
# into protobuf messages; the same messages are written as a length-prefixed protobuf stream and
# as protobuf-JSON lines (json_format.MessageToDict: base64 ids, int64 as strings, "NaN").

_keys = st.sampled_from(["", "k", "key.a", "llm.input_messages.0.message.content", "ключ", "🔑"])
_texts = st.text(max_size=12)
_scalars = st.one_of(
    st.tuples(st.just("string"), _texts),
    st.tuples(st.just("bool"), st.booleans()),
    st.tuples(st.just("int"), st.one_of(st.integers(-(2**63), 2**63 - 1),
                                        st.sampled_from([0, -1, 2**63 - 1, -(2**63)]))),
    st.tuples(st.just("double"), st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                                           st.sampled_from([math.nan, math.inf, -math.inf, -0.0]))),
    st.tuples(st.just("bytes"), st.binary(max_size=6)),
    st.just(("unset", None)),
)  # fmt: skip
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.tuples(st.just("array"), st.lists(inner, max_size=3)),
        st.tuples(st.just("kvlist"), st.lists(st.tuples(_keys, inner), max_size=3)),
    ),
    max_leaves=6,
)
_attrs = st.lists(st.tuples(_keys, _values), max_size=5)
_ids16 = st.one_of(st.binary(min_size=16, max_size=16), st.sampled_from([bytes(16), b"\x01" * 16]))
_ids8 = st.one_of(st.binary(min_size=8, max_size=8), st.just(b"\xab" * 8))
_parents = st.one_of(st.just(b""), st.just(bytes(8)), st.binary(min_size=8, max_size=8),
                     st.binary(min_size=1, max_size=12))  # fmt: skip
_stamps = st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([0, 2**64 - 1]))
_events = st.lists(st.tuples(_texts, _stamps, _attrs), max_size=2)
_spans = st.fixed_dictionaries({
    "trace_id": _ids16, "span_id": _ids8, "parent": _parents, "name": _texts,
    "start": _stamps, "end": _stamps, "attrs": _attrs, "events": _events,
    "status": st.sampled_from([None, 0, 1, 2, 7]),
})  # fmt: skip
_resource_spans = st.tuples(_attrs, st.lists(st.lists(_spans, max_size=3), min_size=1, max_size=2))
_requests = st.lists(st.lists(_resource_spans, min_size=1, max_size=2), min_size=1, max_size=3)


def _fill_value(target: Any, value: tuple[str, Any]) -> None:
    kind, item = value
    if kind == "string":
        target.string_value = item
    elif kind == "bool":
        target.bool_value = item
    elif kind == "int":
        target.int_value = item
    elif kind == "double":
        target.double_value = item
    elif kind == "bytes":
        target.bytes_value = item
    elif kind == "array":
        target.array_value.SetInParent()
        for element in item:
            _fill_value(target.array_value.values.add(), element)
    elif kind == "kvlist":
        target.kvlist_value.SetInParent()
        for key, element in item:
            _fill_kv(target.kvlist_value.values.add(), key, element)


def _fill_kv(target: Any, key: str, value: tuple[str, Any]) -> None:
    target.key = key
    _fill_value(target.value, value)


def _message(request: list[Any]) -> ExportTraceServiceRequest:
    message = ExportTraceServiceRequest()
    for resource_attrs, scopes in request:
        rs = message.resource_spans.add()
        for key, value in resource_attrs:
            _fill_kv(rs.resource.attributes.add(), key, value)
        for spans in scopes:
            ss = rs.scope_spans.add()
            for spec in spans:
                span = ss.spans.add(trace_id=spec["trace_id"], span_id=spec["span_id"],
                                    parent_span_id=spec["parent"], name=spec["name"],
                                    start_time_unix_nano=spec["start"], end_time_unix_nano=spec["end"])  # fmt: skip
                for key, value in spec["attrs"]:
                    _fill_kv(span.attributes.add(), key, value)
                for name, stamp, attrs in spec["events"]:
                    event = span.events.add(name=name, time_unix_nano=stamp)
                    for key, value in attrs:
                        _fill_kv(event.attributes.add(), key, value)
                if spec["status"] is not None:
                    span.status.code = spec["status"]
    return message


def _collector_json(message: ExportTraceServiceRequest) -> dict[str, Any]:
    """protobuf-JSON as the collector's file exporter writes it: 16- and 8-byte ids as hex
    (MessageToDict writes base64, which the JSON reader misreads when it starts with "0x":
    see test_a_base64_id_that_starts_with_0x_reads_as_its_bytes); other lengths stay base64."""
    request = json_format.MessageToDict(message)
    for rs in request.get("resourceSpans", ()):
        for ss in rs.get("scopeSpans", ()):
            for span in ss.get("spans", ()):
                for key, nbytes in (("traceId", 16), ("spanId", 8), ("parentSpanId", 8)):
                    raw = base64.b64decode(span.get(key, ""))
                    if len(raw) == nbytes:
                        span[key] = raw.hex()
    return request


def _write_both(directory: pathlib.Path, messages: list[ExportTraceServiceRequest]) -> tuple[pathlib.Path, pathlib.Path]:
    proto = directory / "traces.binpb"
    proto.write_bytes(b"".join(struct.pack(">I", m.ByteSize()) + m.SerializeToString() for m in messages))
    jsonl = directory / "traces.jsonl"
    jsonl.write_text("".join(json.dumps(_collector_json(m), ensure_ascii=False) + "\n"
                             for m in messages), encoding="utf-8")  # fmt: skip
    return proto, jsonl


def _read_until_error(path: pathlib.Path) -> tuple[list[Any], str | None]:
    """The records a reader yields and the reason of the TraceFormatError it ends with, if any."""
    records: list[Any] = []
    try:
        for record in iter_spans(path):
            records.append(record)
    except TraceFormatError as exc:
        return records, str(exc).rsplit(": ", 1)[-1]
    return records, None


def _comparable(records: list[Any]) -> list[str]:
    # repr: NaN never equals NaN, and repr also tells 1 from 1.0 from True.
    return [repr(r) for r in records]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_requests)
def test_protobuf_records_equal_the_json_records_of_the_same_spans(requests):
    messages = [_message(r) for r in requests]
    with tempfile.TemporaryDirectory() as tmp:
        proto, jsonl = _write_both(pathlib.Path(tmp), messages)
        assert sniff_format(proto) == "protobuf" and sniff_format(jsonl) == "jsonl"
        from_proto, proto_error = _read_until_error(proto)
        from_json, json_error = _read_until_error(jsonl)
    assert _comparable(from_proto) == _comparable(from_json)
    assert (proto_error is None) == (json_error is None), (proto_error, json_error)
    if proto_error is not None:
        assert proto_error == json_error == "span without traceId/spanId"
    if "nan" not in repr(from_json):  # NaN != NaN, also inside tuples and events
        assert from_proto == from_json


def test_every_anyvalue_kind_reads_as_in_json(tmp_path):
    """One span with each kind at its edges (the property test above draws them at random)."""
    attrs = [("s", ("string", "héllo ✓")), ("empty", ("string", "")), ("t", ("bool", True)),
             ("f", ("bool", False)), ("max", ("int", 2**63 - 1)), ("min", ("int", -(2**63))),
             ("neg", ("int", -7)), ("nan", ("double", math.nan)), ("inf", ("double", -math.inf)),
             ("d", ("double", 1.5)), ("b", ("bytes", b"\x00\xff")), ("unset", ("unset", None)),
             ("arr", ("array", [("int", 1), ("unset", None), ("string", "x"), ("array", [("bool", True)])])),
             ("kv", ("kvlist", [("a", ("string", "1")), ("", ("int", 2)), ("n", ("double", math.nan)),
                                ("in", ("kvlist", [("z", ("array", [("string", "q")]))]))])),
             ("", ("string", "no key"))]  # fmt: skip
    span = {"trace_id": b"\x01" * 16, "span_id": b"\x02" * 8, "parent": b"", "name": "名前", "start": 5,
            "end": 2**64 - 1, "attrs": attrs, "events": [("e", 9, attrs[:3]), ("", 0, [])], "status": 2}  # fmt: skip
    proto, jsonl = _write_both(tmp_path, [_message([([("service.name", ("string", "svc"))], [[span]])])])
    (record,) = read_spans(proto)
    assert _comparable([record]) == _comparable(read_spans(jsonl))
    a = record.attributes
    assert a["s"] == "héllo ✓" and a["empty"] == "" and a["t"] is True and a["f"] is False
    assert a["max"] == 2**63 - 1 and a["min"] == -(2**63) and math.isnan(a["nan"]) and a["inf"] == -math.inf
    assert a["b"] == base64.b64encode(b"\x00\xff").decode() and "unset" not in a and "" not in a
    assert a["arr"] == (1, "x", (True,))
    assert json.loads(a["kv"]) == {"a": 1, "None": 2, "n": "nan", "in": {"z": ["q"]}}
    assert record.parent_id is None and record.status == "ERROR" and record.end_ns == 2**64 - 1
    assert record.trace_id == "01" * 16 and record.resource == {"service.name": "svc"}
    assert record.events == ({"name": "e", "time_ns": 9, "attributes": {"s": "héllo ✓", "empty": "", "t": True}},
                             {"name": "", "time_ns": 0, "attributes": {}})  # fmt: skip


def test_resource_attributes_are_converted_once_per_resource_spans(tmp_path):
    span = {"trace_id": b"\x01" * 16, "span_id": b"\x02" * 8, "parent": b"", "name": "s", "start": 1, "end": 2,
            "attrs": [], "events": [], "status": None}  # fmt: skip
    other = dict(span, span_id=b"\x03" * 8)
    proto, _ = _write_both(tmp_path, [_message([([("r", ("string", "1"))], [[span], [other]]),
                                                ([("r", ("string", "2"))], [[span]])])])  # fmt: skip
    first, second, third = read_spans(proto)
    assert first.resource is second.resource and first.resource == {"r": "1"}
    assert third.resource == {"r": "2"}


def test_a_base64_id_that_starts_with_0x_reads_as_its_bytes(tmp_path):
    """protobuf ids are bytes: the reader gives their hex whatever they look like in base64.
    The JSON reader must not take a base64 id starting with "0x"/"0X" (about 1 trace id in
    2,000) for 0x-prefixed hex either (it did: see the next test)."""
    trace_id = b"\xd1p" + bytes(13) + b"\x01"
    assert base64.b64encode(trace_id).startswith(b"0X")
    proto, _ = _write_both(tmp_path, [_message([([], [[_span_spec(b"\x02" * 8, trace_id)]])])])
    assert read_spans(proto)[0].trace_id == trace_id.hex()


def test_the_json_reader_reads_a_base64_id_that_starts_with_0x():
    from tg_bridge.traces.otlp_json import normalize_id

    trace_id = b"\xd1p" + bytes(13) + b"\x01"
    assert normalize_id(base64.b64encode(trace_id).decode(), 16) == trace_id.hex()
    assert normalize_id("0x" + trace_id.hex().upper(), 16) == trace_id.hex()  # real 0x-hex still reads


# -- errors and memory --------------------------------------------------------------------------
def _span_spec(span_id: bytes, trace_id: bytes = b"\x01" * 16) -> dict[str, Any]:
    return {"trace_id": trace_id, "span_id": span_id, "parent": b"", "name": "s", "start": 1, "end": 2,
            "attrs": [("k", ("string", "v"))], "events": [], "status": 1}  # fmt: skip


def test_a_span_without_ids_is_located_after_the_records_before_it(tmp_path):
    good = _message([([], [[_span_spec(b"\x02" * 8)]])])
    bad = _message([([], [[_span_spec(b"\x03" * 8), _span_spec(bytes(8))]])])
    proto, _ = _write_both(tmp_path, [good, bad])
    records, reason = _read_until_error(proto)
    assert [r.span_id for r in records] == ["02" * 8, "03" * 8]
    assert reason == "span without traceId/spanId"
    with pytest.raises(TraceFormatError) as info:
        read_spans(proto)
    assert info.value.path == str(proto)
    assert info.value.where == f"message at byte {4 + good.ByteSize() + 4} span 1"


def test_a_stream_of_many_empty_messages_reads_in_bounded_memory(tmp_path):
    """The layout walk keeps an offset, not a list of frames: a 2 MB file of empty
    length-prefixed messages (half a million of them) reads nothing within a small heap."""
    path = tmp_path / "empty_frames.binpb"
    path.write_bytes(b"\x00\x00\x00\x00" * 500_000)
    assert sniff_format(path) == "protobuf"
    tracemalloc.start()
    try:
        assert list(iter_spans(path)) == []
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 << 20, peak


def test_nesting_deeper_than_protobuf_allows_is_a_located_error(tmp_path):
    value: tuple[str, Any] = ("string", "leaf")
    for _ in range(150):
        value = ("array", [value])
    message = _message([([], [[dict(_span_spec(b"\x02" * 8), attrs=[("deep", value)])]])])
    path = tmp_path / "deep.binpb"
    data = message.SerializeToString()
    path.write_bytes(struct.pack(">I", len(data)) + data)
    with pytest.raises(TraceFormatError) as info:
        read_spans(path)
    assert info.value.path == str(path) and info.value.where == "byte 0"


@pytest.mark.parametrize("cut", [1, 3, 20])
def test_a_cut_stream_is_a_located_error_not_a_partial_read(tmp_path, cut):
    messages = [_message([([], [[_span_spec(bytes([i + 1]) * 8)]])]) for i in range(3)]
    data = b"".join(struct.pack(">I", m.ByteSize()) + m.SerializeToString() for m in messages)
    path = tmp_path / "cut.binpb"
    path.write_bytes(data[:-cut])
    with pytest.raises(TraceFormatError, match="not OTLP protobuf") as info:
        list(iter_traces(path))
    assert info.value.where == "byte 0"


def test_a_declared_length_beyond_the_limit_is_not_read(tmp_path):
    """A header declaring 4 GiB: not a stream; a file bigger than the per-message limit is
    refused before anything is read into memory."""
    from tg_bridge.traces.otlp_proto import proto_spans

    path = tmp_path / "huge.binpb"
    path.write_bytes(b"\xff\xff\xff\xff" + b"\x0a" * 5000)
    with open(path, "rb") as handle, pytest.raises(TraceFormatError, match="larger than 1000 bytes") as info:
        list(proto_spans(handle, str(path), max_message_bytes=1000))
    assert info.value.where == "byte 0"


@pytest.mark.parametrize("cut", [2, 6])  # inside the second size prefix; inside its message
def test_a_stream_cut_after_the_layout_walk_is_a_located_error(tmp_path, monkeypatch, cut):
    """The file shrinks between the walk of the size prefixes and the read (a writer
    truncating it): a TraceFormatError at the message's prefix, never a struct.error."""
    from tg_bridge.traces import otlp_proto

    messages = [_message([([], [[_span_spec(bytes([i + 1]) * 8)]])]) for i in range(2)]
    data = b"".join(struct.pack(">I", m.ByteSize()) + m.SerializeToString() for m in messages)
    path = tmp_path / "shrinks.binpb"
    first = 4 + messages[0].ByteSize()

    def walk_then_truncate(handle: Any, size: int, limit: int) -> bool:
        with open(path, "r+b") as writer:
            writer.truncate(first + cut)
        return True

    monkeypatch.setattr(otlp_proto, "_is_stream", walk_then_truncate)
    path.write_bytes(data)
    records, reason = _read_until_error(path)
    assert [r.span_id for r in records] == ["01" * 8] and reason == "truncated OTLP protobuf stream"
    path.write_bytes(data)
    with pytest.raises(TraceFormatError) as info:
        read_spans(path)
    assert info.value.where == f"byte {first}"
