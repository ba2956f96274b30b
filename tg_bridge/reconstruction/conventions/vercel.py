"""Vercel AI SDK telemetry (``experimental_telemetry``): ``ai.*`` span attributes.

Spans: ``ai.generateText`` / ``ai.streamText`` / ``ai.generateObject`` / ``ai.streamObject``
(the whole call; ``ai.prompt`` JSON ``{"system", "prompt", "messages"}``), their
``.doGenerate`` / ``.doStream`` children (one provider call each; ``ai.prompt.messages`` JSON
list whose ``content`` is a string or parts ``text`` / ``tool-call`` / ``tool-result``), and
``ai.toolCall`` (``ai.toolCall.name|id|args|input|result|output``; args and result are JSON
text, decoded so a string result reads as the text the next call's tool message holds). Answers are in
``ai.response.text`` / ``ai.response.object`` / ``ai.response.toolCalls``. The span kind
comes from ``ai.operationId`` (with or without its ``ai.`` prefix) or the span name. Only fills what is still empty. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..spanview import Message, SpanView, ToolCall, _str
from ._chat import as_json, compact_json

__all__ = ["read"]

_LLM_OPS = ("ai.generateText", "ai.streamText", "ai.generateObject", "ai.streamObject")
_EMBED_OPS = ("ai.embed", "ai.embedMany")


def _operation(attrs: Mapping[str, object], name: str) -> str | None:
    op = _str(attrs.get("ai.operationId"))
    if op:
        return (
            op if op.startswith("ai.") else "ai." + op
        )  # some writers drop the "ai." prefix
    return (
        name
        if name.startswith("ai.") and any(k.startswith("ai.") for k in attrs)
        else None
    )


def _call(item: Mapping[str, object]) -> ToolCall | None:
    name = item.get("toolName")
    if not isinstance(name, str) or not name:
        return None
    args = item.get("input", item.get("args", ""))
    return ToolCall(
        name,
        compact_json(args) if args is not None else "",
        str(item.get("toolCallId") or ""),
    )


def _result_text(part: Mapping[str, object]) -> str:
    value = part.get("output", part.get("result"))
    if isinstance(value, Mapping) and value.get("type") in (
        "json",
        "text",
        "error-text",
        "error-json",
    ):
        value = value.get("value")  # AI SDK 5 wraps tool outputs as {"type", "value"}
    return compact_json(value) if value is not None else ""


def _message(item: object) -> Message | None:
    if not isinstance(item, Mapping) or not isinstance(item.get("role"), str):
        return None
    role, content = item["role"], item.get("content")
    if isinstance(content, str):
        return Message(role, content)
    texts, calls, call_id = [], [], ""
    for part in content if isinstance(content, list) else ():
        if not isinstance(part, Mapping):
            continue
        kind = part.get("type")
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "tool-call":
            call = _call(part)
            if call is not None:
                calls.append(call)
        elif kind == "tool-result":
            call_id = str(part.get("toolCallId") or "")
            texts.append(_result_text(part))
    if not texts and not calls:
        return None
    return Message(role, "\n".join(texts), tuple(calls), call_id)


def _messages(raw: object) -> list[Message]:
    parsed = as_json(raw)
    if not isinstance(parsed, list):
        return []
    return [m for m in (_message(i) for i in parsed[:5_000]) if m is not None]


def _prompt(raw: object) -> list[Message]:
    """``ai.prompt`` of the outer span: ``{"system"?, "prompt"?, "messages"?}``."""
    parsed = as_json(raw)
    if not isinstance(parsed, Mapping):
        return []
    out = []
    if isinstance(parsed.get("system"), str) and parsed["system"].strip():
        out.append(Message("system", parsed["system"]))
    if isinstance(parsed.get("prompt"), str):
        out.append(Message("user", parsed["prompt"]))
    out.extend(_messages(parsed.get("messages")))
    return out


def _answer(attrs: Mapping[str, object]) -> Message | None:
    text = _str(attrs.get("ai.response.text"))
    if text is None:
        obj = attrs.get("ai.response.object")
        text = obj if isinstance(obj, str) else None
    raw_calls = as_json(attrs.get("ai.response.toolCalls"))
    calls = tuple(c for c in (_call(i) for i in raw_calls if isinstance(i, Mapping)) if c is not None) \
        if isinstance(raw_calls, list) else ()  # fmt: skip
    if text is None and not calls:
        return None
    return Message("assistant", text or "", calls)


def read(attrs: Mapping[str, object], events: Sequence[object], view: SpanView) -> None:
    op = _operation(attrs, view.name)
    if op is None:
        return
    if op.startswith(_LLM_OPS):
        if view.kind in ("other", "chain"):
            view.kind = "llm"
        if not view.messages:
            view.messages = _messages(attrs.get("ai.prompt.messages")) or _prompt(
                attrs.get("ai.prompt")
            )
        if not view.output_messages:
            answer = _answer(attrs)
            if answer is not None:
                view.output_messages = [answer]
        view.model = view.model or _str(attrs.get("ai.model.id"))
    elif op.startswith("ai.toolCall"):
        if view.kind in ("other", "chain"):
            view.kind = "tool"
        view.tool_name = view.tool_name or _str(attrs.get("ai.toolCall.name"))
        for key in ("ai.toolCall.args", "ai.toolCall.input"):
            if view.tool_args is None and key in attrs:
                view.tool_args = compact_json(as_json(attrs[key]))
        for key in ("ai.toolCall.result", "ai.toolCall.output"):
            if view.tool_result is None and key in attrs:
                # the SDK records JSON.stringify(result): a string result arrives quoted
                # ('"result1"'), while the next call's tool message holds it bare
                view.tool_result = compact_json(as_json(attrs[key]))
    elif op.startswith(_EMBED_OPS) and view.kind == "other":
        view.kind = "embedding"
