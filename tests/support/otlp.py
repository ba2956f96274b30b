"""Production-like trace files for the offline tests: captured calls written as OTLP/JSON, and
OTLP/JSON requests as the collector's ``format: proto`` frames."""

from __future__ import annotations

import base64
import copy
import json
import re
import struct
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["otlp_frame", "otlp_line", "proto_frame", "record_calls"]


def otlp_line(spans: Iterable[Any]) -> str:
    """One OTLP/JSON export request (one line of a ``.otlp.json`` file) holding ``spans``
    (tg_bridge SpanRecords)."""

    def value(v: Any) -> dict[str, Any]:
        if isinstance(v, bool):
            return {"boolValue": v}
        if isinstance(v, int):
            return {"intValue": str(v)}
        if isinstance(v, float):
            return {"doubleValue": v}
        return {"stringValue": str(v)}

    out = [{
        "traceId": s.trace_id, "spanId": s.span_id, "parentSpanId": s.parent_id or "",
        "name": s.name, "kind": 1, "startTimeUnixNano": str(s.start_ns),
        "endTimeUnixNano": str(s.end_ns),
        "attributes": [{"key": k, "value": value(v)} for k, v in s.attributes.items()],
        "status": {},
    } for s in spans]
    return json.dumps({"resourceSpans": [{"resource": {"attributes": []},
                                          "scopeSpans": [{"scope": {"name": "t"}, "spans": out}]}]})


_HEX_ID = {"traceId": 32, "spanId": 16, "parentSpanId": 16}


def proto_frame(request: Mapping[str, Any]) -> bytes:
    """One OTLP/JSON export request as the collector's file exporter writes it with
    ``format: proto``: the serialized ``ExportTraceServiceRequest`` after its length as a
    big-endian uint32. Ids written as hex (what the collector writes in JSON) become their
    bytes; protobuf-JSON would read them as base64 (needs ``opentelemetry-proto``)."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = copy.deepcopy(dict(request))
    for rs in request.get("resourceSpans", ()):
        for ss in rs.get("scopeSpans", ()):
            for span in ss.get("spans", ()):
                for key, width in _HEX_ID.items():
                    value = span.get(key)
                    if isinstance(value, str) and re.fullmatch(f"[0-9a-fA-F]{{{width}}}", value):
                        span[key] = base64.b64encode(bytes.fromhex(value)).decode("ascii")
    message = json_format.ParseDict(request, ExportTraceServiceRequest()).SerializeToString()
    return struct.pack(">I", len(message)) + message


def otlp_frame(spans: Iterable[Any]) -> bytes:
    """:func:`otlp_line` as one ``format: proto`` frame (:func:`proto_frame`)."""
    return proto_frame(json.loads(otlp_line(spans)))


def record_calls(app: Any, inputs: Iterable[Mapping[str, Any]], path: Path) -> list[str]:
    """Call ``app.invoke(each input)`` under capture and write the calls to ``path`` as
    OTLP/JSON lines, one per call; returns the calls' trace ids in order."""
    from tg_bridge.capturing import capture

    lines, trace_ids = [], []
    for one in inputs:
        with capture() as run:
            app.invoke(dict(one))
        lines.append(otlp_line(run.spans))
        trace_ids.append(run.spans[0].trace_id)
    path.write_text("\n".join(lines) + "\n")
    return trace_ids
