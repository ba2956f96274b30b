"""VectorStoreIndex query engine, as in LlamaIndex's "Starter Tutorial (Using OpenAI)"
(https://docs.llamaindex.ai/en/stable/getting_started/starter_example/) and, for local
OpenAI-compatible servers (vLLM, LM Studio, llama.cpp), the "OpenAILike" LLM page
(https://docs.llamaindex.ai/en/stable/api_reference/llms/openai_like/)::

    documents = SimpleDirectoryReader("data").load_data()
    index = VectorStoreIndex.from_documents(documents)
    query_engine = index.as_query_engine()
    response = query_engine.query("What did the author do growing up?")
"""

from __future__ import annotations

from llama_index.core import Document, VectorStoreIndex
from llama_index.llms.openai import OpenAI

from tests.support.llamaindex_stub import openai_like

DOCS = (
    "The Eiffel Tower is 330 metres tall and stands in Paris.",
    "The Louvre in Paris is the most visited museum in the world.",
)
SYSTEM = "response_synthesizer:text_qa_template.conditionals[0].messages[0]"
USER = "response_synthesizer:text_qa_template.conditionals[0].messages[1]"


def build_openai_like(stub):
    llm = openai_like(stub)
    index = VectorStoreIndex.from_documents([Document(text=t) for t in DOCS])
    return index.as_query_engine(llm=llm)


def build_openai(stub):
    llm = OpenAI(model="gpt-4o-mini", api_base=stub.base_url, api_key="fake")
    index = VectorStoreIndex.from_documents([Document(text=t) for t in DOCS])
    return index.as_query_engine(llm=llm)


def run(query_engine, question):
    return str(query_engine.query(question))


def test_openai_like_query_engine(corpus, stub, tmp_path):
    # OpenAILike.chat runs super().chat(): one call, two nested spans (issue 12)
    seen = corpus.check_app(corpus.AppCase(
        build=build_openai_like, run=run, expected=(SYSTEM, USER), target=SYSTEM,
        chosen=lambda old: old.startswith("You are an expert Q&A system"),
    ), stub, tmp_path)
    calls = [n for n in seen["graph"].nodes if n.op is not None and n.op.kind == "llm_call"]
    assert len(calls) == 1  # the nested spans are ONE llm op


def test_openai_query_engine(corpus, stub, tmp_path):
    corpus.check_app(corpus.AppCase(
        build=build_openai, run=run, expected=(SYSTEM, USER), target=USER,
        chosen=lambda old: old.startswith("Context information is below"),
    ), stub, tmp_path)
