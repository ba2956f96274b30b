"""MLflow spans -> SpanRecords (pure: fake Trace objects shaped like mlflow.entities.Trace)."""

from __future__ import annotations

from types import SimpleNamespace

from tg_bridge_mlflow.spans import MAX_MESSAGES, records_of_trace, trace_hex

import tg_bridge

TRACE = "tr-" + "ab" * 16


def span(span_id, parent, name, span_type, inputs=None, outputs=None, status="OK", **extra):
    attributes = {"mlflow.spanType": span_type, "mlflow.spanInputs": inputs,
                  "mlflow.spanOutputs": outputs, **extra}
    return SimpleNamespace(span_id=span_id, parent_id=parent, name=name, span_type=span_type,
                           start_time_ns=len(name), end_time_ns=100,
                           attributes={k: v for k, v in attributes.items() if v is not None},
                           status=SimpleNamespace(status_code=SimpleNamespace(value=status)),
                           events=[])


def trace(*spans):
    return SimpleNamespace(info=SimpleNamespace(trace_id=TRACE),
                           data=SimpleNamespace(spans=list(spans)))


def test_langchain_chat_model_span_and_retriever_documents():
    docs = [{"page_content": "Refunds take 14 days.", "metadata": {}},
            {"page_content": "Shipping is free.", "metadata": {}}]
    records = records_of_trace(trace(
        span("0000000000000001", None, "chain", "CHAIN", {"question": "refund?"}, "14 days"),
        span("0000000000000002", "0000000000000001", "retriever", "RETRIEVER", "refund?", docs),
        span("0000000000000003", "0000000000000001", "ChatOpenAI", "CHAT_MODEL",
             [[{"type": "system", "content": "Use the context."},
               {"type": "human", "content": [{"type": "text", "text": "refund? "},
                                             {"type": "text", "text": "Refunds take 14 days."}]}]],
             {"generations": [[{"text": "14 days", "message": {"type": "ai",
                                                                "content": "14 days"}}]]}),
    ))
    assert all(r.trace_id == "ab" * 16 for r in records)
    assert records[0].resource["mlflow.trace_id"] == TRACE
    llm = records[2].attributes
    assert llm["openinference.span.kind"] == "LLM"
    assert llm["llm.input_messages.0.message.role"] == "system"
    assert llm["llm.input_messages.1.message.role"] == "user"
    assert llm["llm.input_messages.1.message.content"] == "refund? Refunds take 14 days."
    assert llm["llm.output_messages.0.message.content"] == "14 days"
    assert records[1].attributes["retrieval.documents.1.document.content"] == "Shipping is free."
    assert not any(k.startswith("mlflow.") for r in records for k in r.attributes)
    graph = tg_bridge.reconstruct(records)
    assert [p.value for p in graph.parameters()] == ["Use the context."]
    assert graph.metadata["output"] == "14 days"


def test_chat_messages_attribute_and_kept_attributes():
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"}]
    (record,) = records_of_trace(trace(span(
        "0000000000000001", None, "llm", "LLM", {"prompt": "x"}, {"weird": 1},
        **{"mlflow.chat.messages": chat, "app.user_tier": "gold", "app.ratio": float("nan")})))
    attrs = record.attributes
    assert attrs["llm.input_messages.0.message.content"] == "Be brief."
    assert "llm.input_messages.2.message.role" not in attrs  # the reply is the output
    assert attrs["llm.output_messages.0.message.content"] == "hello"
    assert attrs["app.user_tier"] == "gold" and attrs["app.ratio"] == "nan"


def test_openinference_attributes_win_and_hostile_sizes_are_capped():
    many = [{"role": "user", "content": str(i)} for i in range(MAX_MESSAGES + 50)]
    own = {"llm.input_messages.0.message.role": "system",
           "llm.input_messages.0.message.content": "Kept as exported."}
    r1, r2 = records_of_trace(trace(
        span("0000000000000001", None, "a", "LLM", {"messages": many}, "ok"),
        span("zz", "0000000000000001", "b", "CHAT_MODEL", {"messages": many}, "ok",
             status="ERROR", **own),
    ))
    assert sum(k.endswith(".message.role") for k in r1.attributes if "input" in k) == MAX_MESSAGES
    assert r2.attributes["llm.input_messages.0.message.content"] == "Kept as exported."
    assert "llm.input_messages.1.message.role" not in r2.attributes
    assert len(r2.span_id) == 16 and r2.status == "ERROR"


def test_trace_ids():
    assert trace_hex("tr-" + "0F" * 16) == "0f" * 16
    assert len(trace_hex("some-other-id")) == 32
    assert trace_hex("some-other-id") == trace_hex("some-other-id")
