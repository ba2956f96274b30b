"""The processor never raises, skips tg_bridge's own spans, and stays bounded."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tracemalloc
import warnings

import pytest

from tg_bridge import semconv
from tg_bridge._internal import internal_call
from tg_bridge.capturing import capture, span_processor
from tg_bridge.capturing import processor as processor_mod
from tg_bridge.exceptions import DroppedDataWarning


def test_internal_spans_are_not_recorded(tracer):
    with capture(instrument=False) as run:
        with internal_call():
            with tracer.start_as_current_span("engine-call"):
                pass
        with tracer.start_as_current_span("flagged", attributes={semconv.INTERNAL: True}):
            pass
        with tracer.start_as_current_span("flagged-late") as span:
            span.set_attribute(semconv.INTERNAL, True)
        with tracer.start_as_current_span("app-step"):
            pass
    assert [s.name for s in run.spans] == ["app-step"]


def test_processor_failure_on_end_does_not_reach_the_caller(tracer, monkeypatch, caplog):
    proc = span_processor()
    before = proc.errors

    def broken(span):
        raise RuntimeError("conversion bug")

    monkeypatch.setattr(proc, "_to_record", broken)
    with capture(instrument=False) as run:
        for i in range(3):
            with tracer.start_as_current_span(f"s{i}"):
                pass
    assert run.spans == []
    assert run.hook_errors == 3
    assert proc.errors - before == 3
    warned = [r for r in caplog.records if "hook failed" in r.getMessage()]
    assert warned and warned[0].levelname == "WARNING"  # first one loud, the rest at DEBUG
    assert sum(r.levelname == "WARNING" for r in warned) == 1


def test_processor_failure_on_start_does_not_reach_the_caller(tracer, monkeypatch):
    def broken():
        raise RuntimeError("context bug")

    monkeypatch.setattr(processor_mod, "context_run", broken)
    with capture(instrument=False) as run:
        with tracer.start_as_current_span("survives") as span:
            assert span.is_recording()
    assert run.spans == []  # never stamped, so not attributed; but the app went on
    assert span_processor().open_span_count() == 0


def test_three_hundred_attributes_and_long_values_are_kept(tracer):
    long_text = "x" * 200_000
    with capture(instrument=False) as run:
        with tracer.start_as_current_span("chat") as span:
            for i in range(150):
                span.set_attribute(f"llm.input_messages.{i}.message.role", "user")
                span.set_attribute(f"llm.input_messages.{i}.message.content", f"message {i}")
            span.set_attribute("input.value", long_text)
    attrs = run.spans[0].attributes
    assert len(attrs) == 302  # 300 + input.value + run id
    assert attrs["llm.input_messages.0.message.content"] == "message 0"  # the oldest survived
    assert attrs["input.value"] == long_text
    assert run.dropped_attributes == 0


def test_hundred_thousand_spans_keep_memory_bounded(tracer):
    n, cap, window = 100_000, 1_000, 6_000
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with capture("flood", instrument=False, max_spans=cap) as run:
            for _ in range(n - 2 * window):
                tracer.start_span("s", attributes={"input.value": "some text"}).end()
            # Two traced windows once the run is full: the first turns over the bounded LRU
            # maps (allocated before tracing began), the second must then not grow at all.
            tracemalloc.start()
            for _ in range(window):
                tracer.start_span("s", attributes={"input.value": "some text"}).end()
            base, _ = tracemalloc.get_traced_memory()
            for _ in range(window):
                tracer.start_span("s", attributes={"input.value": "some text"}).end()
            current, _ = tracemalloc.get_traced_memory()
            tracemalloc.stop()
    assert len(run.spans) == cap
    assert run.dropped == n - cap == 99_000
    assert span_processor().open_span_count() == 0
    # slack: one rehash of the LRU dict table (~420 kB) may fall in the window; keeping
    # the spans instead would cost megabytes (about 1 kB per SpanRecord)
    assert current - base < 600_000, current - base
    dropped_warnings = [w for w in caught if issubclass(w.category, DroppedDataWarning)]
    assert len(dropped_warnings) == 1


def test_dropped_warning_never_raises_into_the_host(tracer):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with capture(instrument=False, max_spans=1) as run:
            for _ in range(3):
                with tracer.start_as_current_span("s"):
                    pass
    assert len(run.spans) == 1 and run.dropped == 2


def test_max_spans_comes_from_settings(tracer):
    from tg_bridge.config import context

    with context(max_spans=2):
        block = capture(instrument=False)
    with pytest.warns(DroppedDataWarning), block as run:
        for _ in range(5):
            tracer.start_span("s").end()
    assert run.max_spans == 2 and len(run.spans) == 2 and run.dropped == 3


def test_open_span_map_is_bounded(tracer):
    proc = processor_mod.RunSpanProcessor(max_open_spans=10)
    from tg_bridge.capturing import Run
    from tg_bridge.capturing.state import reset_current, set_current

    run = Run("bounded")
    token = set_current(run)
    try:
        from opentelemetry.sdk.trace import TracerProvider

        provider = TracerProvider()
        provider.add_span_processor(proc)
        spans = [provider.get_tracer("t").start_span(f"open{i}") for i in range(50)]
        assert proc.open_span_count() == 10
        assert proc.evicted == 40
        for span in spans:
            span.end()
    finally:
        reset_current(token, None)
    assert [s.name for s in run.spans] == [f"open{i}" for i in range(40, 50)]


def _run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=60,
    )


def test_import_has_no_side_effects_and_user_exporters_receive_spans():
    proc = _run_python(
        """
        import sys
        import tg_bridge.capturing as cap
        assert cap.provider._provider is None, "provider created at import"
        assert not any(m.startswith(("langchain", "llama_index")) for m in sys.modules)
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        exporter = InMemorySpanExporter()
        cap.tracer_provider().add_span_processor(SimpleSpanProcessor(exporter))
        with cap.capture(instrument=False) as run:
            with cap.get_tracer("t").start_as_current_span("exported"):
                pass
        with cap.get_tracer("t").start_as_current_span("outside"):
            pass
        spans = exporter.get_finished_spans()
        assert [s.name for s in spans] == ["exported", "outside"], spans
        assert spans[0].attributes["tg_bridge.run_id"] == run.id
        assert "tg_bridge.run_id" not in spans[1].attributes
        print("ok")
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
