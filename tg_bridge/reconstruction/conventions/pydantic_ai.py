"""Pydantic AI (and Logfire) instrumentation.

The agent run span carries the whole conversation as ``pydantic_ai.all_messages`` (GenAI
``parts`` messages) and the answer as ``final_result``; it is read as an agent step whose
input is the run's first user text and whose output is the final result. Model request spans
use the GenAI attributes read by :mod:`..messages`, or, with Logfire's default
``event_mode="attributes"``, an ``events`` attribute: a JSON list of GenAI events
(``{"event.name": "gen_ai.user.message", "content", ...}``), converted here. Logfire's OpenAI
Responses API spans (direct, streamed, or through the OpenAI Agents SDK) put no
``gen_ai.choice`` there: the answer is the trailing run of assistant messages. Tool spans
(``running tool``) have ``gen_ai.tool.name`` with ``tool_arguments`` / ``tool_response``.
Only fills what is still empty. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

# a module reference, not names: messages imports this package
from .. import messages as _messages
from ..events import event_messages
from ..spanview import Message, SpanView, _str
from ._chat import as_json, compact_json

__all__ = ["read"]

ALL_MESSAGES = "pydantic_ai.all_messages"


def _genai(raw: object) -> list[Message]:
    return _messages._genai_messages(raw)


def _event_list(raw: object) -> list[dict[str, object]]:
    """Logfire's ``events`` attribute as span-event-like dicts for :func:`event_messages`."""
    parsed = as_json(raw)
    out: list[dict[str, object]] = []
    for item in parsed[:2_000] if isinstance(parsed, list) else ():
        if isinstance(item, Mapping) and isinstance(item.get("event.name"), str):
            attrs = {k: v for k, v in item.items() if k != "event.name"}
            out.append({"name": item["event.name"], "attributes": attrs})
    return out


def _answer_at_end(
    ev_in: list[dict[str, object]],
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Logfire's Responses API spans have no ``gen_ai.choice``: the answer's items are appended
    to ``events`` as assistant messages. The trailing assistant messages are the answer when
    something else precedes them (a list of only assistant messages is left as input)."""
    k = 0
    while k < len(ev_in) and ev_in[len(ev_in) - 1 - k].get("role") == "assistant":
        k += 1
    return (ev_in[:-k], ev_in[-k:]) if 0 < k < len(ev_in) else (ev_in, [])


def read(attrs: Mapping[str, object], events: Sequence[object], view: SpanView) -> None:
    if "events" in attrs and not view.messages:
        ev_in, ev_out = event_messages(_event_list(attrs["events"]))
        if not ev_out and not view.output_messages:
            ev_in, ev_out = _answer_at_end(ev_in)
        if ev_in:
            view.messages = _genai(ev_in)
            if view.kind == "other":
                view.kind = "llm"
        if ev_out and not view.output_messages:
            view.output_messages = _genai(ev_out)
    if ALL_MESSAGES in attrs:
        conversation = _genai(as_json(attrs[ALL_MESSAGES]))
        if view.kind in ("other", "chain"):
            view.kind = "agent"
        if view.input_text is None:
            view.input_text = next(
                (m.content for m in conversation if m.role == "user" and m.content),
                None,
            )
        if view.output_text is None:
            final = attrs.get("final_result")
            if final is not None:
                view.output_text = compact_json(final)
            else:
                answers = [
                    m.content
                    for m in conversation
                    if m.role == "assistant" and m.content
                ]
                view.output_text = answers[-1] if answers else None
    if view.kind == "tool" or _str(attrs.get("gen_ai.tool.name")):
        if view.tool_args is None and "tool_arguments" in attrs:
            view.tool_args = compact_json(attrs["tool_arguments"])
        if view.tool_result is None and "tool_response" in attrs:
            view.tool_result = compact_json(attrs["tool_response"])
