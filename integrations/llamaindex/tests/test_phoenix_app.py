"""A real LlamaIndex query engine traced into a real Phoenix, its feedback read back as a patch.

LlamaIndex's ``VectorStoreIndex`` query engine on the real ``OpenAILike`` class (pointed at the
loopback OpenAI stub; mock embeddings), instrumented by OpenInference's
``LlamaIndexInstrumentor`` and exporting OTLP to ``phoenix serve``; a user rates the answers
through Phoenix's client; ``tg_bridge.load_traces(phoenix=..., project=...)`` finds the
engine's QA prompt, and the patch that ``optimize_phoenix`` proposes is written into a freshly
built engine by ``tg_bridge.apply_patch``: its next call sends the new system prompt.
"""

from __future__ import annotations

import pytest
from phoenix.client import Client

import tg_bridge
from tests.support.openai_stub import OpenAIStub
from tests.support.phoenix_server import tracer_provider, wait_for_spans
from tg_bridge.offline_phoenix import optimize_phoenix
from tg_bridge.testing import FakeEngine

PROJECT = "tg-llamaindex-qa"
DOCS = ("The Eiffel Tower is 330 metres tall and stands in Paris.",
        "The Louvre in Paris is the most visited museum in the world.")
QUESTIONS = ("How tall is the Eiffel Tower?", "Which museum is the most visited?")
NEW = "You are a careful Q&A system. Answer in one full sentence, citing the context."


def _mock_embeddings(monkeypatch: pytest.MonkeyPatch) -> None:
    from llama_index.core import MockEmbedding, Settings

    monkeypatch.setattr(Settings, "_embed_model", MockEmbedding(embed_dim=8))


@pytest.fixture(autouse=True)
def mock_embeddings(monkeypatch):
    _mock_embeddings(monkeypatch)


def _build_engine(stub: OpenAIStub):
    from llama_index.core import Document, VectorStoreIndex
    from llama_index.llms.openai_like import OpenAILike

    llm = OpenAILike(model="stub-model", api_base=stub.base_url, api_key="fake",
                     is_chat_model=True, max_retries=0)
    index = VectorStoreIndex.from_documents([Document(text=t) for t in DOCS])
    return index.as_query_engine(llm=llm)


@pytest.fixture(scope="module")
def stub():
    with OpenAIStub(lambda req: "330 metres.") as server:
        yield server


@pytest.fixture(scope="module")
def rated(phoenix, stub):
    """Two queries traced into PROJECT; every query's root span rated 0."""
    from openinference.instrumentation.llama_index import LlamaIndexInstrumentor

    provider = tracer_provider(phoenix, PROJECT)
    instrumentor = LlamaIndexInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        with pytest.MonkeyPatch.context() as patch:
            _mock_embeddings(patch)
            engine = _build_engine(stub)
            for question in QUESTIONS:
                engine.query(question)
    finally:
        instrumentor.uninstrument()
        provider.shutdown()
    spans = wait_for_spans(phoenix, PROJECT, len(QUESTIONS), where=_is_query)
    roots = [s for s in spans if _is_query(s)]
    client = Client(base_url=phoenix.url)
    for root in roots:
        client.spans.add_span_annotation(
            span_id=root["context"]["span_id"], annotation_name="helpful", score=0.0,
            explanation="Too terse; the user wanted a full sentence.", annotator_kind="HUMAN",
            sync=True)
    return roots


def _is_query(span: dict) -> bool:
    """A root span of one query (the index build at startup makes traces of its own)."""
    return not span.get("parent_id") and span["name"].endswith("QueryEngine.query")


def test_phoenix_traces_of_a_llamaindex_engine_become_graphs(phoenix, rated):
    every = tg_bridge.load_traces(phoenix=phoenix.url, project=PROJECT)
    graphs = [g for g in every if g.metadata["root"].endswith("QueryEngine.query")]
    assert len(graphs) == len(QUESTIONS)  # the index build adds traces of its own
    assert all(g.metadata["output"] == "330 metres." for g in graphs)
    texts = [p.value for p in graphs[0].parameters()]
    assert any(t.startswith("You are an expert Q&A system") for t in texts), texts
    assert {id(p) for p in graphs[0].parameters()} == {id(p) for p in graphs[1].parameters()}


def test_optimize_from_phoenix_feedback_patches_a_fresh_engine(phoenix, rated, stub):
    def respond(messages, fmt):
        if isinstance(fmt, dict) and "improved_value" in fmt.get("properties", {}):
            return {"improved_value": NEW}
        return "The system prompt should ask for a full sentence."

    result = optimize_phoenix(phoenix.url, PROJECT, engine=FakeEngine(respond))
    assert result.used == len(QUESTIONS)
    (change,) = result.patch.changes  # the same text for the QA template lost its fields
    assert change.old.startswith("You are an expert Q&A system") and change.new == NEW
    assert [r["target"] for r in result.patch.metadata["rejected"]]  # ... and was rejected
    engine = _build_engine(stub)  # the serving process builds its engine, then applies
    applied = tg_bridge.apply_patch(engine, result.patch)
    engine.query("How tall is the Eiffel Tower?")
    sent = stub.chat_requests[-1]["messages"]
    assert sent[0]["role"] == "system" and sent[0]["content"] == NEW
    applied.revert()
