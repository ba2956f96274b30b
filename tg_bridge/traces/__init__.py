"""Trace files: read OTLP JSON into span records (rebuilding graphs from them is
:func:`tg_bridge.reconstruction.load_traces`, one layer up).

See :mod:`tg_bridge.traces.otlp_json` for the accepted formats (OTLP JSON lines as written by
the OTel Collector file exporter, one OTLP JSON document, or flattened span dicts).
"""

from __future__ import annotations

import os
from typing import Any

from .otlp_json import iter_spans
from .records import SpanRecord

__all__ = ["SpanRecord", "group_by_trace", "iter_spans", "read_spans"]


def read_spans(path: str | os.PathLike[str]) -> list[SpanRecord]:
    """All span records of a trace file, in file order.

    Blocking; raises :class:`tg_bridge.exceptions.TraceFormatError` naming the file and the
    line/span for unreadable input. Use :func:`iter_spans` to stream instead.
    """
    return list(iter_spans(path))


def group_by_trace(spans: Any) -> dict[str, list[SpanRecord]]:
    """Spans grouped by trace id; traces in order of first appearance, spans in input order."""
    traces: dict[str, list[SpanRecord]] = {}
    for span in spans:
        traces.setdefault(span.trace_id, []).append(span)
    return traces
