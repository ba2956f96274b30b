"""A streaming query, as in LlamaIndex's "Streaming" guide
(https://docs.llamaindex.ai/en/stable/module_guides/deploying/query_engine/streaming/)::

    query_engine = index.as_query_engine(streaming=True, similarity_top_k=1)
    streaming_response = query_engine.query("What did the author do growing up?")
    for text in streaming_response.response_gen:
        ...  # do something with text as they arrive.
"""

from __future__ import annotations

from llama_index.core import Document, VectorStoreIndex

from tests.support.llamaindex_stub import openai_like

DOCS = ("The Eiffel Tower is 330 metres tall and stands in Paris.", "Mount Fuji is in Japan.")
SYSTEM = "response_synthesizer:text_qa_template.conditionals[0].messages[0]"
USER = "response_synthesizer:text_qa_template.conditionals[0].messages[1]"


def build(stub):
    llm = openai_like(stub)
    index = VectorStoreIndex.from_documents([Document(text=t) for t in DOCS])
    return index.as_query_engine(llm=llm, streaming=True, similarity_top_k=1)


def run(query_engine, question):
    streaming_response = query_engine.query(question)
    pieces = [text for text in streaming_response.response_gen]
    assert len(pieces) > 1  # it really streamed
    return "".join(pieces)


def test_streaming_query(corpus, stub, tmp_path):
    seen = corpus.check_app(corpus.AppCase(
        build=build, run=run, expected=(SYSTEM, USER), target=SYSTEM,
        chosen=lambda old: old.startswith("You are an expert Q&A system"),
    ), stub, tmp_path)
    assert all(body.get("stream") for body in stub.chat_requests)
    assert seen["graph"].outputs[0].value.startswith("The Eiffel Tower is 330 metres tall.")
