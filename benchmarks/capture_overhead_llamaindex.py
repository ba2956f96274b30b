"""Capture overhead on a LlamaIndex query engine: tg_bridge vs openinference-instrumentation-llama-index.

The same RetrieverQueryEngine (in-memory VectorStoreIndex over 3 documents, MockEmbedding,
compact synthesizer, a zero-latency CustomLLM) answers the same question repeatedly:

- ``baseline``: nothing instrumented;
- ``tg_bridge``: our LlamaIndex adapter emitting to an SDK TracerProvider with an in-memory
  exporter (SimpleSpanProcessor), the same setup as OpenInference below;
- ``tg_bridge+capture``: the real use, inside ``tg_bridge.capture()`` on tg_bridge's own
  provider (spans converted to SpanRecords on the Run, prompt bindings registered);
- ``openinference``: ``LlamaIndexInstrumentor`` with its own provider and in-memory exporter.

Only one configuration is instrumented at a time; they alternate over several rounds, each
round timing ``N`` queries. We report the median per-query time of each and the added time
over the baseline. The last line is ``overhead_ratio_vs_openinference=<ours/theirs>``
(target: <= 0.5), ours being the ``tg_bridge`` configuration (same exporter setup as theirs).

Usage: ``python benchmarks/capture_overhead_llamaindex.py [--rounds 7] [--queries 200]``
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from typing import Any

from llama_index.core import Document, MockEmbedding, VectorStoreIndex
from llama_index.core.llms import CompletionResponse, CustomLLM, LLMMetadata
from llama_index.core.llms.callbacks import llm_completion_callback
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

DOCS = (
    "The Eiffel Tower is 330 metres tall and stands in Paris.",
    "Mount Fuji is the highest mountain in Japan at 3,776 metres.",
    "The Louvre in Paris is the most visited museum in the world.",
)


class ZeroLatencyLLM(CustomLLM):
    """Answers instantly with a fixed sentence."""

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="zero-latency")

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text="The Eiffel Tower is 330 metres tall.")

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
        raise NotImplementedError


def build_engine() -> Any:
    index = VectorStoreIndex.from_documents(
        [Document(text=t, id_=f"d{i}") for i, t in enumerate(DOCS)], embed_model=MockEmbedding(embed_dim=8)
    )
    return index.as_query_engine(llm=ZeroLatencyLLM(), similarity_top_k=2)


def _provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


class Configs:
    """Switches between the configurations (only one instrumented at a time)."""

    def __init__(self) -> None:
        from openinference.instrumentation.llama_index import LlamaIndexInstrumentor
        from tg_bridge_llamaindex import adapter

        import tg_bridge.capturing as tgc

        self.tgc = tgc
        self.adapter = adapter
        self.oi = LlamaIndexInstrumentor()
        self.ours_provider, self.ours_exporter = _provider()
        self.oi_provider, self.oi_exporter = _provider()

    def off(self) -> None:
        self.tgc.uninstrument()
        self.adapter.uninstrument()
        if self.oi.is_instrumented_by_opentelemetry:
            self.oi.uninstrument()

    def measure(self, name: str, engine: Any, n: int) -> float:
        self.off()
        scope: Any = contextlib.nullcontext()
        if name == "tg_bridge":
            self.adapter.instrument(self.ours_provider)
        elif name == "tg_bridge+capture":
            self.tgc.instrument()
            scope = self.tgc.capture("bench")
        elif name == "openinference":
            self.oi.instrument(tracer_provider=self.oi_provider)
        try:
            with scope:
                engine.query("How tall is the Eiffel Tower?")  # warm up this configuration
                started = time.perf_counter()
                for _ in range(n):
                    engine.query("How tall is the Eiffel Tower?")
                elapsed = time.perf_counter() - started
        finally:
            self.off()
            self.ours_exporter.clear()
            self.oi_exporter.clear()
        return elapsed / n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    engine = build_engine()
    configs = Configs()
    names = ["baseline", "tg_bridge", "tg_bridge+capture", "openinference"]
    samples: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(args.rounds):
        for name in names:
            samples[name].append(configs.measure(name, engine, args.queries))
    median = {n: statistics.median(v) for n, v in samples.items()}
    base = median["baseline"]
    print(f"{'config':<20}{'ms/query':>10}{'added ms':>10}")
    for name in names:
        print(f"{name:<20}{median[name] * 1e3:>10.3f}{(median[name] - base) * 1e3:>10.3f}")
    ours = median["tg_bridge"] - base
    theirs = median["openinference"] - base
    print(f"capture_overhead_ratio_vs_openinference={(median['tg_bridge+capture'] - base) / theirs:.3f}")
    print(f"overhead_ratio_vs_openinference={ours / theirs if theirs > 0 else float('nan'):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
