"""Record the production data of ``examples/production_traces.py`` from a real instrumented app.

The "production app" is the LlamaIndex query engine of ``examples/llamaindex_query_engine.py``
(its starting QA template, answering with the embedded SmolLM2 model by default). It is
instrumented the way a production deployment usually is: with the OpenInference LlamaIndex
instrumentor on an OpenTelemetry TracerProvider -- tg_bridge takes no part in the recording.
Each question is one trace. The spans are written like the OpenTelemetry Collector's file
exporter writes them (one OTLP ``ExportTraceServiceRequest`` per line, JSON, hex ids), and
simulated user feedback (thumbs up/down and a comment, from ``contains_answer``) is written
keyed by trace id::

    .venv/bin/python examples/data/make_production_traces.py            # embedded model
    .venv/bin/python examples/data/make_production_traces.py --engine openai:MODEL

Writes ``prod_traces.otlp.jsonl`` and ``feedback.jsonl`` next to this script (``--out-dir``
to write elsewhere). Ids and timestamps differ on every run; the answers (temperature 0) may
still vary slightly between machines and llama.cpp builds.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from google.protobuf import json_format  # noqa: E402
from llamaindex_query_engine import build_query_engine  # noqa: E402
from openinference.instrumentation import TraceConfig  # noqa: E402
from openinference.instrumentation.llama_index import LlamaIndexInstrumentor  # noqa: E402
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from tg_bridge_llamaindex import EngineLLM  # noqa: E402

import tg_bridge  # noqa: E402
from tg_bridge.datasets import QA_PAIRS, contains_answer  # noqa: E402

TRACES_FILE = "prod_traces.otlp.jsonl"
FEEDBACK_FILE = "feedback.jsonl"
SERVICE_NAME = "lumen-support-bot"


def user_feedback(index: int, expected: str, answer: str) -> dict[str, Any] | None:
    """What a user of the support bot would leave: a thumbs down with a comment on every
    wrong answer, a thumbs up on every other right one (most users leave nothing)."""
    score, _ = contains_answer({"expected": expected}, answer)
    if score < 1.0:
        return {"score": 0.0, "text": f"Not helpful: I asked a simple question and wanted the "
                                      f"fact itself ({expected}), in one short sentence."}
    if index % 2 == 0:
        return {"score": 1.0, "text": "Right answer, thanks."}
    return None


def _hex_ids(obj: Any) -> Any:
    """protobuf-JSON writes ids as base64; the Collector's file exporter writes hex."""
    if isinstance(obj, dict):
        return {k: (base64.b64decode(v).hex() if k in ("traceId", "spanId", "parentSpanId") and v
                    else _hex_ids(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_hex_ids(v) for v in obj]
    return obj


def record(engine: Any, out_dir: Path, *, answer_tokens: int = 48) -> tuple[int, int]:
    """Run every question of QA_PAIRS through the instrumented app; write both files.

    Returns (traces written, feedback lines written). The instrumentor is removed before
    returning, even on error.
    """
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = LlamaIndexInstrumentor()
    # embedding vectors are noise for prompt optimization and would make the file 10x larger
    instrumentor.instrument(tracer_provider=provider,
                            config=TraceConfig(hide_embedding_vectors=True))
    try:
        app = build_query_engine(EngineLLM(engine, max_tokens=answer_tokens))
        exporter.clear()  # building the app emits prompt-setup spans; production traces start here
        feedback = []
        for index, pair in enumerate(QA_PAIRS):
            question = pair["inputs"]["question"]
            answer = str(app.query(question)).strip()
            roots = [s for s in exporter.get_finished_spans() if s.parent is None]
            trace_id = format(roots[-1].context.trace_id, "032x")
            item = user_feedback(index, pair["expected"], answer)
            if item is not None:
                feedback.append({"trace_id": trace_id, **item})
            print(f"{trace_id}  {question}  ->  {answer[:70]!r}")
    finally:
        instrumentor.uninstrument()
    spans = exporter.get_finished_spans()
    by_trace: dict[int, list[Any]] = {}
    for span in spans:
        by_trace.setdefault(span.context.trace_id, []).append(span)
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / TRACES_FILE).open("w", encoding="utf-8") as fh:
        for group in by_trace.values():
            request = json_format.MessageToDict(encode_spans(group))
            fh.write(json.dumps(_hex_ids(request), sort_keys=True) + "\n")
    with (out_dir / FEEDBACK_FILE).open("w", encoding="utf-8") as fh:
        for item in feedback:
            fh.write(json.dumps(item, sort_keys=True) + "\n")
    return len(by_trace), len(feedback)


def main(argv: Sequence[str] | None = None, *, engine: Any = None) -> int:
    """Record the files; returns the exit code. ``engine`` overrides ``--engine`` (tests)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="local", help="the app's model: local | openai:MODEL")
    parser.add_argument("--answer-tokens", type=int, default=48)
    parser.add_argument("--out-dir", type=Path, default=HERE)
    args = parser.parse_args(argv)
    model = engine if engine is not None else tg_bridge.engine(args.engine)
    traces, lines = record(model, args.out_dir, answer_tokens=args.answer_tokens)
    print(f"wrote {traces} traces to {args.out_dir / TRACES_FILE} and {lines} feedback lines "
          f"to {args.out_dir / FEEDBACK_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
