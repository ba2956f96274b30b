"""The deprecated OTel GenAI content attributes: ``gen_ai.prompt`` and ``gen_ai.completion``
as single JSON strings (a list of chat messages; the completion may also be plain text), on
the span or on ``gen_ai.content.prompt`` / ``gen_ai.content.completion`` span events (GenAI
semconv 1.26-1.27; OpenLIT writes the prompt as ``"role: text"`` lines). OpenLLMetry's indexed ``gen_ai.prompt.{i}.*`` form is read by
:mod:`..messages`. Only fills what is still empty. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..spanview import Message, SpanView
from ._chat import as_json, chat_message, chat_messages

__all__ = ["read"]

PROMPT = "gen_ai.prompt"
COMPLETION = "gen_ai.completion"
_EVENTS = {"gen_ai.content.prompt": PROMPT, "gen_ai.content.completion": COMPLETION}


def _from_events(events: Sequence[object]) -> dict[str, object]:
    found: dict[str, object] = {}
    for event in events[:2_000] if isinstance(events, Sequence) else ():
        if not isinstance(event, Mapping):
            continue
        name = event.get("name")
        if isinstance(name, str) and name in _EVENTS:  # an unhashable name cannot be looked up
            attrs = event.get("attributes")
            key = _EVENTS[name]
            if isinstance(attrs, Mapping) and key in attrs:
                found.setdefault(key, attrs[key])
    return found


_ROLES = ("system", "user", "assistant", "tool", "developer")


def _role_lines(raw: object) -> list[Message]:
    """OpenLIT's plain-text prompt: ``"role: text"`` turns, one per line (continuation lines
    belong to the turn above). Empty unless the first line names a role."""
    if not isinstance(raw, str):
        return []
    out: list[tuple[str, list[str]]] = []
    for line in raw.split("\n"):
        head, sep, rest = line.partition(": ")
        if sep and head in _ROLES:
            out.append((head, [rest]))
        elif out:
            out[-1][1].append(line)
        else:
            return []
    return [Message(role, "\n".join(lines)) for role, lines in out]


def _completion(raw: object) -> list[Message]:
    parsed = as_json(raw)
    if isinstance(parsed, list):
        return [
            m for m in (chat_message(i, "assistant") for i in parsed) if m is not None
        ]
    message = chat_message(parsed, "assistant")
    return [message] if message is not None else []


def read(attrs: Mapping[str, object], events: Sequence[object], view: SpanView) -> None:
    values: dict[str, object] = {
        k: attrs[k] for k in (PROMPT, COMPLETION) if isinstance(attrs.get(k), str)
    }
    if len(values) < 2 and events:
        for key, value in _from_events(events).items():
            values.setdefault(key, value)
    if not values:
        return
    if not view.messages and PROMPT in values:
        prompt = values[PROMPT]
        view.messages = chat_messages(prompt) or _role_lines(prompt)
        if not view.messages and isinstance(prompt, str) and prompt.strip():
            view.messages, view.completion = [Message("user", prompt)], True
    if not view.output_messages and COMPLETION in values:
        view.output_messages = _completion(values[COMPLETION])
    if view.kind == "other" and view.messages:
        view.kind = "llm"
