"""MLflow trace spans -> tg_bridge SpanRecords (pure; no server access).

MLflow Tracing stores a span's type in ``mlflow.spanType`` and its inputs and outputs as JSON
(``mlflow.spanInputs`` / ``mlflow.spanOutputs``; the client hands them back decoded). The
records written here carry the OpenInference attributes :func:`tg_bridge.reconstruct` reads:
the span kind, ``input.value`` / ``output.value``, and for chat and LLM spans the messages as
``llm.input_messages`` / ``llm.output_messages`` (OpenAI chat format, LangChain message
dicts, MLflow's ``mlflow.chat.messages``); retriever outputs become ``retrieval.documents``.
Attributes MLflow did not write (e.g. an OpenInference app exporting to MLflow) are kept.
Every value came from the traced app: it is data, never interpreted beyond reading text.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tg_bridge.exceptions import TraceFormatError
from tg_bridge.spans import SpanRecord
from tg_bridge.traces.checks import timestamp_ns

__all__ = ["KINDS", "records_of_trace", "trace_hex"]

#: MLflow span type -> OpenInference span kind
KINDS: Mapping[str, str] = {
    "LLM": "LLM", "CHAT_MODEL": "LLM", "RETRIEVER": "RETRIEVER", "TOOL": "TOOL",
    "AGENT": "AGENT", "EMBEDDING": "EMBEDDING", "RERANKER": "RERANKER",
}
_MLFLOW_PREFIX = "mlflow."
_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEX16 = re.compile(r"^[0-9a-f]{16}$")
#: caps: one hostile span must not make a record unbounded
MAX_MESSAGES = 500
MAX_DOCUMENTS = 200


def trace_hex(mlflow_trace_id: str) -> str:
    """The 32-hex OTel trace id inside an MLflow trace id (``tr-<hex>``), lower case; for an
    id without one, a stable 32-hex digest of it."""
    text = str(mlflow_trace_id).lower()
    found = _HEX32.search(text)
    if found:
        return found.group(0)
    import hashlib

    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:32]


def records_of_trace(trace: Any) -> list[SpanRecord]:
    """SpanRecords of one ``mlflow.entities.Trace``, in the trace's span order.

    The root records the MLflow trace id under the resource attribute ``mlflow.trace_id``.
    Raises TraceFormatError (naming the trace and span) for a timestamp outside
    0..2**64-1 ns: MLflow hands over any integer it was sent (negative, 30 digits), which
    the other readers refuse and no OTLP writer can encode."""
    mlflow_id = str(trace.info.trace_id)
    trace_id = trace_hex(mlflow_id)
    out = []
    for span in trace.data.spans:
        error = _error_at(mlflow_id, span.span_id)
        out.append(SpanRecord(
            trace_id=trace_id,
            span_id=_span_hex(span.span_id),
            parent_id=_span_hex(span.parent_id) if span.parent_id else None,
            name=str(span.name or "span"),
            start_ns=timestamp_ns(span.start_time_ns, error),
            end_ns=timestamp_ns(span.end_time_ns, error),
            attributes=_attributes(span),
            status=_status(span),
            events=tuple(_event(e, error) for e in (span.events or ())),
            resource={"mlflow.trace_id": mlflow_id},
        ))
    return out


def _error_at(mlflow_id: str, span_id: Any) -> Callable[[str], TraceFormatError]:
    """The error factory for one span's checks (the ids are cut: they are untrusted too)."""
    where = f"MLflow trace {mlflow_id[:80]}, span {str(span_id)[:40]}"
    return lambda message: TraceFormatError(message, where=where)


def _span_hex(value: Any) -> str:
    text = str(value).lower()
    if _HEX16.match(text):
        return text
    return trace_hex(text)[:16]


def _status(span: Any) -> str:
    code = getattr(getattr(span, "status", None), "status_code", None)
    name = str(getattr(code, "value", code) or "UNSET").upper()
    return name if name in ("OK", "ERROR") else "UNSET"


def _event(event: Any, error: Callable[[str], TraceFormatError]) -> dict[str, Any]:
    attrs = getattr(event, "attributes", None) or {}
    return {"name": str(getattr(event, "name", "")),
            "time_ns": timestamp_ns(getattr(event, "timestamp", None), error),
            "attributes": {str(k): _scalar(v) for k, v in attrs.items()}}


def _attributes(span: Any) -> dict[str, Any]:
    raw = dict(span.attributes or {})
    out: dict[str, Any] = {str(k): _scalar(v) for k, v in raw.items()
                           if not str(k).startswith(_MLFLOW_PREFIX)}
    span_type = str(raw.get("mlflow.spanType") or getattr(span, "span_type", "") or "").upper()
    out.setdefault("openinference.span.kind", KINDS.get(span_type, "CHAIN"))
    inputs, outputs = raw.get("mlflow.spanInputs"), raw.get("mlflow.spanOutputs")
    for key, value in (("input", inputs), ("output", outputs)):
        if value is not None and f"{key}.value" not in out:
            is_text = isinstance(value, str)
            out[f"{key}.value"] = value if is_text else _json(value)
            out[f"{key}.mime_type"] = "text/plain" if is_text else "application/json"
    kind = out["openinference.span.kind"]
    if kind == "LLM" and not any(k.startswith("llm.input_messages.") for k in out):
        chat = raw.get("mlflow.chat.messages")
        messages = _messages(chat) or _messages(inputs)
        answer = _answer(outputs)
        if chat and not answer and messages and messages[-1][0] == "assistant":
            answer = messages.pop()[1]  # mlflow.chat.messages ends with the model's reply
        for i, (role, content) in enumerate(messages[:MAX_MESSAGES]):
            out[f"llm.input_messages.{i}.message.role"] = role
            out[f"llm.input_messages.{i}.message.content"] = content
        if answer is not None:
            out["llm.output_messages.0.message.role"] = "assistant"
            out["llm.output_messages.0.message.content"] = answer
    if kind == "RETRIEVER" and not any(k.startswith("retrieval.documents.") for k in out):
        for i, text in enumerate(_documents(outputs)[:MAX_DOCUMENTS]):
            out[f"retrieval.documents.{i}.document.content"] = text
    return out


def _scalar(value: Any) -> Any:
    """An OTel attribute value: str/bool/int/finite float, tuples of those, else JSON."""
    if isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, bool, int)) for v in value):
        return tuple(value)
    return _json(value)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _text(content: Any) -> str | None:
    """Message content as text: a string, or the text parts of a parts list."""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence) and not isinstance(content, (bytes, bytearray)):
        parts = [p.get("text") if isinstance(p, Mapping) else p for p in content]
        texts = [p for p in parts if isinstance(p, str)]
        return "".join(texts) if texts else None
    return None


_ROLES = {"human": "user", "ai": "assistant", "HumanMessage": "user", "AIMessage": "assistant",
          "SystemMessage": "system", "ToolMessage": "tool"}


def _message(item: Any) -> tuple[str, str] | None:
    if not isinstance(item, Mapping):
        return None
    role = item.get("role") or item.get("type")  # OpenAI "role"; LangChain message "type"
    content = _text(item.get("content"))
    if not isinstance(role, str) or content is None:
        return None
    return _ROLES.get(role, role), content


def _messages(value: Any) -> list[tuple[str, str]]:
    if isinstance(value, Mapping):
        value = value.get("messages", value.get("input"))
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
        value = value[0]  # LangChain chat-model inputs: one list per prompt
    if not isinstance(value, list):
        return []
    found = [_message(m) for m in value]
    return [m for m in found if m is not None] if all(m is not None for m in found) else []


def _answer(value: Any) -> str | None:
    """The model's reply in a span's outputs: a string, an OpenAI chat completion, a message,
    or LangChain ``generations``."""
    if isinstance(value, str):
        return value
    if not isinstance(value, Mapping):
        return None
    choices = value.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
        first = choices[0]
        found = _message(first.get("message")) if first.get("message") else None
        return found[1] if found else _text(first.get("text"))
    generations = value.get("generations")
    if isinstance(generations, list) and generations:
        first = generations[0][0] if isinstance(generations[0], list) and generations[0] else generations[0]
        if isinstance(first, Mapping):
            return _text(first.get("text")) or (_message(first.get("message")) or (None, None))[1]
    found = _message(value)
    return found[1] if found else None


def _documents(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    texts = []
    for doc in value:
        if isinstance(doc, str):
            texts.append(doc)
        elif isinstance(doc, Mapping):
            text = doc.get("page_content", doc.get("content", doc.get("text")))
            if isinstance(text, str):
                texts.append(text)
    return texts
