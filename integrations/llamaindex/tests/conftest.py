"""Offline LlamaIndex apps for the adapter tests: a scripted CustomLLM and a small index."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import tg_bridge_llamaindex
from llama_index.core import Document, MockEmbedding, VectorStoreIndex
from llama_index.core.llms import CompletionResponse, CustomLLM, LLMMetadata
from llama_index.core.llms.callbacks import llm_completion_callback
from pydantic import Field

DOCS = (
    "The Eiffel Tower is 330 metres tall and stands in Paris.",
    "Mount Fuji is the highest mountain in Japan at 3,776 metres.",
    "The Louvre in Paris is the most visited museum in the world.",
)


class ScriptedLLM(CustomLLM):
    """A deterministic completion LLM: scripted answers in order, else ``fn(prompt)``, else an
    echo of the prompt's last line. Records every prompt it receives in ``received``; reports
    token usage (words) in ``raw`` like hosted models do."""

    answers: list[str] = Field(default_factory=list)
    received: list[str] = Field(default_factory=list)
    fn: Any = None

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="scripted", context_window=4096, num_output=256)

    def _answer(self, prompt: str) -> str:
        self.received.append(prompt)
        if self.answers:
            return self.answers.pop(0)
        if self.fn is not None:
            return self.fn(prompt)
        return "answer: " + prompt.strip().splitlines()[-1][:40]

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        text = self._answer(prompt)
        usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split())}
        return CompletionResponse(text=text, raw={"usage": usage})

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any):
        text = self._answer(prompt)

        def gen():
            sofar = ""
            for piece in text.split(" "):
                delta = piece if not sofar else " " + piece
                sofar += delta
                yield CompletionResponse(text=sofar, delta=delta)

        return gen()


@pytest.fixture(scope="session", autouse=True)
def _instrumented():
    import tg_bridge.capturing as capture

    capture.instrument()
    assert tg_bridge_llamaindex.handlers.installed() is not None
    yield


@pytest.fixture
def llm() -> ScriptedLLM:
    return ScriptedLLM()


@pytest.fixture
def index() -> VectorStoreIndex:
    docs = [Document(text=t, id_=f"d{i}") for i, t in enumerate(DOCS)]
    return VectorStoreIndex.from_documents(docs, embed_model=MockEmbedding(embed_dim=8))


@pytest.fixture
def make_llm() -> Callable[..., ScriptedLLM]:
    """Factory: ``make_llm(fn=None, answers=None)``."""

    def make(fn: Callable[[str], str] | None = None, answers: list[str] | None = None) -> ScriptedLLM:
        return ScriptedLLM(fn=fn, answers=list(answers or []))

    return make
