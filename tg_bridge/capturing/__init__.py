"""Live capture: record what a host app runs as OpenTelemetry spans grouped into Runs.

::

    with tg_bridge.capture("rag") as run:      # or: async with
        chain.invoke({"question": "..."})
    run.spans        # SpanRecords, in end order
    run.graph()      # the text computation graph (tg_bridge.reconstruct)

Spans go through tg_bridge's own SDK TracerProvider (:func:`tracer_provider`), with raised
attribute limits. Add exporters to it to see the same spans in Phoenix, Jaeger or a collector::

    tg_bridge.capture.tracer_provider().add_span_processor(BatchSpanProcessor(exporter))

``tg_bridge.capture`` is both this package and the ``capture()`` function: the package object
is callable (``tg_bridge.capture("rag")`` is ``capture("rag")``), and ``capture`` inside it is
the package itself. Python sets ``tg_bridge.capture`` to the package as soon as anything
imports it, so without this the documented ``tg_bridge.capture()`` would break depending on
import order.

For adapters: :func:`get_tracer`, :func:`current_run`, :func:`register_binding`,
:func:`record_hook_error`. Nothing here raises into the host app, and importing this package
has no side effects (the provider is created on first use).
"""

from __future__ import annotations

import sys
import types

from .instrumentation import instrument, instrumented, uninstrument
from .provider import get_tracer, span_processor, tracer_provider
from .run import Run
from .scope import Capture
from .scope import capture as _capture
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


class _CallableModule(types.ModuleType):
    """This package's type: calling the package calls :func:`tg_bridge.capture.scope.capture`."""

    def __call__(
        self, name: str | None = None, *, instrument: bool = True, max_spans: int | None = None
    ) -> Capture:
        return _capture(name, instrument=instrument, max_spans=max_spans)


# Only our own module object changes type; no global state is touched.
sys.modules[__name__].__class__ = _CallableModule
capture = sys.modules[__name__]
