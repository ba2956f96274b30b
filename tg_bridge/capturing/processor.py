"""RunSpanProcessor: stamps spans with their Run and converts finished ones into SpanRecords.

Runs on the host's request path, inside whatever thread starts or ends a span. It never blocks
on I/O and never raises: every failure is caught, logged on the ``tg_bridge`` logger and counted
(on the Run when known, and in :attr:`RunSpanProcessor.errors`).

Which Run a span belongs to:
1. the innermost ``capture()`` of the current context (ContextVar), else
2. the Run of its parent span, when the parent is one of ours (open, or ended recently). This
   keeps work attached when it lost its context (a raw thread given an explicit parent).
Spans of tg_bridge's own engine calls (started under ``internal_call()`` or carrying
``tg_bridge.internal``) and spans outside any Run are not recorded.

Memory stays bounded: the open-span map and the recently-ended map are LRU-capped, and each Run
caps its own span list (``settings.max_spans``).
"""

from __future__ import annotations

import logging
import threading
import types
import weakref
from collections import OrderedDict
from collections.abc import Mapping

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from .. import semconv
from .._internal import is_internal
from ..spans import SpanRecord
from .run import Run
from .state import context_run, record_hook_error

__all__ = ["RunSpanProcessor", "span_to_record"]

log = logging.getLogger("tg_bridge.capture")

_EMPTY: Mapping[str, object] = types.MappingProxyType({})


class RunSpanProcessor(SpanProcessor):
    """Attach spans to Runs. Thread-safe; ``on_start``/``on_end`` take one short lock.

    Counters (read-only for callers): ``errors`` (internal failures), ``evicted`` (open spans
    forgotten because more than ``max_open_spans`` were open at once).
    """

    def __init__(self, *, max_open_spans: int = 65_536, max_recent_spans: int = 4_096) -> None:
        self.max_open_spans = max_open_spans
        self.max_recent_spans = max_recent_spans
        self.errors = 0
        self.evicted = 0
        self._open: OrderedDict[int, Run] = OrderedDict()
        # Ended spans stay findable as parents for a while (children started after their
        # parent closed, e.g. streams); weak so a finished Run can be collected.
        self._recent: OrderedDict[int, weakref.ref[Run]] = OrderedDict()
        self._lock = threading.Lock()
        # (the SDK Resource last converted, compared by identity; its attributes)
        self._resource: tuple[object, Mapping[str, object]] = (None, _EMPTY)

    # -- SpanProcessor --------------------------------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        run: Run | None = None
        try:
            if is_internal():
                return
            attributes = span.attributes
            if attributes and attributes.get(semconv.INTERNAL):
                return
            run = context_run()
            if run is None:
                parent = span.parent
                if parent is None:
                    return
                run = self.run_of_span(parent.span_id)
                if run is None:
                    return
            span.set_attribute(semconv.RUN_ID, run.id)
            span_id = span.context.span_id
            with self._lock:
                self._open[span_id] = run
                if len(self._open) > self.max_open_spans:
                    self._open.popitem(last=False)
                    self.evicted += 1
                    evicted = self.evicted
                else:
                    evicted = 0
            if evicted == 1:
                log.warning(
                    "more than %d tg_bridge spans open at once; the oldest are forgotten",
                    self.max_open_spans,
                )
        except Exception as exc:
            self._fail(exc, run, "on_start")

    def on_end(self, span: ReadableSpan) -> None:
        run: Run | None = None
        try:
            span_id = span.context.span_id
            with self._lock:
                run = self._open.pop(span_id, None)
                if run is None:
                    return
                self._recent[span_id] = weakref.ref(run)
                if len(self._recent) > self.max_recent_spans:
                    self._recent.popitem(last=False)
            attributes = span.attributes
            if attributes and attributes.get(semconv.INTERNAL):  # marked after it started
                return
            if run.full:  # skip the conversion work for a span we would drop anyway
                run.count_dropped()
                return
            record = self._to_record(span)
            run.add_span(record, dropped_attributes=_dropped_attributes(span))
        except Exception as exc:
            self._fail(exc, run, "on_end")

    def shutdown(self) -> None:
        with self._lock:
            self._open.clear()
            self._recent.clear()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True  # nothing buffered: spans are appended to their Run synchronously

    # -- helpers --------------------------------------------------------------------------
    def run_of_span(self, span_id: int) -> Run | None:
        """The Run of one of our spans (open, or ended recently), else None. Thread-safe."""
        with self._lock:
            run = self._open.get(span_id)
            if run is not None:
                return run
            ref = self._recent.get(span_id)
        return ref() if ref is not None else None

    def open_span_count(self) -> int:
        """How many of our spans are currently open (for bounded-memory checks)."""
        return len(self._open)

    def _to_record(self, span: ReadableSpan) -> SpanRecord:
        resource = span.resource
        cached_resource, mapping = self._resource
        if resource is not cached_resource:
            mapping = types.MappingProxyType(dict(resource.attributes)) if resource else _EMPTY
            self._resource = (resource, mapping)
        return span_to_record(span, resource=mapping)

    def _fail(self, exc: Exception, run: Run | None, where: str) -> None:
        try:
            self.errors += 1  # a racy count is acceptable; it is diagnostic only
            record_hook_error(exc, run=run, where=f"RunSpanProcessor.{where}")
        except Exception:
            pass


def span_to_record(span: ReadableSpan, *, resource: Mapping[str, object] | None = None) -> SpanRecord:
    """Convert an SDK span to a :class:`SpanRecord` (hex ids, plain dict attributes)."""
    ctx = span.context
    parent = span.parent
    events = tuple(
        {"name": e.name, "time_ns": e.timestamp, "attributes": dict(e.attributes or {})}
        for e in span.events
    )
    if resource is None:
        resource = dict(span.resource.attributes) if span.resource else {}
    return SpanRecord(
        trace_id=format(ctx.trace_id, "032x"),
        span_id=format(ctx.span_id, "016x"),
        parent_id=format(parent.span_id, "016x") if parent is not None and parent.span_id else None,
        name=span.name,
        start_ns=span.start_time or 0,
        end_ns=span.end_time or 0,
        attributes=dict(span.attributes or {}),
        status=span.status.status_code.name,
        events=events,
        resource=resource,
    )


def _dropped_attributes(span: ReadableSpan) -> int:
    try:
        return int(span.dropped_attributes)
    except Exception:
        return 0
