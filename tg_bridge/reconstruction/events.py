"""OTel GenAI *event-based* messages: span events instead of message attributes.

Older GenAI instrumentations (and some current ones) record the prompt as span events named
``gen_ai.system.message`` / ``gen_ai.user.message`` / ``gen_ai.assistant.message`` /
``gen_ai.tool.message`` (attribute ``content``, sometimes JSON; assistant ``tool_calls``; tool
``id``) and the answer as ``gen_ai.choice`` events (``message`` JSON or ``message.*``
attributes, ``index``, ``finish_reason``). This module turns them into the JSON message shape
of ``gen_ai.input.messages`` (``{"role", "content", "parts"}``) so :mod:`.messages` reads both
the same way. Pure; tolerant: odd events are skipped, nothing raises.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

__all__ = ["event_messages"]

_ROLE_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
_CHOICE = "gen_ai.choice"
_MAX_EVENTS = 2_000  # a pathological span cannot make reconstruction slow
_MAX_DEPTH = 16  # content parts read at most this deep


def event_messages(events: Sequence[object]) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """(input messages, output messages) from a span's events, in time order (choices by index).

    Each message is ``{"role": str, "content": str, "parts": [...]}`` with tool calls as
    ``{"type": "tool_call", "name", "arguments", "id"}`` parts and a tool result as a
    ``{"type": "tool_call_response", "id", "response"}`` part. Empty lists when the span has
    no such events.
    """
    inputs: list[tuple[int, int, dict[str, object]]] = []
    choices: list[tuple[int, int, dict[str, object]]] = []
    for pos, event in enumerate(events[:_MAX_EVENTS] if isinstance(events, Sequence) else ()):
        if not isinstance(event, Mapping):
            continue
        name = event.get("name")
        if not isinstance(name, str):  # a list or dict here cannot even be looked up
            continue
        attrs = event.get("attributes")
        attrs = attrs if isinstance(attrs, Mapping) else {}
        when = event.get("time_ns")
        when = when if isinstance(when, int) and not isinstance(when, bool) else 0
        if name in _ROLE_EVENTS:
            message = _message(_ROLE_EVENTS[name], attrs)
            if message is not None:
                inputs.append((when, pos, message))
        elif name == _CHOICE:
            message = _choice(attrs)
            if message is not None:
                index = attrs.get("index")
                index = index if isinstance(index, int) and not isinstance(index, bool) else pos
                choices.append((index, pos, message))
    inputs.sort(key=lambda item: (item[0], item[1]))
    choices.sort(key=lambda item: (item[0], item[1]))
    return [m for _, _, m in inputs], [m for _, _, m in choices]


def _message(role: str, attrs: Mapping[str, object]) -> dict[str, object] | None:
    own_role = attrs.get("role")
    if isinstance(own_role, str) and own_role.strip():
        role = own_role  # e.g. "developer" on a system event
    content = _content(attrs.get("content"))
    parts = _tool_call_parts(attrs.get("tool_calls"))
    if role == "tool":
        call_id = attrs.get("id") if isinstance(attrs.get("id"), str) else ""
        parts.append({"type": "tool_call_response", "id": call_id, "response": content or ""})
        return {"role": role, "parts": parts}
    if content is None and not parts:
        return None
    return {"role": role, "content": content or "", "parts": parts}


def _choice(attrs: Mapping[str, object]) -> dict[str, object] | None:
    raw = attrs.get("message")
    body: object = _loads(raw) if isinstance(raw, str) else raw
    if isinstance(raw, str) and not isinstance(body, (Mapping, list)):
        body = {"content": raw}  # a bare answer string
    if not isinstance(body, Mapping):  # flattened: message.role / message.content / message.tool_calls
        body = {key[len("message."):]: value for key, value in attrs.items()
                if isinstance(key, str) and key.startswith("message.")}  # fmt: skip
        if not body and "content" in attrs:
            body = {"content": attrs.get("content")}
    if not body:
        return None
    role = body.get("role")
    return _message(role if isinstance(role, str) else "assistant", body)


def _content(raw: object, depth: int = 0) -> str | None:
    """Text of a ``content`` value: plain text, a JSON string, a list of parts or a mapping.
    Parts nested deeper than :data:`_MAX_DEPTH` are not read (no real exporter nests that
    far; hostile content nested hundreds deep must not exhaust the stack)."""
    if depth > _MAX_DEPTH:
        return None
    if isinstance(raw, str):
        parsed = _loads(raw) if raw.strip()[:1] in ("[", "{", '"') else None
        text = _content(parsed, depth + 1) if parsed is not None else None
        return raw if text is None else text  # JSON without text parts is itself the text
    if isinstance(raw, Mapping):
        for key in ("content", "text"):
            if isinstance(raw.get(key), str):
                return str(raw[key])
        return None
    if isinstance(raw, (list, tuple)):
        texts = [_content(part, depth + 1) for part in raw[:_MAX_EVENTS]]
        found = [t for t in texts if t is not None]
        return "\n".join(found) if found else None
    return None


def _tool_call_parts(raw: object) -> list[dict[str, object]]:
    calls = _loads(raw) if isinstance(raw, str) else raw
    parts: list[dict[str, object]] = []
    for call in calls if isinstance(calls, (list, tuple)) else ():
        if not isinstance(call, Mapping):
            continue
        inner = call.get("function")
        fn: Mapping[str, object] = inner if isinstance(inner, Mapping) else call
        args = fn.get("arguments", "")
        parts.append({
            "type": "tool_call",
            "name": str(fn.get("name") or ""),
            "arguments": args if isinstance(args, str) else json.dumps(args, ensure_ascii=False),
            "id": str(call.get("id") or ""),
        })  # fmt: skip
    return parts


def _loads(text: str) -> object:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # hostile JSON nested too deep is not JSON here
        return None
