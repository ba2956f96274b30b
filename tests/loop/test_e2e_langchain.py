"""End to end: optimize a real LangChain RAG chain whose model is the embedded SmolLM2."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("llama_cpp")

from langchain_core.callbacks import CallbackManagerForRetrieverRun  # noqa: E402
from langchain_core.documents import Document  # noqa: E402
from langchain_core.language_models import BaseChatModel  # noqa: E402
from langchain_core.messages import AIMessage, BaseMessage  # noqa: E402
from langchain_core.output_parsers import StrOutputParser  # noqa: E402
from langchain_core.outputs import ChatGeneration, ChatResult  # noqa: E402
from langchain_core.prompts import ChatPromptTemplate  # noqa: E402
from langchain_core.retrievers import BaseRetriever  # noqa: E402
from langchain_core.runnables import RunnablePassthrough  # noqa: E402

import tg_bridge.adapters  # noqa: E402
import tg_bridge.capturing  # noqa: E402
from tg_bridge.adapters import load_adapters as real_load_adapters  # noqa: E402
from tg_bridge.engines.local import LocalEngine  # noqa: E402
from tg_bridge.loop import optimize  # noqa: E402
from tg_bridge.patching.validate import placeholders  # noqa: E402

pytestmark = pytest.mark.slow

DOCS = ["Paris is the capital of France.", "Berlin is the capital of Germany."]
TEMPLATE = "Answer using only this context: {context}\nQuestion: {question}"


class LocalChat(BaseChatModel):
    """A LangChain chat model over tg_bridge's embedded-model engine."""

    engine: Any = None

    @property
    def _llm_type(self) -> str:
        return "tg-bridge-local"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        role = {"system": "system", "human": "user", "ai": "assistant"}
        msgs = [{"role": role.get(m.type, "user"), "content": str(m.content)} for m in messages]
        text = self.engine.complete(msgs, max_tokens=24).text
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])


class Keyword(BaseRetriever):
    def _get_relevant_documents(self, query: str, *,
                                run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        words = set(query.lower().replace("?", "").split())
        return [Document(page_content=d) for d in DOCS if words & set(d.lower().rstrip(".").split())]


@pytest.fixture(scope="module")
def engine():
    return LocalEngine(max_tokens=32)


def test_rag_chain_end_to_end(engine, tmp_path, monkeypatch):
    # the real installed adapters (tests/loop/conftest.py installs only FakeAppAdapter)
    monkeypatch.setattr(tg_bridge.adapters, "load_adapters", real_load_adapters)
    tg_bridge.capturing.uninstrument()  # the next capture() instruments the real adapters
    prompt = ChatPromptTemplate.from_messages([("human", TEMPLATE)])
    chain = (
        {"context": Keyword() | (lambda docs: "\n".join(d.page_content for d in docs)),
         "question": RunnablePassthrough()}
        | prompt | LocalChat(engine=engine) | StrOutputParser()
    )
    original = prompt.messages[0].prompt.template

    def metric(example, output):
        ok = example.expected.lower() in output.lower()
        return (1.0, "correct") if ok else (0.0, f"The answer should name {example.expected}.")

    train = [({"question": "What is the capital of France?"}, "Paris"),
             ({"question": "What is the capital of Germany?"}, "Berlin")]
    result = optimize(chain, train, metric=metric, engine=engine, batch_size=2,
                      store=str(tmp_path / "runs.db"), progress=False, mode="edge")
    assert len(result.history) == 1 and result.baseline_score is not None
    step = result.history[0]
    # the real adapter captured the run: a prompt was found and received feedback
    assert not step.reason.startswith(("no run of the batch", "no writable prompt")), step.reason
    assert any(step.gradients.values())
    # every proposed change keeps exactly the template's placeholders
    for change in (step.candidate.changes if step.candidate is not None else ()):
        fmt = change.provenance.get("template_format", "f-string")
        assert set(placeholders(change.old, fmt)) == set(placeholders(change.new, fmt))
    # revert restores the original prompts byte for byte
    if step.accepted and step.candidate is not None and step.candidate.changes:
        step.candidate.revert()
    assert prompt.messages[0].prompt.template == original
    # the app's own model calls were metered (the baseline's runs double as the first
    # step's forward pass, so they count under "eval")
    assert result.usage["forward"]["calls"] + result.usage["eval"]["calls"] >= 2
