"""Logfire's LLM spans read from its own ``request_data`` / ``response_data`` JSON attributes.

``logfire.instrument_openai`` / ``instrument_anthropic`` record the request body as
``request_data`` (``{"messages", "system", "model", "prompt", ...}``) and the answer as
``response_data``: ``{"message": {"role", "content", "tool_calls"?}, "usage"}``, or, on the
separate ``streaming response from ... took ...s`` log span a stream ends with,
``{"combined_chunk_content", "chunk_count"}``. Older Logfire versions wrote nothing else (no
``gen_ai.*``): such a span is known as an LLM call only by ``logfire.tags`` holding ``"LLM"``.
Newer ones add GenAI attributes, read first by :mod:`..messages`; this reader then only fills
what is still empty (typically a stream's answer). An empty combined stream is no answer.
Pure; odd values are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..spanview import Message, SpanView
from ._chat import as_json, chat_message, chat_messages, text_of

__all__ = ["read"]

REQUEST = "request_data"
RESPONSE = "response_data"
TAGS = "logfire.tags"


def _tagged_llm(raw: object) -> bool:
    tags = as_json(raw)
    return isinstance(tags, (list, tuple)) and "LLM" in tags


def _prompt(request: Mapping[str, object], view: SpanView) -> list[Message]:
    out: list[Message] = []
    system = text_of(request.get("system"))  # Anthropic: a string or a list of text blocks
    if system and system.strip():
        out.append(Message("system", system))
    out.extend(chat_messages(request.get("messages")))
    if not out and isinstance(request.get("prompt"), str):  # the completions API
        view.completion = True
        out.append(Message("user", str(request["prompt"])))
    return out


def _answer(response: Mapping[str, object]) -> Message | None:
    combined = response.get("combined_chunk_content")
    if isinstance(combined, str):
        return Message("assistant", combined) if combined.strip() else None
    message = response.get("message")
    return chat_message(message, "assistant") if isinstance(message, Mapping) else None


def read(attrs: Mapping[str, object], events: Sequence[object], view: SpanView) -> None:
    if REQUEST not in attrs and RESPONSE not in attrs:
        return
    if view.kind == "other" and _tagged_llm(attrs.get(TAGS)):
        view.kind = "llm"
    if view.kind != "llm":
        return
    request = as_json(attrs.get(REQUEST))
    if not view.messages and isinstance(request, Mapping):
        view.messages = _prompt(request, view)
    response = as_json(attrs.get(RESPONSE))
    if not view.output_messages and isinstance(response, Mapping):
        answer = _answer(response)
        if answer is not None:
            view.output_messages = [answer]
