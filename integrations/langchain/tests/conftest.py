"""Shared fixtures for the LangChain adapter tests (real LangChain, fake deterministic models)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# --import-mode=importlib does not put test directories on sys.path; our helpers live here
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


@pytest.fixture()
def instrumented():
    """tg_bridge's adapters instrumented (as capture() does); left instrumented afterwards."""
    import tg_bridge.capturing as capture

    capture.instrument()
    yield
    capture.instrument()


@pytest.fixture()
def memory_spans():
    """A private TracerProvider with an in-memory exporter, with our adapter instrumented on it;
    restores the default instrumentation afterwards."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from tg_bridge_langchain import adapter

    import tg_bridge.capturing as capture

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    exporter.provider = provider  # for tests that re-instrument on the same provider
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    capture.uninstrument()
    adapter.instrument(provider)
    yield exporter
    adapter.uninstrument()
    capture.instrument()
