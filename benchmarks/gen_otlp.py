"""Generate a large OTLP JSON lines file of realistic RAG traces (OpenInference attributes).

Each trace: CHAIN "rag" -> RETRIEVER (3 documents) + PROMPT (ChatPromptTemplate with
llm.prompt_template.*) + LLM (chat messages) + CHAIN "StrOutputParser" = 5 spans. Traces are
batched into export requests (one request per line, like the Collector file exporter) and
written as they are generated, so memory stays flat. Deterministic for a given seed.

    python benchmarks/gen_otlp.py OUT.jsonl --spans 100000
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Iterator
from typing import Any

SPANS_PER_TRACE = 5
SYSTEM = "You answer questions about {topic} using only the context. Cite the document ids."
USER = "Context:\n{context}\n\nQuestion: {question}"
TOPICS = ("travel", "history", "science", "cooking")
WORDS = ("tower museum river bridge mountain city ancient modern height built century "
         "famous visitors metres stone glass painting garden palace").split()  # fmt: skip


def _s(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


def _span(tid: str, sid: str, parent: str | None, name: str, t0: int, attrs: dict[str, Any]) -> dict[str, Any]:
    span = {"traceId": tid, "spanId": sid, "name": name, "kind": 1,
            "startTimeUnixNano": str(t0), "endTimeUnixNano": str(t0 + 900_000),
            "attributes": [_s(k, v) for k, v in attrs.items()], "status": {"code": 1}}  # fmt: skip
    if parent:
        span["parentSpanId"] = parent
    return span


def trace_spans(rng: random.Random, n: int) -> list[dict[str, Any]]:
    """The 5 spans of the n-th trace."""
    tid = format(rng.getrandbits(128) | 1, "032x")
    ids = [format(rng.getrandbits(64) | 1, "016x") for _ in range(SPANS_PER_TRACE)]
    t0 = 1_700_000_000_000_000_000 + n * 10_000_000
    topic = TOPICS[n % len(TOPICS)]
    question = "What is the " + " ".join(rng.choice(WORDS) for _ in range(6)) + f" #{n}?"
    docs = [" ".join(rng.choice(WORDS) for _ in range(40)) + f" (doc {n}-{i})" for i in range(3)]
    context = "\n\n".join(docs)
    answer = f"Answer {n}: " + " ".join(rng.choice(WORDS) for _ in range(20))
    system = SYSTEM.format(topic=topic)
    user = USER.format(context=context, question=question)
    variables = {"question": question, "topic": topic, "context": context}
    root, ret, prompt, llm, parser = ids
    retrieval = {f"retrieval.documents.{i}.document.content": d for i, d in enumerate(docs)}
    retrieval.update({f"retrieval.documents.{i}.document.id": f"d{n}-{i}" for i in range(3)})
    return [
        _span(tid, root, None, "rag", t0, {"openinference.span.kind": "CHAIN",
              "input.value": json.dumps({"question": question, "topic": topic}), "output.value": answer}),
        _span(tid, ret, root, "VectorStoreRetriever", t0 + 1000, {"openinference.span.kind": "RETRIEVER",
              "input.value": question, **retrieval}),
        _span(tid, prompt, root, "ChatPromptTemplate", t0 + 2000, {"openinference.span.kind": "PROMPT",
              "input.value": json.dumps(variables), "llm.prompt_template.template": SYSTEM,
              "llm.prompt_template.variables": json.dumps({"topic": topic})}),
        _span(tid, llm, root, "ChatOpenAI", t0 + 3000, {"openinference.span.kind": "LLM",
              "llm.model_name": "gpt-4o-mini",
              "llm.input_messages.0.message.role": "system", "llm.input_messages.0.message.content": system,
              "llm.input_messages.1.message.role": "user", "llm.input_messages.1.message.content": user,
              "llm.output_messages.0.message.role": "assistant",
              "llm.output_messages.0.message.content": answer,
              "llm.token_count.prompt": 180, "llm.token_count.completion": 25}),
        _span(tid, parser, root, "StrOutputParser", t0 + 4000, {"openinference.span.kind": "CHAIN",
              "input.value": answer, "output.value": answer}),
    ]  # fmt: skip


def requests(total_spans: int, *, seed: int = 7, traces_per_request: int = 50) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    traces = max(1, total_spans // SPANS_PER_TRACE)
    for first in range(0, traces, traces_per_request):
        spans = [s for n in range(first, min(traces, first + traces_per_request)) for s in trace_spans(rng, n)]
        yield {"resourceSpans": [{
            "resource": {"attributes": [_s("service.name", "rag-app")]},
            "scopeSpans": [{"scope": {"name": "openinference.instrumentation.langchain"}, "spans": spans}],
        }]}  # fmt: skip


def write(path: str, total_spans: int, *, seed: int = 7) -> int:
    """Write the file; returns the number of spans written."""
    count = 0
    with open(path, "w", encoding="utf-8") as fh:
        for request in requests(total_spans, seed=seed):
            fh.write(json.dumps(request, separators=(",", ":")) + "\n")
            count += len(request["resourceSpans"][0]["scopeSpans"][0]["spans"])
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(f"wrote {write(args.out, args.spans, seed=args.seed)} spans to {args.out}")


if __name__ == "__main__":
    main()
