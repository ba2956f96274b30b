"""docs/otel-collector.yaml parses, uses only documented keys, and samples on the attribute
record_feedback() writes; feedback spans join their trace and read back as (score, text)."""

from __future__ import annotations

import json
import pathlib

import pytest
import yaml  # PyYAML: a dependency of langchain-core (requirements-test.txt)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tg_bridge.exceptions import UsageError
from tg_bridge.spans import SpanRecord
from tg_bridge.traces.feedback_spans import FEEDBACK, FEEDBACK_SPAN, feedback_in, record_feedback
from tg_bridge.traces.otlp_json import records_from_object

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs"
# The keys the components' READMEs document (opentelemetry-collector-contrib, see docs/collector.md).
FILE_EXPORTER = {"path", "format", "rotation", "compression", "flush_interval", "group_by", "append"}
ROTATION = {"max_megabytes", "max_days", "max_backups", "localtime"}
TAIL_SAMPLING = {"decision_wait", "num_traces", "expected_new_traces_per_sec", "decision_cache", "policies",
                 "sample_on_first_match", "drop_pending_traces_on_shutdown", "block_on_overflow"}  # fmt: skip
DECISION_CACHE = {"sampled_cache_size", "non_sampled_cache_size"}


def _config() -> dict:
    return yaml.safe_load((DOCS / "otel-collector.yaml").read_text())


def test_collector_config_uses_documented_keys_and_a_complete_pipeline():
    config = _config()
    pipeline = config["service"]["pipelines"]["traces"]
    for kind, names in (("receivers", pipeline["receivers"]), ("processors", pipeline["processors"]),
                        ("exporters", pipeline["exporters"])):  # fmt: skip
        assert set(names) <= set(config[kind]), kind
    (exporter,) = [v for k, v in config["exporters"].items() if k.split("/")[0] == "file"]
    assert set(exporter) <= FILE_EXPORTER and set(exporter["rotation"]) <= ROTATION
    assert exporter["format"] in ("json", "proto") and "compression" not in exporter  # what --follow reads
    assert exporter["rotation"]["max_megabytes"] > 0 and exporter["rotation"]["max_backups"] > 0
    sampling = config["processors"]["tail_sampling"]
    assert set(sampling) <= TAIL_SAMPLING and set(sampling["decision_cache"]) <= DECISION_CACHE
    assert pipeline["processors"].index("tail_sampling") < pipeline["processors"].index("batch")


def test_the_sampling_policy_matches_the_feedback_span_attribute():
    (policy,) = _config()["processors"]["tail_sampling"]["policies"]
    assert policy["type"] == "boolean_attribute"
    assert policy["boolean_attribute"] == {"key": FEEDBACK, "value": True}
    assert f"`{FEEDBACK}`" in (DOCS / "collector.md").read_text()


def _tracer():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("app"), exporter


def test_record_feedback_joins_the_trace_and_reads_back():
    tracer, exporter = _tracer()
    trace_id, root = "5b8efff798038103d269b633813fc60c", "EEE19B7EC3C1B174"
    record_feedback(trace_id, root, score=0.25, text="ignored the question", tracer=tracer)
    record_feedback(trace_id, root, text="second thoughts", tracer=tracer)
    spans = [next(iter(records_from_object(json.loads(s.to_json())))) for s in exporter.get_finished_spans()]
    assert {(s.trace_id, s.parent_id, s.name) for s in spans} == {(trace_id, root.lower(), FEEDBACK_SPAN)}
    assert feedback_in(spans) == [(0.25, "ignored the question"), (None, "second thoughts")]


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("0" * 32, "1" * 16), {"score": 1.0}),
        (("1" * 31, "1" * 16), {"score": 1.0}),
        (("1" * 32, "xyz"), {"score": 1.0}),
        (("1" * 32, "1" * 16), {"score": float("nan")}),
        (("1" * 32, "1" * 16), {"text": b"bytes"}),
        (("1" * 32, "1" * 16), {}),
    ],
)
def test_record_feedback_rejects_bad_ids_and_values(args, kwargs):
    tracer, exporter = _tracer()
    with pytest.raises(UsageError):
        record_feedback(*args, tracer=tracer, **kwargs)
    assert exporter.get_finished_spans() == ()


def test_record_feedback_of_an_end_user_survives_the_otlp_encoder():
    """End-user text with a lone surrogate ("\\ud800" from a JSON body) must still reach the
    collector: OTLP's protobuf encoder drops an attribute it cannot encode as UTF-8 (logging a
    traceback), which would lose the comment. A 10 MB score is refused without echoing it."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    tracer, exporter = _tracer()
    record_feedback("5" * 32, "e" * 16, score=0.0, text="rude \ud800 comment", tracer=tracer)
    request = ExportTraceServiceRequest.FromString(encode_spans(exporter.get_finished_spans()).SerializeToString())
    (span,) = request.resource_spans[0].scope_spans[0].spans
    texts = [a.value.string_value for a in span.attributes if a.key == "tg_bridge.feedback.text"]
    assert texts == ["rude \ufffd comment"]
    with pytest.raises(UsageError) as caught:
        record_feedback("5" * 32, "e" * 16, score="9" * 10_000_000, tracer=tracer)
    assert len(str(caught.value)) < 200


def test_feedback_in_ignores_hostile_values_and_other_spans():
    def span(**attrs):
        return SpanRecord("t", "s", None, "x", attributes=attrs)

    spans = [span(**{FEEDBACK: "true", "tg_bridge.feedback.score": 1.0}),  # not a bool true
             span(**{FEEDBACK: True, "tg_bridge.feedback.score": "NaN", "tg_bridge.feedback.text": 5}),
             span(**{FEEDBACK: True, "tg_bridge.feedback.score": float("inf"), "tg_bridge.feedback.text": "ok"}),
             span(other=1)]  # fmt: skip
    assert feedback_in(spans) == [(None, "ok")]
