"""A condense_plus_context chat engine, as in LlamaIndex's "Chat Engine - Condense Plus Context
Mode" example (https://docs.llamaindex.ai/en/stable/examples/chat_engine/chat_engine_condense_plus_context/)::

    memory = ChatMemoryBuffer.from_defaults(token_limit=3900)
    chat_engine = index.as_chat_engine(
        chat_mode="condense_plus_context",
        memory=memory,
        llm=llm,
        context_prompt=(
            "You are a chatbot, able to have normal interactions, as well as talk"
            " about an essay discussing Paul Grahams life."
            "Here are the relevant documents for the context:\\n"
            "{context_str}"
            "\\nInstruction: Use the previous chat history, or the context above, to interact and help the user."
        ),
        verbose=False,
    )
    response = chat_engine.chat("What did Paul Graham do growing up")
    response = chat_engine.chat("Can you tell me more?")
"""

from __future__ import annotations

from llama_index.core import Document, VectorStoreIndex
from llama_index.core.memory import ChatMemoryBuffer

from tests.support.llamaindex_stub import openai_like

DOCS = ("The Eiffel Tower is 330 metres tall and stands in Paris.", "The Louvre is a museum in Paris.")
CONTEXT = "context_prompt_template"
CONDENSE = "condense_prompt_template"


def build(stub):
    llm = openai_like(stub)
    index = VectorStoreIndex.from_documents([Document(text=t) for t in DOCS])
    memory = ChatMemoryBuffer.from_defaults(token_limit=3900)
    return index.as_chat_engine(
        chat_mode="condense_plus_context",
        memory=memory,
        llm=llm,
        context_prompt=(
            "You are a chatbot, able to have normal interactions, as well as talk about Paris."
            "Here are the relevant documents for the context:\n"
            "{context_str}"
            "\nInstruction: Use the previous chat history, or the context above, to interact and help the user."
        ),
        verbose=False,
    )


def run(chat_engine, question):
    chat_engine.chat("Hello, I have questions about Paris.")
    return str(chat_engine.chat(question))  # the follow-up is condensed with the history


def test_condense_plus_context_chat_engine(corpus, stub, tmp_path):
    seen = corpus.check_app(corpus.AppCase(
        build=build, run=run, expected=(CONTEXT, CONDENSE), target=CONTEXT,
        chosen=lambda old: old.startswith("You are a chatbot, able to have normal interactions"),
    ), stub, tmp_path)
    # conversation turns are data, never parameters
    values = [p.value for p in seen["graph"].parameters()]
    assert "Hello, I have questions about Paris." not in values
    assert all(not v.startswith("The Eiffel Tower is 330") for v in values)
