"""Trace files: read OTLP JSON into span records and rebuild one graph per trace.

See :mod:`tg_bridge.traces.otlp_json` for the accepted formats (OTLP JSON lines as written by
the OTel Collector file exporter, one OTLP JSON document, or flattened span dicts).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from .otlp_json import iter_spans
from .records import SpanRecord

if TYPE_CHECKING:
    from ..graph import Graph
    from ..patching.binding import Binding
    from ..variable import Variable

__all__ = ["SpanRecord", "group_by_trace", "iter_spans", "load_traces", "read_spans"]


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


def load_traces(
    path: str | os.PathLike[str],
    *,
    parameters: MutableMapping[str, Variable] | None = None,
    bindings: Mapping[str, Binding] | None = None,
) -> list[Graph]:
    """One :class:`Graph` per trace of the file, in order of first appearance.

    The same prompt seen in several traces is ONE parameter Variable shared by their graphs
    (pass ``parameters`` to share them with graphs built elsewhere; it is filled in place).
    Each graph's metadata holds ``trace_id``, ``root`` (root span name), ``input``,
    ``output`` and ``spans`` (span count). Blocking; raises TraceFormatError for bad files.
    Memory is proportional to the file's spans (traces may interleave across lines, so all
    are grouped before graphs are built).
    """
    from ..reconstruction import reconstruct

    pool: MutableMapping[str, Variable] = {} if parameters is None else parameters
    grouped = group_by_trace(iter_spans(path))
    graphs = []
    for trace_id in list(grouped):
        spans = grouped.pop(trace_id)  # free each trace's records once graphed
        graphs.append(reconstruct(spans, bindings=bindings, parameters=pool))
    return graphs
