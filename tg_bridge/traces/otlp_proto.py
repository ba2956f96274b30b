"""Reading binary OTLP trace files (protobuf), one request at a time.

Two layouts: the OTel Collector file exporter's ``format: proto`` — a stream of
``ExportTraceServiceRequest`` messages, each preceded by its size as a big-endian uint32 — and
a single message (a ``.pb`` file holding one request or ``TracesData``, the same wire format).
The layout is decided by walking the size prefixes: when they tile the file exactly it is a
stream, otherwise one message.

Each span is converted straight from the parsed protobuf objects to a :class:`SpanRecord`
(no intermediate dict) and the records EQUAL those of the JSON reader (:mod:`.otlp_json`) for
the same spans written as protobuf-JSON (``json_format.MessageToDict``): ids as lowercase hex
(empty or all-zero ids are missing, other lengths go through
:func:`.otlp_json.normalize_id` as their base64 text), int timestamps, status names, AnyValue
attributes decoded like :func:`.otlp_json.decode_any_value` (empty keys skipped, as
protobuf-JSON leaves them out), events, and one resource dict per ``ResourceSpans`` shared
by its spans.

Memory: one message at a time (at most ``max_message_bytes``; larger is a TraceFormatError);
the layout walk keeps only a count. Needs ``opentelemetry-proto``
(``pip install "tg-bridge[traces]"``); without it a binary file is a TraceFormatError naming
that pip line. Errors: TraceFormatError naming the file and ``byte N`` (undecodable message)
or ``message at byte N span I`` (a span without ids). Blocking file I/O.
"""

from __future__ import annotations

import base64
import json
import os
import struct
from collections.abc import Iterator
from typing import IO, Any

from ..exceptions import TraceFormatError
from ..spans import SpanRecord
from .checks import too_deep
from .otlp_json import _jsonable, _make_record, normalize_id

__all__ = ["decode_request", "has_protobuf", "proto_spans", "spans_from_message"]

_PIP = 'pip install "tg-bridge[traces]"  (or: pip install opentelemetry-proto)'
_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)
_STATUS = ("UNSET", "OK", "ERROR")  # StatusCode 0, 1, 2; any other number reads as UNSET
_HEADER = struct.Struct(">I")


def _request_type() -> Any:
    try:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )
    except ImportError:
        return None
    return ExportTraceServiceRequest


def _is_stream(handle: IO[bytes], size: int, limit: int) -> bool:
    """True when the 4-byte size prefixes tile the file exactly (a length-prefixed stream).

    Reads only the headers and keeps only the current offset: a file of millions of tiny
    messages costs time, never memory."""
    offset = 0
    read, seek, unpack = handle.read, handle.seek, _HEADER.unpack
    while offset < size:
        seek(offset)
        header = read(4)
        if len(header) < 4:
            return False
        (length,) = unpack(header)
        if length > limit or offset + 4 + length > size:
            return False
        offset += 4 + length
    return True


def _messages(handle: IO[bytes], name: str, max_message_bytes: int) -> Iterator[tuple[int, bytes]]:
    """(offset of the message, its bytes), one message in memory at a time."""
    size = os.fstat(handle.fileno()).st_size
    if _is_stream(handle, size, max_message_bytes):
        handle.seek(0)
        offset = 0
        read, unpack = handle.read, _HEADER.unpack
        while offset < size:
            header = read(4)
            length = unpack(header)[0] if len(header) == 4 else -1
            data = read(length) if length >= 0 else b""
            if len(data) != length:  # the file shrank since the walk
                raise TraceFormatError("truncated OTLP protobuf stream", path=name, where=f"byte {offset}")
            yield offset + 4, data
            offset += 4 + length
        return
    if size > max_message_bytes:
        raise TraceFormatError(f"binary data larger than {max_message_bytes} bytes that is not a "
                               "length-prefixed OTLP stream", path=name, where="byte 0")  # fmt: skip
    handle.seek(0)
    yield 0, handle.read(max_message_bytes + 1)


def proto_spans(handle: IO[bytes], name: str, *, max_message_bytes: int) -> Iterator[SpanRecord]:
    """Yield the span records of a binary OTLP file (see the module docstring).

    On a bad message or span the records before it come first, then the TraceFormatError."""
    if not has_protobuf():
        raise TraceFormatError(f"binary data: reading OTLP protobuf needs `{_PIP}`", path=name, where="byte 0")
    for offset, data in _messages(handle, name, max_message_bytes):
        # Located at the message's size prefix (its first byte for a bare message).
        message = decode_request(data, name, f"byte {max(0, offset - 4)}")
        del data
        records: list[SpanRecord] = []
        try:
            spans_from_message(message, records, name, f"message at byte {offset}")
        except TraceFormatError:
            yield from records
            raise
        yield from records


def has_protobuf() -> bool:
    """Whether ``opentelemetry-proto`` (and so protobuf) can be imported."""
    return _request_type() is not None


def decode_request(data: bytes, name: str, where: str) -> Any:
    """One serialized ``ExportTraceServiceRequest`` (or ``TracesData``: same wire format),
    parsed. TraceFormatError naming ``name`` and ``where`` when it does not parse or when
    ``opentelemetry-proto`` is missing (check :func:`has_protobuf` first to tell them apart)."""
    request_type = _request_type()
    if request_type is None:
        raise TraceFormatError(f"binary data: reading OTLP protobuf needs `{_PIP}`", path=name, where=where)
    from google.protobuf.message import DecodeError  # type: ignore[import-untyped]

    message = request_type()
    try:
        message.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise TraceFormatError(f"binary data that is not OTLP protobuf: {exc}", path=name, where=where) from None
    return message


def spans_from_message(message: Any, out: list[SpanRecord], name: str, where: str) -> None:
    """Append the span records of one parsed request (:func:`decode_request`) to ``out``.

    A span that cannot become a record (no ids; attributes nested deeper than we walk) is a
    TraceFormatError located at ``where`` and the span's index in the message; the records
    of the spans before it are in ``out`` by then (the caller decides whether to keep them)."""
    start = len(out)
    try:
        _fill(message, out)
    except (_SpanError, RecursionError) as exc:  # RecursionError: AnyValues nested deeper than we walk
        reason = exc.reason if isinstance(exc, _SpanError) else too_deep()
        raise TraceFormatError(reason, path=name, where=f"{where} span {len(out) - start}") from None


class _SpanError(Exception):
    """A span that cannot become a record; located by the caller (index = records so far)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _fill(message: Any, out: list[SpanRecord]) -> None:
    """Append the records of one parsed request to ``out`` (the hot loop: no generator frame,
    no dict per span, no location string unless a span is bad)."""
    append, make, status_names = out.append, _make_record, _STATUS
    for rs in message.resource_spans:
        resource = _attributes(rs.resource.attributes)
        for ss in rs.scope_spans:
            for span in ss.spans:
                raw = span.trace_id
                trace_id = raw.hex() if len(raw) == 16 and raw != _ZERO_TRACE else _odd_id(raw, 16)
                raw = span.span_id
                span_id = raw.hex() if len(raw) == 8 and raw != _ZERO_SPAN else _odd_id(raw, 8)
                if not trace_id or not span_id:
                    raise _SpanError("span without traceId/spanId")
                raw = span.parent_span_id
                parent = raw.hex() if len(raw) == 8 and raw != _ZERO_SPAN else _odd_id(raw, 8)
                code = span.status.code
                events = span.events
                append(make(trace_id, span_id, parent, span.name, span.start_time_unix_nano,
                            span.end_time_unix_nano, _attributes(span.attributes),
                            status_names[code] if 0 <= code <= 2 else "UNSET",
                            _events(events) if events else (), resource))  # fmt: skip


def _odd_id(raw: bytes, nbytes: int) -> str | None:
    """An id that is empty, all zeros or not ``nbytes`` long: read as the JSON reader reads
    its protobuf-JSON (base64) spelling, so both readers agree on every byte string."""
    return normalize_id(base64.b64encode(raw).decode("ascii"), nbytes) if raw else None


def _attributes(pairs: Any) -> dict[str, Any]:
    """A repeated ``KeyValue`` as a dict; empty keys and unset values skipped (protobuf-JSON
    leaves an empty key out, and the JSON reader skips an entry without one)."""
    attrs: dict[str, Any] = {}
    for kv in pairs:
        value = kv.value
        text = value.string_value  # non-empty only when the oneof holds a string: the common case
        if not text:
            text = _any_value(value)
            if text is None:
                continue
        key = kv.key
        if key:
            attrs[key] = text
    return attrs


def _any_value(value: Any) -> Any:
    """An ``AnyValue`` message as :func:`.otlp_json.decode_any_value` reads its protobuf-JSON."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "double_value":
        return value.double_value
    if kind == "array_value":
        return tuple(item for item in map(_any_value, value.array_value.values) if item is not None)
    if kind == "kvlist_value":
        # protobuf-JSON leaves an empty key out; the JSON reader then names it "None".
        obj = {kv.key or "None": _jsonable(_any_value(kv.value)) for kv in value.kvlist_value.values}
        return json.dumps(obj, ensure_ascii=False)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return None


def _events(events: Any) -> tuple[dict[str, Any], ...]:
    return tuple({"name": e.name, "time_ns": e.time_unix_nano, "attributes": _attributes(e.attributes)}
                 for e in events)  # fmt: skip
