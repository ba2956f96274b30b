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
from tests.loop.helpers import capitals, check_one_real_step, names_the_capital  # noqa: E402
from tg_bridge.adapters import load_adapters as real_load_adapters  # noqa: E402
from tg_bridge.engines.local import LocalEngine  # noqa: E402
from tg_bridge.loop import optimize  # noqa: E402

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
    result = optimize(chain, capitals("question"), metric=names_the_capital, engine=engine,
                      batch_size=2, store=str(tmp_path / "runs.db"), progress=False, mode="edge")
    check_one_real_step(result)
    assert prompt.messages[0].prompt.template == original  # byte for byte
