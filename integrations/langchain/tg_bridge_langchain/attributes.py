"""Turning LangChain values (messages, documents, prompt values, generations) into span
attributes with OpenInference names (:mod:`tg_bridge.semconv`).

Pure functions, no LangChain import at module level beyond message/document types; every
function tolerates odd values (falls back to ``str``), because callbacks must never raise.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.documents import Document
from langchain_core.messages import BaseMessage
from langchain_core.prompt_values import PromptValue

from tg_bridge import semconv as sc

__all__ = [
    "document_attributes",
    "message_attributes",
    "message_content",
    "role_of",
    "to_json",
    "value_attributes",
]

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}
_JSON = "application/json"
_TEXT = "text/plain"


def role_of(message: BaseMessage) -> str:
    """OpenInference role of a message (user/assistant/system/tool, or a chat role)."""
    kind = message.type
    found = _ROLES.get(kind)
    if found:
        return found
    if kind in ("AIMessageChunk",):
        return "assistant"
    role = getattr(message, "role", None)
    return str(role) if role else str(kind).replace("Chunk", "").lower()


def message_content(message: BaseMessage) -> str:
    """The text of a message; multimodal content keeps its text parts joined."""
    content = message.content
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
            parts.append(part["text"])
    return "\n".join(parts) if parts else to_json(content)


def _plain(value: object) -> Any:
    """json.dumps ``default``: LangChain objects as plain data."""
    if isinstance(value, BaseMessage):
        return {"role": role_of(value), "content": message_content(value)}
    if isinstance(value, Document):
        return {"page_content": value.page_content, "metadata": value.metadata}
    if isinstance(value, PromptValue):
        return [_plain(m) for m in value.to_messages()]
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return dump()
        except Exception:
            return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def to_json(value: object) -> str:
    """Compact JSON of any value (LangChain objects converted, the rest via str)."""
    try:
        return json.dumps(value, default=_plain, ensure_ascii=False)
    except (TypeError, ValueError):
        return json.dumps(str(value), ensure_ascii=False)


def value_attributes(value: object, value_key: str, mime_key: str) -> dict[str, Any]:
    """``input.value``/``output.value`` with their mime type; a lone string stays text."""
    if isinstance(value, Mapping) and len(value) == 1:
        # LangChain wraps scalar inputs/outputs as {"input": x} / {"output": x}
        only = next(iter(value.values()))
        if isinstance(only, str):
            return {value_key: only, mime_key: _TEXT}
    if isinstance(value, str):
        return {value_key: value, mime_key: _TEXT}
    if isinstance(value, BaseMessage):
        return {value_key: message_content(value), mime_key: _TEXT}
    return {value_key: to_json(value), mime_key: _JSON}


def message_attributes(prefix: str, messages: Sequence[BaseMessage]) -> dict[str, Any]:
    """``<prefix>.{i}.message.role|content`` (+ tool calls and tool_call_id) per message."""
    attrs: dict[str, Any] = {}
    for i, message in enumerate(messages):
        base = f"{prefix}.{i}.message."
        attrs[base + "role"] = role_of(message)
        attrs[base + "content"] = message_content(message)
        name = getattr(message, "name", None)
        if name:
            attrs[base + "name"] = str(name)
        tool_call_id = getattr(message, "tool_call_id", None)
        if tool_call_id:
            attrs[base + "tool_call_id"] = str(tool_call_id)
        for j, call in enumerate(getattr(message, "tool_calls", None) or ()):
            call_base = f"{base}tool_calls.{j}.tool_call."
            if call.get("id"):
                attrs[call_base + "id"] = str(call["id"])
            attrs[call_base + "function.name"] = str(call.get("name", ""))
            attrs[call_base + "function.arguments"] = to_json(call.get("args", {}))
    return attrs


def document_attributes(documents: Sequence[Any]) -> dict[str, Any]:
    """``retrieval.documents.{i}.document.content|id|score|metadata``."""
    attrs: dict[str, Any] = {}
    for i, doc in enumerate(documents):
        base = f"{sc.RETRIEVAL_DOCUMENTS}.{i}.document."
        content = getattr(doc, "page_content", None)
        attrs[base + "content"] = content if isinstance(content, str) else str(doc)
        doc_id = getattr(doc, "id", None)
        if doc_id:
            attrs[base + "id"] = str(doc_id)
        metadata = getattr(doc, "metadata", None)
        if isinstance(metadata, Mapping) and metadata:
            score = metadata.get("score", metadata.get("relevance_score"))
            if isinstance(score, (int, float)) and not isinstance(score, bool):
                attrs[base + "score"] = float(score)
            attrs[base + "metadata"] = to_json(metadata)
    return attrs
