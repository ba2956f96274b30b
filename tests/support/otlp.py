"""Production-like trace files for the offline tests: captured calls written as OTLP/JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["otlp_line", "record_calls"]


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
