"""Shared reading of chat-message JSON as third-party exporters write it.

Handles the OpenAI chat shape (``{"role", "content": str | [{"type": "text", "text"}],
"tool_calls": [{"id", "function": {"name", "arguments"}}], "tool_call_id"}``), which Langfuse,
agno (OpenInference), the deprecated GenAI ``gen_ai.prompt`` string and chat-completion
responses all use, plus ``parts`` lists of the GenAI shape. Everything here is tolerant: a
value of the wrong shape yields nothing, never an exception. Pure.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from ..spanview import Message, ToolCall, _json

__all__ = ["as_json", "chat_message", "chat_messages", "compact_json", "text_of"]

_MAX_MESSAGES = 5_000  # a hostile attribute cannot make one span slow to read


def as_json(value: object) -> object:
    """A JSON string parsed (twice when an exporter stored JSON inside a JSON string, as
    Langfuse does); a string that is not JSON, and any other value, as it is."""
    if not isinstance(value, str):
        return value
    parsed = _json(value)
    if parsed is None:
        return value
    if isinstance(parsed, str):
        again = _json(parsed)
        return again if again is not None else parsed
    return parsed


def compact_json(value: object) -> str:
    """``value`` as text; structures as compact JSON (how JavaScript's JSON.stringify writes
    them, so a tool result quoted in a later message matches the tool span's result)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def text_of(content: object) -> str | None:
    """The text of a message ``content``: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, Mapping):
        for key in ("text", "content"):
            if isinstance(content.get(key), str):
                return str(content[key])
        return None
    if isinstance(content, list):
        texts = []
        for part in content[:_MAX_MESSAGES]:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, Mapping) and part.get("type") in (
                None,
                "text",
                "input_text",
                "output_text",
            ):
                text = text_of(part)
                if text is not None:
                    texts.append(text)
        return "\n".join(texts) if texts else None
    return None


def _tool_calls(raw: object) -> tuple[ToolCall, ...]:
    calls = []
    for call in raw[:_MAX_MESSAGES] if isinstance(raw, list) else ():
        if not isinstance(call, Mapping):
            continue
        fn: Mapping[str, object] = (
            call["function"] if isinstance(call.get("function"), Mapping) else call
        )
        name = fn.get("name")
        if not isinstance(name, str) or not name:
            continue
        args = fn.get("arguments", fn.get("args", ""))
        calls.append(
            ToolCall(
                name,
                compact_json(args) if args is not None else "",
                str(call.get("id") or ""),
            )
        )
    return tuple(calls)


def chat_message(item: object, default_role: str = "user") -> Message | None:
    """One OpenAI-shaped message (or a GenAI ``parts`` message), None if it has no text."""
    if isinstance(item, str):
        return Message(default_role, item) if item.strip() else None
    if not isinstance(item, Mapping):
        return None
    role = (
        item.get("role")
        if isinstance(item.get("role"), str) and item.get("role")
        else default_role
    )
    text = text_of(item.get("content"))
    if text is None and isinstance(item.get("parts"), list):
        text = text_of(
            [
                p
                for p in item["parts"]
                if isinstance(p, Mapping) and p.get("type") == "text"
            ]
        )
    calls = _tool_calls(item.get("tool_calls"))
    if text is None and not calls:
        return None
    call_id = item.get("tool_call_id")
    return Message(
        str(role), text or "", calls, call_id if isinstance(call_id, str) else ""
    )


def chat_messages(raw: object) -> list[Message]:
    """A list of chat messages (or ``{"messages": [...]}``) read leniently; odd items skipped."""
    parsed = as_json(raw)
    if isinstance(parsed, Mapping) and isinstance(parsed.get("messages"), list):
        parsed = parsed["messages"]
    if not isinstance(parsed, list):
        return []
    out = []
    for item in parsed[:_MAX_MESSAGES]:
        message = chat_message(item)
        if message is not None:
            out.append(message)
    return out
