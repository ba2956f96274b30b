"""SpanRecord: the framework-free, immutable form of one finished span.

Live capture converts OTel ``ReadableSpan`` objects to SpanRecords; trace files are read into
SpanRecords; :func:`tg_bridge.reconstruct` is a pure function of a sequence of them. A shared
value type at the bottom of the layers: the producers (capturing, traces) and the consumer
(reconstruction) all import it from here, so none of them imports another.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["SpanRecord", "spans_from_json_bytes", "spans_to_json_bytes"]


@dataclasses.dataclass(frozen=True)
class SpanRecord:
    """One span. Ids are lowercase hex strings (trace id 32 chars, span id 16 chars).

    ``attributes`` values are str, bool, int, float or tuples of those (OTel's attribute
    types). ``status`` is ``"UNSET"``, ``"OK"`` or ``"ERROR"``. ``events`` is a tuple of
    ``{"name", "time_ns", "attributes"}`` mappings.
    """

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    start_ns: int = 0
    end_ns: int = 0
    # Any, not object: every reader and consumer across the layers shares these mappings, and
    # the values are the documented OTel attribute types above (consumers narrow what they read)
    attributes: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    status: str = "UNSET"
    events: tuple[Mapping[str, Any], ...] = ()
    resource: Mapping[str, Any] = dataclasses.field(default_factory=dict)


_TUPLE = "\u0000tuple"  # marks a tuple in the JSON form (no JSON object key from a trace has it)


def _encode(value: object) -> object:
    if isinstance(value, tuple):
        return {_TUPLE: [_encode(v) for v in value]}
    if isinstance(value, Mapping):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:  # JSON we wrote: the decoded fields are SpanRecord's own
    if isinstance(value, dict):
        if len(value) == 1 and _TUPLE in value:
            return tuple(_decode(v) for v in value[_TUPLE])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def spans_to_json_bytes(spans: Iterable[SpanRecord]) -> bytes:
    """Records as JSON bytes that :func:`spans_from_json_bytes` turns back into EQUAL records
    (tuples stay tuples). Data only: reading it back never runs code, unlike pickle. A lone
    surrogate in trace text is kept (``surrogatepass``; ``json.loads`` of bytes reads it
    back); other text is plain UTF-8."""
    rows = [[_encode(getattr(span, f.name)) for f in _FIELDS] for span in spans]
    return json.dumps(rows, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass")


def spans_from_json_bytes(data: bytes) -> list[SpanRecord]:
    """The records :func:`spans_to_json_bytes` wrote."""
    return [SpanRecord(*(_decode(v) for v in row)) for row in json.loads(data)]


_FIELDS = dataclasses.fields(SpanRecord)
