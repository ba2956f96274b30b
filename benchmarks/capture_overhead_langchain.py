"""Capture overhead on a LangChain chain: tg_bridge vs openinference-instrumentation-langchain.

The same 9-run LCEL chain (sequence, passthrough, parallel of two lambdas, prompt, zero-latency
fake chat model, parser, lambda) is invoked repeatedly:

- ``baseline``: nothing instrumented;
- ``tg_bridge``: our LangChain adapter emitting to an SDK TracerProvider with an in-memory
  exporter (SimpleSpanProcessor), the same setup as OpenInference below;
- ``tg_bridge+capture``: the real use, inside ``tg_bridge.capture()`` on tg_bridge's own
  provider (spans converted to SpanRecords on the Run);
- ``openinference``: ``LangChainInstrumentor`` with its own provider and in-memory exporter.

Configurations alternate over several rounds; each round times ``N`` invokes; we report the
median per-invoke time of each and the added time over the baseline. The last line is
``overhead_ratio_vs_openinference=<ours/theirs>`` (target: <= 0.5).

Usage: ``python benchmarks/capture_overhead_langchain.py [--rounds 7] [--invokes 300]``
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable
from itertools import cycle
from operator import itemgetter
from typing import Any

from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def make_chain() -> Any:
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Answer from the context: {context}"), ("human", "{question}")]
    )
    model = GenericFakeChatModel(messages=cycle([AIMessage(content="Paris is the capital.")]))
    return (
        RunnablePassthrough()
        | {"question": itemgetter("question"), "context": RunnableLambda(lambda d: "ctx " + d["question"])}
        | prompt
        | model
        | StrOutputParser()
        | RunnableLambda(lambda s: s.strip())
    )


def count_runs(chain: Any) -> int:
    from langchain_core.tracers.context import collect_runs

    with collect_runs() as collector:
        chain.invoke({"question": "q"})
    seen = 0
    stack = list(collector.traced_runs)
    while stack:
        run = stack.pop()
        seen += 1
        stack.extend(run.child_runs)
    return seen


def time_invokes(chain: Any, n: int, wrap: Callable[[], Any] | None = None) -> float:
    """Seconds per invoke over ``n`` invokes (one warm-up invoke first)."""
    chain.invoke({"question": "warm up"})
    if wrap is not None:
        with wrap():
            start = time.perf_counter()
            for i in range(n):
                chain.invoke({"question": f"q{i}"})
            return (time.perf_counter() - start) / n
    start = time.perf_counter()
    for i in range(n):
        chain.invoke({"question": f"q{i}"})
    return (time.perf_counter() - start) / n


class Setups:
    """Switches between the configurations (only one instrumented at a time)."""

    def __init__(self) -> None:
        from openinference.instrumentation.langchain import LangChainInstrumentor
        from tg_bridge_langchain import adapter

        import tg_bridge.capturing as tgc

        self.tgc = tgc
        self.adapter = adapter
        self.ours_exporter = InMemorySpanExporter()
        self.ours_provider = TracerProvider()
        self.ours_provider.add_span_processor(SimpleSpanProcessor(self.ours_exporter))
        self.oi_exporter = InMemorySpanExporter()
        self.oi_provider = TracerProvider()
        self.oi_provider.add_span_processor(SimpleSpanProcessor(self.oi_exporter))
        self.oi = LangChainInstrumentor()

    def off(self) -> None:
        self.tgc.uninstrument()
        self.adapter.uninstrument()
        if self.oi.is_instrumented_by_opentelemetry:
            self.oi.uninstrument()
        self.ours_exporter.clear()
        self.oi_exporter.clear()

    def measure(self, name: str, chain: Any, n: int) -> float:
        self.off()
        try:
            if name == "baseline":
                return time_invokes(chain, n)
            if name == "tg_bridge":
                self.adapter.instrument(self.ours_provider)
                per = time_invokes(chain, n)
                assert len(self.ours_exporter.get_finished_spans()) >= n
                return per
            if name == "tg_bridge+capture":
                self.tgc.instrument()
                return time_invokes(chain, n, wrap=lambda: self.tgc.capture("bench"))
            if name == "openinference":
                self.oi.instrument(tracer_provider=self.oi_provider)
                per = time_invokes(chain, n)
                assert len(self.oi_exporter.get_finished_spans()) >= n
                return per
            raise ValueError(name)
        finally:
            self.off()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--invokes", type=int, default=300)
    args = parser.parse_args()
    # OpenInference 0.1.80 trips a LangChain deprecation warning on every span; printing it
    # would charge them for terminal I/O, so warnings are silenced for every configuration
    warnings.simplefilter("ignore")

    chain = make_chain()
    runs = count_runs(chain)
    setups = Setups()
    names = ["baseline", "tg_bridge", "tg_bridge+capture", "openinference"]
    results: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(args.rounds):
        for name in names:
            results[name].append(setups.measure(name, chain, args.invokes))
    median = {name: statistics.median(values) for name, values in results.items()}
    base = median["baseline"]
    print(f"chain runs per invoke: {runs}; rounds: {args.rounds}; invokes per round: {args.invokes}")
    for name in names:
        added = median[name] - base
        print(f"{name:>18}: {median[name] * 1e3:7.3f} ms/invoke  added {added * 1e3:7.3f} ms "
              f"({added / runs * 1e6:6.1f} us/run)")
    ours = median["tg_bridge"] - base
    theirs = median["openinference"] - base
    ratio = ours / theirs if theirs > 0 else float("nan")
    print(f"capture_overhead_ratio_vs_openinference={(median['tg_bridge+capture'] - base) / theirs:.3f}")
    print(f"overhead_ratio_vs_openinference={ratio:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
