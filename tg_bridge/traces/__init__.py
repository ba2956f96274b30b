"""Trace files: read OTLP JSON into span records (rebuilding graphs from them is
:func:`tg_bridge.reconstruction.load_traces`, one layer up).

See :mod:`tg_bridge.traces.otlp_json` for the accepted formats (OTLP JSON lines as written by
the OTel Collector file exporter, one OTLP JSON document, or flattened span dicts) and
:mod:`tg_bridge.traces.stream` for how files of any size (and OTLP protobuf) are read without
holding them: :func:`iter_spans` streams records, :func:`iter_traces` yields one trace at a
time with memory bounded by the open traces, not the file. :func:`follow_traces`
(:mod:`tg_bridge.traces.follow`) reads an OTel Collector's rotating files incrementally from a
checkpoint; :mod:`tg_bridge.traces.feedback_spans` puts user feedback into the traces.
"""

from __future__ import annotations

import os
from typing import Any

from ..spans import SpanRecord
from .follow import TraceFollower, follow_traces
from .stream import iter_spans, iter_traces, sniff_format

__all__ = ["SpanRecord", "TraceFollower", "follow_traces", "group_by_trace", "iter_spans", "iter_traces",
           "read_spans", "sniff_format"]


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
