"""LCEL RAG over a vector store, as LangChain's tutorial "Build a Retrieval Augmented
Generation (RAG) App" (python.langchain.com/docs/tutorials/rag, LCEL version) writes it:
documents in an ``InMemoryVectorStore`` (fake embeddings here), ``as_retriever()``, the
``rlm/rag-prompt`` text as a ``ChatPromptTemplate``, and
``{"context": retriever | format_docs, "question": RunnablePassthrough()} | prompt | llm |
StrOutputParser()``. Called with a question string (``rag_chain.invoke("...")``).
"""

from __future__ import annotations

from typing import Any

from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore

from .harness import CorpusApp

RAG_PROMPT = (
    "You are an assistant for question-answering tasks. Use the following pieces of retrieved"
    " context to answer the question. If you don't know the answer, just say that you don't"
    " know. Use three sentences maximum and keep the answer concise.\n"
    "Question: {question} \nContext: {context} \nAnswer:"
)

DOCS = [
    "Paris has mild weather in spring.",
    "Berlin is cold in winter.",
    "Task decomposition splits a hard task into smaller steps.",
]


def format_docs(docs: list[Document]) -> str:
    return "\n\n".join(doc.page_content for doc in docs)


def build(llm: Any) -> Any:
    vector_store = InMemoryVectorStore(DeterministicFakeEmbedding(size=32))
    vector_store.add_documents([Document(page_content=text) for text in DOCS])
    retriever = vector_store.as_retriever(search_kwargs={"k": 2})
    prompt = ChatPromptTemplate.from_messages([("human", RAG_PROMPT)])
    return (
        {"context": retriever | format_docs, "question": RunnablePassthrough()}
        | prompt
        | llm
        | StrOutputParser()
    )


SPEC = CorpusApp(
    name="lcel_rag",
    build=build,
    run=lambda app, q: app.invoke(q),
    arun=lambda app, q: app.ainvoke(q),
    expected=(RAG_PROMPT,),
    target=RAG_PROMPT,
    examples=lambda questions: [{"inputs": {"question": q}} for q in questions],
)
