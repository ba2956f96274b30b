"""Optimize the prompt of an ordinary LangChain RAG chain with tg_bridge, offline.

The app is plain LCEL: a keyword retriever over a small document set | a ChatPromptTemplate
(a system message and a human template with {context} and {question}) | a chat model |
StrOutputParser. The function that answers questions is decorated with
``@tg_bridge.optimizable``; ``answer.optimize(...)`` then runs a few questions, scores them
with a metric (does the answer contain the expected fact?), has an LLM write feedback on the
prompts, proposes new prompts, keeps them only if the validation score does not drop, and
writes them back into the live chain.

    python examples/langchain_rag.py                      # embedded SmolLM2, offline
    python examples/langchain_rag.py --steps 3 --examples 6
    OPENAI_BASE_URL=http://127.0.0.1:8080/v1 python examples/langchain_rag.py --engine openai:MODEL

The embedded SmolLM2-135M model shows the mechanics; its feedback and rewrites are weak, so
most candidates are reverted by the validation gate. A real model writes useful feedback.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnablePassthrough
from tg_bridge_langchain import EngineChatModel

import tg_bridge
from tg_bridge.datasets import DOCUMENTS, QA_PAIRS, contains_answer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_engine_arguments, build_engines, print_optimization  # noqa: E402

SYSTEM_PROMPT = "You are an assistant."
HUMAN_TEMPLATE = "{context}\n\n{question}"
_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    "a an and the of in on is are does do how what who when which many much long per to for "
    "by it its one".split()
)


class KeywordRetriever(BaseRetriever):
    """The ``k`` documents sharing the most words with the query (no embeddings needed)."""

    documents: tuple[str, ...] = DOCUMENTS
    k: int = 2

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        words = _words(query)
        scored = [(len(words & _words(doc)), -i, doc) for i, doc in enumerate(self.documents)]
        best = sorted((s for s in scored if s[0] > 0), reverse=True)[: self.k]
        return [Document(page_content=doc) for _, _, doc in best]


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS}


def format_docs(docs: list[Document]) -> str:
    return "\n".join(f"- {d.page_content}" for d in docs)


def build_chain(model: Any) -> tuple[Runnable, ChatPromptTemplate]:
    """The RAG chain (and its prompt, to show what was written back)."""
    prompt = ChatPromptTemplate.from_messages(
        [("system", SYSTEM_PROMPT), ("human", HUMAN_TEMPLATE)]
    )
    chain = (
        {"context": KeywordRetriever() | format_docs, "question": RunnablePassthrough()}
        | prompt
        | model
        | StrOutputParser()
    )
    return chain, prompt


def make_answer(chain: Runnable, store: Any = None) -> Any:
    """The app's entry point, made optimizable by the decorator (same signature and result)."""

    @tg_bridge.optimizable(store=store)
    def answer(question: str) -> str:
        return chain.invoke(question)

    return answer


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_engine_arguments(parser, answer_tokens=40, feedback_tokens=256)
    parser.add_argument("--steps", type=int, default=2, help="optimization steps (default 2)")
    parser.add_argument("--examples", type=int, default=4,
                        help="training questions (default 4; the next ones validate)")
    parser.add_argument("--val", type=int, default=4, help="validation questions (default 4)")
    args = parser.parse_args(argv)
    if not 1 <= args.steps <= args.examples:
        parser.error("--steps must be between 1 and --examples")
    if args.examples + args.val > len(QA_PAIRS):
        parser.error(f"--examples + --val must be at most {len(QA_PAIRS)}")
    return args


def main(argv: Sequence[str] | None = None, *, app_engine: Any = None,
         backward_engine: Any = None) -> int:
    """Run the example; returns the exit code. ``app_engine``/``backward_engine`` override
    ``--engine`` (tests pass FakeEngines)."""
    args = parse_args(argv)
    app, backward = build_engines(args, app_engine=app_engine, backward_engine=backward_engine)
    model = EngineChatModel(engine=app, max_tokens=args.answer_tokens)
    chain, prompt = build_chain(model)
    answer = make_answer(chain, store=args.store)
    train = list(QA_PAIRS[: args.examples])
    val = list(QA_PAIRS[args.examples : args.examples + args.val])
    print(f"app model: {model.model_name} ({model.engine_id}); "
          f"feedback model: {getattr(backward, 'model', backward)}")
    question = train[0]["inputs"]["question"]
    print(f"\nQ: {question}\nA: {answer(question).strip()}")
    batch = math.ceil(len(train) / args.steps)
    print(f"\noptimizing on {len(train)} questions ({args.steps} steps of {batch}), "
          f"validating on {len(val)}")
    try:
        result = answer.optimize(
            train, valset=val, metric=contains_answer, batch_size=batch,
            engine=backward, backward_engine=backward, progress=not args.quiet,
        )
    except tg_bridge.TgBridgeError as exc:
        print(f"optimization stopped: {type(exc).__name__}: {exc}")
        return 1
    print_optimization(result, quiet=args.quiet)
    if not args.quiet:
        print("\nthe live chain's prompt now:")
        for message in prompt.messages:
            print(f"  [{type(message).__name__}] {message.prompt.template!r}")
        print(f"\nQ: {question}\nA: {answer(question).strip()}")
    print(f"\nrun {result.run_id} stored in {result.store_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
