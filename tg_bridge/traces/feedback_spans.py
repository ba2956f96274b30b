"""User feedback as a span inside the trace it is about: what the collector's tail sampling keeps.

When the app learns that a user liked or disliked an answer, :func:`record_feedback` emits a
short span named ``tg_bridge.feedback`` into THAT trace (the trace id and, as parent, the
root span id the app kept from the request), through the app's own tracer, so it travels the
same OTLP path as the trace's other spans. Its attributes:

- ``tg_bridge.feedback`` = ``true`` (bool) — what the collector's ``boolean_attribute``
  tail-sampling policy matches (docs/otel-collector.yaml);
- ``tg_bridge.feedback.score`` (double, finite; optional);
- ``tg_bridge.feedback.text`` (string, optional; end-user text: untrusted data downstream).

The feedback must reach the collector before its ``decision_wait`` ends for the trace to be
kept (docs/collector.md). :func:`feedback_in` reads these spans back from a trace's records
(:mod:`tg_bridge.traces.follow`, trace files), ignoring values of the wrong type;
:func:`split_feedback` also separates them from the app's spans, so that the graph rebuilt
from a trace is the app's run whether or not (and however) feedback was recorded on it.
"""

from __future__ import annotations

import reprlib
from collections.abc import Sequence
from typing import Any

from .._utf8 import utf8_safe
from ..exceptions import UsageError
from ..spans import SpanRecord
from .checks import finite_number

__all__ = ["FEEDBACK", "FEEDBACK_SCORE", "FEEDBACK_SPAN", "FEEDBACK_TEXT", "feedback_in", "record_feedback",
           "split_feedback"]

FEEDBACK_SPAN = "tg_bridge.feedback"
FEEDBACK = "tg_bridge.feedback"
FEEDBACK_SCORE = "tg_bridge.feedback.score"
FEEDBACK_TEXT = "tg_bridge.feedback.text"


def _hex_id(value: str, nbytes: int, what: str) -> int:
    try:
        number = int(value, 16) if isinstance(value, str) and len(value) == 2 * nbytes else 0
    except ValueError:
        number = 0
    if not number:
        raise UsageError(f"{what} must be {2 * nbytes} hex digits and not all zero, got {str(value)[:80]!r}")
    return number


def record_feedback(trace_id: str, parent_span_id: str, *, score: float | None = None, text: str | None = None,
                    tracer: Any = None) -> None:  # fmt: skip
    """Emit a ``tg_bridge.feedback`` span into trace ``trace_id`` under span ``parent_span_id``
    (both lowercase or uppercase hex, as OTel formats them).

    ``tracer``: an OpenTelemetry tracer of the provider that exports to the collector
    (default: ``trace.get_tracer`` of the global provider). At least one of ``score`` (a finite
    number) and ``text`` is required. Raises UsageError for bad ids or values; the span is
    exported by the provider's span processor like any other (non-blocking with a batch one).
    """
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    trace_number = _hex_id(trace_id, 16, "trace_id")
    span_number = _hex_id(parent_span_id, 8, "parent_span_id")
    attributes: dict[str, Any] = {FEEDBACK: True}
    if score is not None:
        number = finite_number(score)
        if number is None:
            raise UsageError(f"feedback score must be a finite number, got {reprlib.repr(score)}")
        attributes[FEEDBACK_SCORE] = number
    if text is not None:
        if not isinstance(text, str):
            raise UsageError(f"feedback text must be a string, got {type(text).__name__}")
        attributes[FEEDBACK_TEXT] = utf8_safe(text)  # an exporter cannot encode a lone surrogate
    if len(attributes) == 1:
        raise UsageError("feedback needs a score or a text")
    parent = SpanContext(trace_number, span_number, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    context = trace.set_span_in_context(NonRecordingSpan(parent))
    tracer = tracer if tracer is not None else trace.get_tracer("tg_bridge.feedback")
    tracer.start_span(FEEDBACK_SPAN, context=context, attributes=attributes).end()


def feedback_in(spans: Sequence[SpanRecord]) -> list[tuple[float | None, str | None]]:
    """The (score, text) of each feedback span of a trace, in span order. A span counts when
    ``tg_bridge.feedback`` is true; a score that is not a finite number or a text that is not
    a string is read as None (hostile data), and a span with neither is left out."""
    found = []
    for span in spans:
        attrs = span.attributes
        if attrs.get(FEEDBACK) is not True:
            continue
        score = finite_number(attrs.get(FEEDBACK_SCORE))
        text = attrs.get(FEEDBACK_TEXT)
        text = text if isinstance(text, str) else None
        if score is not None or text is not None:
            found.append((score, text))
    return found


def split_feedback(spans: Sequence[SpanRecord]) -> tuple[list[SpanRecord], list[tuple[float | None, str | None]]]:
    """``(the app's spans, feedback_in(spans))``: every span named ``tg_bridge.feedback`` or
    marked ``tg_bridge.feedback`` = true is left out of the first list, whatever else it
    carries (a feedback span with ``output.value`` or LLM attributes must not add a step or
    an output to the rebuilt graph)."""
    app = [s for s in spans if s.name != FEEDBACK_SPAN and s.attributes.get(FEEDBACK) is not True]
    return app, feedback_in(spans)
