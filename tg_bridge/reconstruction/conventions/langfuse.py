"""Langfuse's OTel attributes (``langfuse.observation.*``, ``langfuse.trace.*``).

``langfuse.observation.type`` (generation, span, tool, agent, chain, retriever, embedding,
event, ...) gives the kind; ``langfuse.observation.input`` / ``.output`` hold the values,
always as strings: JSON (a message list, ``{"messages": [...]}``, an assistant message, a
chat-completion response, a JSON-encoded string) or plain text.
``langfuse.observation.model.name`` is the model; ``langfuse.trace.input|output`` stand in
for a root without its own values; a retriever's output list gives its documents. Only fills what is still empty. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ...traces.checks import finite_number
from ..spanview import Document, Message, SpanKind, SpanView, _str
from ._chat import as_json, chat_message, chat_messages, compact_json
from .openai_json import response_message

__all__ = ["read"]

_KINDS: dict[str, SpanKind] = {
    "generation": "llm", "span": "chain", "chain": "chain", "agent": "agent", "tool": "tool",
    "retriever": "retriever", "embedding": "embedding",
}  # fmt: skip
PREFIX = "langfuse.observation."


def _text(raw: object) -> str | None:
    """A stored value as text: JSON-encoded strings unwrapped, structures kept as JSON."""
    if raw is None:
        return None
    parsed = as_json(raw)
    if isinstance(parsed, str):
        return parsed
    return raw if isinstance(raw, str) else compact_json(raw)


def _output(raw: object) -> Message | None:
    parsed = as_json(raw)
    if isinstance(parsed, list) and parsed:
        parsed = parsed[-1]
    if isinstance(parsed, Mapping):
        found = response_message(parsed)
        if found is not None:
            return found
        if "role" in parsed or "content" in parsed:
            return chat_message(parsed, "assistant")
        return None
    return chat_message(parsed, "assistant") if isinstance(parsed, str) else None


def read(attrs: Mapping[str, object], events: Sequence[object], view: SpanView) -> None:
    obs_type = _str(attrs.get(PREFIX + "type"))
    raw_in, raw_out = attrs.get(PREFIX + "input"), attrs.get(PREFIX + "output")
    if obs_type is None and raw_in is None and raw_out is None:
        return
    if view.kind == "other" and obs_type:
        view.kind = _KINDS.get(obs_type.lower(), "other")
    if view.input_text is None:
        view.input_text = (
            _text(raw_in)
            if raw_in is not None
            else _text(attrs.get("langfuse.trace.input"))
        )
        parsed = as_json(view.input_text)
        view.input_obj = parsed if isinstance(parsed, (Mapping, list)) else None
    if view.output_text is None:
        view.output_text = (
            _text(raw_out)
            if raw_out is not None
            else _text(attrs.get("langfuse.trace.output"))
        )
    view.model = view.model or _str(attrs.get(PREFIX + "model.name"))
    if view.kind == "llm":
        if not view.messages and raw_in is not None:
            view.messages = chat_messages(raw_in)
            if not view.messages and view.input_text:
                view.messages, view.completion = (
                    [Message("user", view.input_text)],
                    True,
                )
        if not view.output_messages and raw_out is not None:
            answer = _output(raw_out)
            if answer is not None:
                view.output_messages = [answer]
    elif view.kind == "tool":
        view.tool_args = view.tool_args or view.input_text
        view.tool_result = view.tool_result or view.output_text
    elif view.kind == "retriever" and not view.documents:
        view.documents = _documents(as_json(raw_out))


def _documents(parsed: object) -> list[Document]:
    """A retriever's output: a list of texts or of ``{"page_content" | "content" | "text",
    "id"?, "score"?}`` objects (LangChain Documents serialized by the Langfuse SDK)."""
    docs = []
    for item in parsed[:1_000] if isinstance(parsed, list) else ():
        if isinstance(item, str):
            docs.append(Document(item))
        elif isinstance(item, Mapping):
            text = next(
                (
                    item[k]
                    for k in ("page_content", "content", "text")
                    if isinstance(item.get(k), str)
                ),
                None,
            )
            if text is not None:
                docs.append(Document(text, str(item.get("id") or ""), finite_number(item.get("score"))))
    return docs
