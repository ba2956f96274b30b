"""Live capture: record what a host app runs as OpenTelemetry spans grouped into Runs.

::

    with tg_bridge.capture("rag") as run:      # or: async with
        chain.invoke({"question": "..."})
    run.spans        # SpanRecords, in end order
    run.graph()      # the text computation graph (tg_bridge.capture() returns the
                     # reconstruction layer's Run; this package's Run has no graph methods)

Spans go through tg_bridge's own SDK TracerProvider (:func:`tracer_provider`), with raised
attribute limits. Add exporters to it to see the same spans in Phoenix, Jaeger or a collector::

    tg_bridge.capturing.tracer_provider().add_span_processor(BatchSpanProcessor(exporter))

``tg_bridge.capture`` is the plain function :func:`capture`; this package is named
``capturing`` so that importing it can never shadow the function.

For adapters: :func:`get_tracer`, :func:`current_run`, :func:`register_binding`,
:func:`record_hook_error`. Nothing here raises into the host app, and importing this package
has no side effects (the provider is created on first use).
"""

from __future__ import annotations

from .instrumentation import instrument, instrumented, uninstrument
from .provider import get_tracer, span_processor, tracer_provider
from .run import Run
from .scope import Capture, capture
from .state import current_run, record_hook_error, register_binding

__all__ = [
    "Capture",
    "Run",
    "capture",
    "current_run",
    "get_tracer",
    "instrument",
    "instrumented",
    "record_hook_error",
    "register_binding",
    "span_processor",
    "tracer_provider",
    "uninstrument",
]

