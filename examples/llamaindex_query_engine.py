"""Optimize the QA template of an existing LlamaIndex query engine on a small question set.

The app is an ordinary LlamaIndex RetrieverQueryEngine over tg_bridge's fictional company
documents (``tg_bridge.datasets.DOCUMENTS``): a VectorStoreIndex with a deterministic local
embedding (hashed bag of words, no network) and :class:`tg_bridge_llamaindex.EngineLLM` as its
LLM, so the whole app runs offline on the embedded model. ``tg_bridge.optimize`` runs it on
question/answer pairs, scores each answer with ``contains_answer``, turns the misses into
textual gradients and rewrites ``response_synthesizer:text_qa_template`` in the live engine.

    python examples/llamaindex_query_engine.py                    # embedded SmolLM2, offline
    python examples/llamaindex_query_engine.py --steps 3 --examples 6
    OPENAI_BASE_URL=http://127.0.0.1:8080/v1 python examples/llamaindex_query_engine.py \\
        --engine openai:MODEL

The embedded 135M-parameter model shows the mechanics, not the gains of a strong model.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llama_index.core import Document, PromptTemplate, VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from tg_bridge_llamaindex import EngineLLM

import tg_bridge
from tg_bridge.datasets import DOCUMENTS, QA_PAIRS, contains_answer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_engine_arguments, build_engines, print_optimization  # noqa: E402

QA_KEY = "response_synthesizer:text_qa_template"
#: The app's starting QA template (what a developer might have written on day one).
QA_TEMPLATE = "Context:\n{context_str}\n\nQuestion: {query_str}"
_WORD = re.compile(r"[a-z0-9]+")


class HashEmbedding(BaseEmbedding):
    """A deterministic bag-of-words embedding: each lower-cased word adds 1 to a dimension
    chosen by SHA-256 (stable across processes, unlike ``hash()``); vectors are L2-normalized.
    Good enough to retrieve the right sentence of a small document set, with no model."""

    dim: int = 256

    @classmethod
    def class_name(cls) -> str:
        return "HashEmbedding"

    def _vector(self, text: str) -> list[float]:
        vec = [0.0] * self.dim
        for word in _WORD.findall(text.lower()):
            if len(word) > 2:  # skip "a", "of", "is": they only blur the ranking
                slot = int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "big") % self.dim
                vec[slot] += 1.0
        norm = math.sqrt(sum(v * v for v in vec)) or 1.0
        return [v / norm for v in vec]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._vector(text)


def build_query_engine(llm: Any, *, top_k: int = 2, template: str = QA_TEMPLATE) -> Any:
    """The app: a RetrieverQueryEngine over DOCUMENTS answering with ``llm``."""
    docs = [Document(text=text, id_=f"doc-{i}") for i, text in enumerate(DOCUMENTS)]
    index = VectorStoreIndex.from_documents(docs, embed_model=HashEmbedding())
    engine = index.as_query_engine(llm=llm, similarity_top_k=top_k, response_mode="compact")
    engine.update_prompts({QA_KEY: PromptTemplate(template)})
    return engine


def plan(examples: int, steps: int) -> tuple[int, int]:
    """(batch_size, epochs) for about ``steps`` steps over ``examples`` questions. Batches are
    whole: 4 questions in 3 steps become 2 batches of 2, so 2 steps."""
    if steps <= examples:
        return math.ceil(examples / steps), 1
    return 1, math.ceil(steps / examples)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_engine_arguments(parser)
    parser.add_argument("--steps", type=int, default=2, help="optimization steps (about)")
    parser.add_argument("--examples", type=int, default=4, help="training questions")
    parser.add_argument("--val", type=int, default=2, help="validation questions (after the training ones)")
    args = parser.parse_args(argv)
    if args.examples < 1 or args.val < 0 or args.examples + args.val > len(QA_PAIRS):
        parser.error(f"need --examples >= 1, --val >= 0 and --examples + --val <= {len(QA_PAIRS)}")
    if args.steps < 1:
        parser.error("--steps must be >= 1")
    return args


def main(argv: Sequence[str] | None = None, *, app_engine: Any = None,
         backward_engine: Any = None) -> int:
    """Run the example; returns the exit code. ``app_engine``/``backward_engine`` override
    ``--engine`` (tests pass FakeEngines)."""
    args = parse_args(argv)
    app, backward = build_engines(args, app_engine=app_engine, backward_engine=backward_engine)
    query_engine = build_query_engine(EngineLLM(app, max_tokens=args.answer_tokens))
    train = list(QA_PAIRS[: args.examples])
    val = list(QA_PAIRS[args.examples : args.examples + args.val])
    batch_size, epochs = plan(len(train), args.steps)
    print(f"app: {type(query_engine).__name__} over {len(DOCUMENTS)} documents; "
          f"app model {getattr(app, 'id', app)}; feedback model {getattr(backward, 'id', backward)}")
    question = train[0]["inputs"]["question"]
    print(f"\nQ: {question}\nA: {str(query_engine.query(question)).strip()}")
    print(f"\noptimizing {QA_KEY!r} on {len(train)} questions (batches of {batch_size}, "
          f"{epochs} epoch(s)), validating on {len(val)}")
    try:
        result = tg_bridge.optimize(
            query_engine, train, valset=val or None, metric=contains_answer,
            engine=backward, backward_engine=backward, batch_size=batch_size, epochs=epochs,
            store=args.store, progress=not args.quiet,
        )
    except tg_bridge.TgBridgeError as exc:
        print(f"optimization stopped: {type(exc).__name__}: {exc}")
        return 1
    print_optimization(result, quiet=args.quiet)
    live = query_engine.get_prompts()[QA_KEY].get_template()
    if not args.quiet:
        print(f"\nthe live QA template now:\n{live}")
        print(f"\nQ: {question}\nA: {str(query_engine.query(question)).strip()}")
    print(f"\nrun {result.run_id} stored in {result.store_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
