"""End to end: optimize a real LlamaIndex query engine whose LLM is the embedded SmolLM2."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("llama_index.core")
pytest.importorskip("llama_cpp")

from llama_index.core import Document, MockEmbedding, PromptTemplate, VectorStoreIndex  # noqa: E402
from llama_index.core.llms import CompletionResponse, CustomLLM, LLMMetadata  # noqa: E402
from llama_index.core.llms.callbacks import llm_completion_callback  # noqa: E402

import tg_bridge.adapters  # noqa: E402
import tg_bridge.capturing  # noqa: E402
from tests.loop.helpers import capitals, check_one_real_step, names_the_capital  # noqa: E402
from tg_bridge.adapters import load_adapters as real_load_adapters  # noqa: E402
from tg_bridge.engines.local import LocalEngine  # noqa: E402
from tg_bridge.loop import optimize  # noqa: E402

pytestmark = pytest.mark.slow

QA = "Context: {context_str}\nQuestion: {query_str}\nShort answer:"
KEY = "response_synthesizer:text_qa_template"


class LocalLLM(CustomLLM):
    """A LlamaIndex completion LLM over tg_bridge's embedded-model engine."""

    engine: Any = None

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="smollm2-local", context_window=2048, num_output=24)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        text = self.engine.complete([{"role": "user", "content": prompt}], max_tokens=24).text
        return CompletionResponse(text=text)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
        response = self.complete(prompt)
        yield CompletionResponse(text=response.text, delta=response.text)


def test_query_engine_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setattr(tg_bridge.adapters, "load_adapters", real_load_adapters)
    tg_bridge.capturing.uninstrument()  # the next capture() instruments the real adapters
    engine = LocalEngine(max_tokens=32)
    docs = [Document(text="Paris is the capital of France.", id_="d0"),
            Document(text="Berlin is the capital of Germany.", id_="d1")]
    index = VectorStoreIndex.from_documents(docs, embed_model=MockEmbedding(embed_dim=8))
    query_engine = index.as_query_engine(llm=LocalLLM(engine=engine), similarity_top_k=2)
    query_engine.update_prompts({KEY: PromptTemplate(QA)})

    result = optimize(query_engine, capitals("query"), metric=names_the_capital, engine=engine,
                      batch_size=2, in_place=False, store=str(tmp_path / "runs.db"), progress=False)
    # the original engine is untouched; the copy carries the result
    assert query_engine.get_prompts()[KEY].get_template() == QA
    assert result.target is not query_engine
    check_one_real_step(result)
    assert result.target.get_prompts()[KEY].get_template() == QA  # byte for byte
