"""Reading OTLP JSON trace files into :class:`SpanRecord` objects.

Accepted inputs (detected per file, documented in :func:`iter_spans`):

1. **OTLP JSON lines** — what the OTel Collector file exporter writes: one
   ``ExportTraceServiceRequest`` per line, ``{"resourceSpans": [{"resource": {...},
   "scopeSpans": [{"scope": {...}, "spans": [...]}]}]}``. Read line by line, so a 100,000-span
   file never becomes one Python object.
2. **One OTLP JSON document** — the same request object, pretty-printed or not, or a JSON list
   of such requests.
3. **Flattened span dicts** — a JSON list (or JSON lines) of ``{"trace_id", "span_id",
   "parent_id", "name", "attributes": {...}}``, what an in-memory exporter dump looks like
   (``ReadableSpan.to_json()``'s ``{"context": {"trace_id": "0x.."}, "parent_id": ...}`` too).

Ids may be lowercase/uppercase hex, ``0x``-prefixed hex or base64 (protobuf-JSON); they are
normalized to lowercase hex. Attribute values are OTLP ``AnyValue`` objects (``stringValue``,
``intValue`` as string or number, ``doubleValue``, ``boolValue``, ``arrayValue`` -> tuple,
``kvlistValue`` -> JSON string, ``bytesValue`` -> base64 string kept as text). Unknown
attributes are kept; values of an unexpected type are skipped, never fatal. Timestamps are
strict (:func:`tg_bridge.traces.checks.timestamp_ns`): non-finite, negative, beyond 64 bits
or of another type is a TraceFormatError naming the field.

Errors: :class:`TraceFormatError` naming the file and the place (line, span index) for
malformed, truncated, binary, non-UTF-8 or too deeply nested input — never a bare
UnicodeDecodeError, RecursionError, OverflowError or ValueError. Blocking file I/O; no other side effects; thread-safe.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import logging
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ..exceptions import TraceFormatError
from ..spans import SpanRecord
from .checks import MAX_TIMESTAMP_NS, decode_utf8, parse_json, timestamp_ns, too_deep

__all__ = ["accelerated", "convert_span", "decode_any_value", "fill_records", "iter_spans", "normalize_id",
           "records_from_object"]

logger = logging.getLogger(__name__)

_STATUS = {
    0: "UNSET", 1: "OK", 2: "ERROR",
    "STATUS_CODE_UNSET": "UNSET", "STATUS_CODE_OK": "OK", "STATUS_CODE_ERROR": "ERROR",
    "UNSET": "UNSET", "OK": "OK", "ERROR": "ERROR",
}  # fmt: skip
_SNIFF_BYTES = 4096
# The canonical id spellings (what the collector and every SDK write): taken as they are.
_TRACE_HEX = re.compile("[0-9a-f]{32}").fullmatch
_SPAN_HEX = re.compile("[0-9a-f]{16}").fullmatch
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


def normalize_id(value: Any, nbytes: int) -> str | None:
    """A trace id (16 bytes) or span id (8 bytes) as lowercase hex; None when empty.

    Hex (any case, optional ``0x``) and base64 are told apart by length: 16-byte hex is 32
    characters while its base64 is 24, so there is no ambiguity for well-formed ids. An id
    that is neither is kept as its lowercase text (reconstruction only compares ids).
    """
    if value is None or value == "" or value == 0:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return format(value, f"0{nbytes * 2}x")
    if not isinstance(value, str):
        return str(value).lower()
    text = value.strip()
    # "0x" marks hex only when hex follows: base64 ids start with "0x" too (1 in ~2,000)
    hex_text = text[2:] if text[:2].lower() == "0x" else text
    if len(hex_text) == nbytes * 2:
        try:
            int(hex_text, 16)
            return None if set(hex_text) == {"0"} else hex_text.lower()
        except ValueError:
            pass
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) == nbytes:
        return None if not any(raw) else raw.hex()
    return hex_text.lower() or None


def decode_any_value(value: Any) -> Any:
    """Decode an OTLP ``AnyValue`` (protobuf-JSON) to a plain attribute value, or None."""
    if type(value) is not dict and not isinstance(value, Mapping):
        return _plain_value(value)
    for field, item in value.items():
        if field in ("stringValue", "string_value"):
            return item if isinstance(item, str) else str(item)
        if field in ("boolValue", "bool_value"):
            return item if isinstance(item, bool) else str(item).lower() == "true"
        if field in ("intValue", "int_value"):
            try:
                return int(item)
            except (TypeError, ValueError, OverflowError):  # "abc", NaN, 1e400
                return None
        if field in ("doubleValue", "double_value"):
            try:
                return float(item)  # "NaN" / "Infinity" are valid protobuf-JSON
            except (TypeError, ValueError):
                return None
        if field in ("arrayValue", "array_value"):
            items = item.get("values", ()) if isinstance(item, Mapping) else ()
            decoded = (decode_any_value(v) for v in items)
            return tuple(v for v in decoded if v is not None)
        if field in ("kvlistValue", "kvlist_value"):
            pairs = item.get("values", ()) if isinstance(item, Mapping) else ()
            obj = {
                str(p.get("key")): _jsonable(decode_any_value(p.get("value")))
                for p in pairs
                if isinstance(p, Mapping)
            }
            return json.dumps(obj, ensure_ascii=False)
        if field in ("bytesValue", "bytes_value"):
            return str(item)
    return None


def _jsonable(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _plain_value(value: Any) -> Any:
    """An attribute value from a flattened dict: lists -> tuples, dicts -> JSON text."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return tuple(v for v in (_plain_value(x) for x in value) if v is not None)
    if isinstance(value, Mapping):
        return json.dumps(value, ensure_ascii=False, default=str)
    return None


def _attributes(raw: Any) -> dict[str, Any]:
    """OTLP ``[{"key", "value"}]`` lists or plain dicts; bad entries skipped."""
    attrs: dict[str, Any] = {}
    if type(raw) is list:
        # The hot loop of every reader (~6 attributes a span): exact-type checks first (what a
        # JSON parser returns), the ABC checks and the full AnyValue decoding only for the rest.
        for entry in raw:
            if type(entry) is dict:
                key = entry.get("key")
                if type(key) is not str:
                    continue
                value = entry.get("value")
                if type(value) is dict and len(value) == 1:
                    text = value.get("stringValue")
                    if type(text) is str:
                        attrs[key] = text
                        continue
                decoded = decode_any_value(value)
            elif isinstance(entry, Mapping) and isinstance(entry.get("key"), str):
                key = entry["key"]
                decoded = decode_any_value(entry.get("value"))
            else:
                continue
            if decoded is not None:
                attrs[key] = decoded
    elif isinstance(raw, Mapping):
        for key, value in raw.items():
            decoded = _plain_value(value)
            if decoded is not None:
                attrs[str(key)] = decoded
    elif isinstance(raw, list):  # a list subclass from a caller: read like a list
        return _attributes(list(raw))
    return attrs


def _nanos(value: Any, where: str) -> int:
    return timestamp_ns(value, lambda message: TraceFormatError(message, where=where))


def _status(raw: Any) -> str:
    if type(raw) is dict or isinstance(raw, Mapping):
        raw = raw.get("code", raw.get("status_code", 0))
    if isinstance(raw, str) and len(raw) <= 9 and raw.isdigit():  # int() refuses 4,300+ digits
        raw = int(raw)
    return _STATUS.get(raw, "UNSET") if isinstance(raw, (int, str)) else "UNSET"


def _events(raw: Any, where: str) -> tuple[Mapping[str, Any], ...]:
    if not isinstance(raw, list):
        return ()
    return tuple(
        {
            "name": str(e.get("name", "")),
            "time_ns": _nanos(e.get("timeUnixNano", e.get("time_unix_nano", e.get("timestamp"))),
                              f"{where} event {i}"),
            "attributes": _attributes(e.get("attributes")),
        }
        for i, e in enumerate(raw)
        if isinstance(e, Mapping)
    )


def _pick(span: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        if name in span:
            return span[name]
    return None


def _context_id(span: Mapping[str, Any], names: tuple[str, str], nbytes: int) -> str | None:
    """An id in any accepted spelling: camelCase, snake_case or under ``context`` (an SDK's
    ``ReadableSpan.to_json()``)."""
    raw_context = span.get("context")
    context: Mapping[str, Any] = raw_context if isinstance(raw_context, Mapping) else {}
    return normalize_id(_pick(span, *names) or context.get(names[1]), nbytes)


def _span(span: Any, resource: Mapping[str, Any], where: str) -> SpanRecord:
    """One span object to a record (every reader's per-span step).

    Each field first tries the canonical OTLP JSON spelling with exact types (lowercase hex
    ids, digit-string or int timestamps, plain dicts and lists), which is what the collector
    writes and costs a few dict lookups; anything else goes through the general code that
    accepts the other spellings and raises the typed errors. Both give the same record.
    """
    if type(span) is not dict and not isinstance(span, Mapping):
        raise TraceFormatError(f"a span must be a JSON object, got {type(span).__name__}", where=where)
    trace_id: str | None = span.get("traceId")
    if type(trace_id) is not str or not _TRACE_HEX(trace_id) or trace_id == _ZERO_TRACE:
        trace_id = _context_id(span, ("traceId", "trace_id"), 16)
    span_id: str | None = span.get("spanId")
    if type(span_id) is not str or not _SPAN_HEX(span_id) or span_id == _ZERO_SPAN:
        span_id = _context_id(span, ("spanId", "span_id"), 8)
    if not trace_id or not span_id:
        raise TraceFormatError("span without traceId/spanId", where=where)
    parent: str | None = span.get("parentSpanId")
    if parent == "":
        parent = None
    elif type(parent) is not str or not _SPAN_HEX(parent) or parent == _ZERO_SPAN:
        parent = normalize_id(_pick(span, "parentSpanId", "parent_span_id", "parent_id"), 8)
    name = span.get("name")
    if type(name) is not str:
        name = str(name or "")
    # Timestamps: a string of at most 19 ASCII digits is an int below 2**64, no check needed.
    start = span.get("startTimeUnixNano")
    if type(start) is str and len(start) < 20 and start.isdigit() and start.isascii():
        start_ns = int(start)
    elif type(start) is int and 0 <= start <= MAX_TIMESTAMP_NS:  # protobuf's fixed64
        start_ns = start
    else:
        start_ns = _nanos(_pick(span, "startTimeUnixNano", "start_time_unix_nano", "start_time", "start_ns"),
                          f"{where} startTimeUnixNano")  # fmt: skip
    end = span.get("endTimeUnixNano")
    if type(end) is str and len(end) < 20 and end.isdigit() and end.isascii():
        end_ns = int(end)
    elif type(end) is int and 0 <= end <= MAX_TIMESTAMP_NS:
        end_ns = end
    else:
        end_ns = _nanos(_pick(span, "endTimeUnixNano", "end_time_unix_nano", "end_time", "end_ns"),
                        f"{where} endTimeUnixNano")  # fmt: skip
    raw_status = span.get("status")
    code = raw_status.get("code") if type(raw_status) is dict else None
    status = _STATUS.get(code, "UNSET") if type(code) is int else _status(raw_status)
    events = span.get("events")
    return _make_record(trace_id, span_id, parent, name, start_ns, end_ns, _attributes(span.get("attributes")),
                        status, _events(events, where) if events else (), resource)  # fmt: skip


def _record_fast(trace_id: str, span_id: str, parent_id: str | None, name: str, start_ns: int, end_ns: int,
                 attributes: dict[str, Any], status: str, events: tuple[Mapping[str, Any], ...],
                 resource: Mapping[str, Any]) -> SpanRecord:  # fmt: skip
    """``SpanRecord(...)`` without the frozen dataclass ``__init__``, which sets each of the
    ten fields through ``object.__setattr__`` (a tenth of the read time at 100k spans). The
    instance is the same: same ``__dict__``, equality, repr, pickling, still frozen."""
    record = _new(SpanRecord)
    record.__dict__.update(trace_id=trace_id, span_id=span_id, parent_id=parent_id, name=name,
                           start_ns=start_ns, end_ns=end_ns, attributes=attributes, status=status,
                           events=events, resource=resource)  # fmt: skip
    return record


_new = object.__new__
_FIELDS = ("trace_id", "span_id", "parent_id", "name", "start_ns", "end_ns", "attributes", "status", "events",
           "resource")  # fmt: skip
# Only while SpanRecord is what _record_fast assumes (a plain __dict__, these fields in this
# order, no __post_init__); otherwise the ordinary constructor.
_make_record: Any = (
    _record_fast
    if tuple(f.name for f in dataclasses.fields(SpanRecord)) == _FIELDS
    and "__slots__" not in vars(SpanRecord) and not hasattr(SpanRecord, "__post_init__")
    else SpanRecord
)


# The C accelerator (tg_bridge/traces/_fastspan.c, built by `pip install`; absent where no
# compiler was found) converts the canonical spans and hands every other one back to _span:
# equal records either way. TG_BRIDGE_PURE_PYTHON=1 turns it off (the tests run both).
_fast: Any = None
if _make_record is _record_fast and os.environ.get("TG_BRIDGE_PURE_PYTHON", "") in ("", "0"):
    try:
        from . import _fastspan as _fast  # type: ignore[attr-defined,no-redef,unused-ignore]
    except ImportError:  # pragma: no cover - an install without a C compiler
        _fast = None
    else:
        _fast.configure(SpanRecord, decode_any_value, _attributes)


def accelerated() -> bool:
    """Whether the C conversion of canonical spans is in use (see ``_fastspan.c``)."""
    return _fast is not None


def convert_span(span: Any, resource: Mapping[str, Any], where: str) -> SpanRecord:
    """One span object to a record: the C conversion when it takes the span, else :func:`_span`."""
    if _fast is not None:
        record = _fast.convert_span(span, resource)
        if record is not None:
            return record  # type: ignore[no-any-return]
    return _span(span, resource, where)


def records_from_object(obj: Any, where: str = "") -> Iterator[SpanRecord]:
    """Span records from one parsed JSON value: an OTLP request, a list of requests, a
    flattened span dict or a list of them. Raises :class:`TraceFormatError` (``where``
    extended with the span index) for anything else, after yielding the records before it."""
    out: list[SpanRecord] = []
    try:
        fill_records(obj, out, where)
    except BaseException:
        yield from out
        raise
    yield from out


def fill_records(obj: Any, out: list[SpanRecord], where: str = "") -> None:
    """:func:`records_from_object` appending to ``out`` instead of yielding: no generator
    frame per span (the streaming reader's hot path). On error ``out`` holds the records
    before the bad span and the TraceFormatError propagates."""
    if isinstance(obj, list):
        for i, item in enumerate(obj):
            fill_records(item, out, f"{where} item {i}".strip())
        return
    if type(obj) is not dict and not isinstance(obj, Mapping):
        raise TraceFormatError(f"expected a JSON object or list, got {type(obj).__name__}", where=where)
    if "resourceSpans" in obj or "resource_spans" in obj:
        _request(obj, out, where)
    elif any(k in obj for k in ("span_id", "spanId", "context")):
        out.append(_span(obj, {}, where or "span"))
    else:
        raise TraceFormatError("neither an OTLP request (resourceSpans) nor a span", where=where)


def _request(obj: Mapping[str, Any], out: list[SpanRecord], where: str) -> None:
    index = 0
    resource_spans = _pick(obj, "resourceSpans", "resource_spans")
    if not isinstance(resource_spans, list):
        raise TraceFormatError("resourceSpans is not a list", where=where)
    prefix = f"{where} span " if where else "span "
    append = out.append
    for rs in resource_spans:
        if type(rs) is not dict and not isinstance(rs, Mapping):
            raise TraceFormatError("resourceSpans entry is not an object", where=where)
        res = rs.get("resource")
        resource = _attributes(res.get("attributes")) if isinstance(res, Mapping) else {}
        scopes = _pick(rs, "scopeSpans", "scope_spans", "instrumentationLibrarySpans") or []
        for ss in scopes if isinstance(scopes, list) else ():
            spans = ss.get("spans", []) if isinstance(ss, Mapping) else []
            if not isinstance(spans, list):
                continue
            i, count = 0, len(spans)
            while i < count:
                if _fast is not None and type(spans) is list:
                    i = _fast.convert_spans(spans, i, resource, out)  # all the canonical ones
                    if i >= count:
                        break
                append(_span(spans[i], resource, prefix + str(index + i)))
                i += 1
            index += count


def iter_spans(path: str | os.PathLike[str]) -> Iterator[SpanRecord]:
    """Yield the span records of a trace file, streaming JSON lines one line at a time.

    A file whose first non-blank line is a complete JSON value is read as JSON lines;
    otherwise the whole file is parsed as one JSON document. Raises TraceFormatError
    (file + line/span) for unreadable, binary, malformed or truncated input.
    """
    name = os.fspath(path)
    try:
        handle = open(name, "rb")
    except OSError as exc:
        raise TraceFormatError(f"cannot open trace file: {exc}", path=name) from exc
    with handle:
        head = handle.read(_SNIFF_BYTES)
        if b"\x00" in head:
            raise TraceFormatError("binary data, not OTLP JSON (protobuf files are not supported)",
                                   path=name, where="byte 0")  # fmt: skip
        handle.seek(0)
        first = _first_line(handle)
        handle.seek(0)
        if first is not None and _is_json(first):
            yield from _jsonl(handle, name)
        else:
            yield from _document(handle, name)


def _first_line(handle: Any) -> bytes | None:
    for raw in handle:
        if raw.strip():
            return raw
    return None


def _is_json(raw: bytes) -> bool:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return True  # read as lines: the line reader names the line that is not UTF-8
    try:
        json.loads(text)
    except RecursionError:
        return True  # likewise for nesting too deep to parse
    except ValueError:
        return False
    return True


def _located(name: str, where: str) -> Any:
    """An error factory for the checks helpers: TraceFormatError at ``name`` (``where``)."""
    return lambda message: TraceFormatError(message, path=name, where=where)


def _decode(raw: bytes, name: str, where: str) -> str:
    return decode_utf8(raw, _located(name, where))


def _jsonl(lines: Iterable[bytes], name: str) -> Iterator[SpanRecord]:
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        where = f"line {number}"
        text = _decode(raw, name, where)
        obj = parse_json(text, _located(name, where))
        yield from _records(obj, name, where)


def _document(handle: Any, name: str) -> Iterator[SpanRecord]:
    text = _decode(handle.read(), name, "document")
    if not text.strip():
        return
    try:
        obj = parse_json(text, _located(name, "document"))
    except TraceFormatError as exc:
        line = getattr(exc.__context__, "lineno", None)
        if line is None:
            raise
        raise TraceFormatError(_reason(exc), path=name, where=f"line {line}") from None
    yield from _records(obj, name, "document")


def _records(obj: Any, name: str, where: str) -> Iterator[SpanRecord]:
    """Span records of one parsed value, every failure located in file ``name``."""
    out: list[SpanRecord] = []
    try:
        fill_located(obj, out, name, where)
    except TraceFormatError:
        yield from out
        raise
    yield from out


def fill_located(obj: Any, out: list[SpanRecord], name: str, where: str) -> None:
    """:func:`fill_records` with every failure a TraceFormatError located in file ``name``
    (``where`` is the line, or ``"document"``)."""
    try:
        fill_records(obj, out, "" if where == "document" else where)
    except TraceFormatError as exc:
        raise TraceFormatError(_reason(exc), path=name, where=exc.where or where) from exc
    except RecursionError:  # attribute values nested deeper than we walk
        raise TraceFormatError(too_deep(), path=name, where=where) from None


def _reason(exc: TraceFormatError) -> str:
    text = str(exc)
    prefix = f"{exc.where}: " if exc.where else ""
    return text[len(prefix):] if prefix and text.startswith(prefix) else text
