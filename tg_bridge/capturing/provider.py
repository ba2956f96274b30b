"""tg_bridge's own OpenTelemetry TracerProvider (created lazily, once per process).

Why our own provider instead of the global one: capture must see every span of a capture
block with every attribute, whatever sampler or limits the host configured globally. So:

- attribute limits are raised (:data:`SPAN_LIMITS`): the SDK default keeps 128 attributes per
  span and silently drops the OLDEST, which loses the system prompt of a long chat;
- the sampler is ``ALWAYS_ON`` (not parent-based): a host span that its own sampler dropped must
  not make us lose the app steps nested in it;
- our :class:`~tg_bridge.capturing.processor.RunSpanProcessor` is the first processor, so spans
  carry ``tg_bridge.run_id`` before any exporter sees them.

A user-set global SDK provider is NOT used. To also send our spans to Phoenix, Jaeger or a
collector, add an exporter to our provider::

    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    tg_bridge.capturing.tracer_provider().add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))

Nothing happens at import time; the provider is built on the first call.
"""

from __future__ import annotations

import threading

from opentelemetry import trace as trace_api
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

from .processor import RunSpanProcessor

__all__ = ["SPAN_LIMITS", "get_tracer", "span_processor", "tracer_provider"]

#: Per-span limits of our provider. Bounded (a runaway span cannot grow without end) but far
#: above what a long chat needs (two attributes per message); no cut on attribute length.
SPAN_LIMITS = dict(
    max_span_attributes=10_000,
    max_events=1_000,
    max_links=128,
    max_event_attributes=1_000,
    max_link_attributes=128,
    max_attribute_length=SpanLimits.UNSET,
    max_span_attribute_length=SpanLimits.UNSET,
)

_lock = threading.Lock()
_provider: TracerProvider | None = None
_processor: RunSpanProcessor | None = None


def tracer_provider() -> TracerProvider:
    """The process-wide tg_bridge TracerProvider, created on first use. Thread-safe.

    Add exporters with ``tracer_provider().add_span_processor(...)``. The provider is shut down
    (exporters flushed) at interpreter exit by the SDK's own ``atexit`` hook.
    """
    global _provider, _processor
    provider = _provider
    if provider is not None:
        return provider
    with _lock:
        if _provider is None:
            processor = RunSpanProcessor()
            provider = TracerProvider(sampler=ALWAYS_ON, span_limits=SpanLimits(**SPAN_LIMITS))
            provider.add_span_processor(processor)
            _processor = processor
            _provider = provider
        return _provider


def span_processor() -> RunSpanProcessor:
    """The run-stamping processor installed on :func:`tracer_provider` (for stats and tests)."""
    tracer_provider()
    assert _processor is not None  # set together with the provider
    return _processor


def get_tracer(name: str, version: str | None = None) -> trace_api.Tracer:
    """A tracer of :func:`tracer_provider` (adapters pass their module name)."""
    return tracer_provider().get_tracer(name, version)
