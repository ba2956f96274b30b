"""Current OTel GenAI semantic conventions beyond the message attributes of :mod:`..messages`.

- Content recorded on a ``gen_ai.client.inference.operation.details`` span event (attributes
  ``gen_ai.input.messages`` / ``gen_ai.output.messages`` / ``gen_ai.system_instructions``,
  JSON strings or structured values) instead of on the span.
- ``gen_ai.tool.definitions``: the tools offered to the model (``[{"type": "function",
  "name", "description", "parameters"}]``), kept on the view.
- A span with ``gen_ai.tool.name`` but no ``gen_ai.operation.name`` (Pydantic AI, older
  instrumentations) is a tool call.
Only fills what is still empty. Pure.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

# a module reference, not names: messages imports this package
from .. import messages as _messages
from ..spanview import SpanView, _str
from ._chat import as_json

__all__ = ["read"]

DETAILS_EVENT = "gen_ai.client.inference.operation.details"
TOOL_DEFINITIONS = "gen_ai.tool.definitions"


def _listish(value: object) -> object:
    """Structured attribute values arrive as tuples from some readers; JSON as strings."""
    value = as_json(value)
    return list(value) if isinstance(value, tuple) else value


def _details(events: Sequence[object]) -> Mapping[str, object]:
    for event in events[:2_000] if isinstance(events, Sequence) else ():
        if isinstance(event, Mapping) and event.get("name") == DETAILS_EVENT:
            attrs = event.get("attributes")
            if isinstance(attrs, Mapping):
                return attrs
    return {}


def _definitions(raw: object) -> list[dict[str, str]]:
    out = []
    items = _listish(raw)
    for raw_item in items if isinstance(items, list) else ():
        item = as_json(raw_item)
        if not isinstance(item, Mapping):
            continue
        fn: Mapping[str, object] = (
            item["function"] if isinstance(item.get("function"), Mapping) else item
        )
        name = fn.get("name")
        if isinstance(name, str) and name:
            desc = fn.get("description")
            out.append(
                {
                    "name": name,
                    "description": desc if isinstance(desc, str) else "",
                }
            )
    return out


def read(attrs: Mapping[str, object], events: Sequence[object], view: SpanView) -> None:
    if not events and TOOL_DEFINITIONS not in attrs and view.kind != "other":
        return  # the common case: nothing of this convention on the span
    details = _details(events) if events else {}
    if details:
        if view.kind == "other":
            view.kind = "llm"
        if not view.messages and "gen_ai.input.messages" in details:
            view.messages = _messages._genai_messages(
                _listish(details["gen_ai.input.messages"])
            )
        if not view.output_messages and "gen_ai.output.messages" in details:
            view.output_messages = _messages._genai_messages(
                _listish(details["gen_ai.output.messages"])
            )
        raw_system = details.get("gen_ai.system_instructions")
        _messages.add_instructions(view.messages, _messages._system_instructions(
            raw_system if isinstance(raw_system, str) else _json_text(raw_system)
        ))  # fmt: skip
    if not view.tool_definitions:
        view.tool_definitions = _definitions(
            attrs.get(TOOL_DEFINITIONS) or details.get(TOOL_DEFINITIONS)
        )
    if (
        view.kind == "other"
        and _str(attrs.get("gen_ai.tool.name"))
        and not attrs.get("gen_ai.operation.name")
    ):
        view.kind = "tool"


def _json_text(value: object) -> str | None:
    value = _listish(value)
    return (
        json.dumps(value, ensure_ascii=False)
        if isinstance(value, (list, Mapping))
        else None
    )
