"""A raw OpenAI response JSON stored as an LLM span's ``output.value`` (agno through
OpenInference, hand-rolled exporters): the answer is unwrapped so the output connects to the
LLM call.

Understood: a list of reply messages (``[{"role": "assistant", "content"}]``, also under
``"messages"``), chat completions (``{"object": "chat.completion", "choices": [{"message": {...}}]}``,
also without ``object``) and Responses API objects (``{"output": [{"type": "message",
"content": [{"type": "output_text", "text"}]}, {"type": "function_call", ...}]}``). Only spans
that are LLM calls without output messages are touched. Pure; odd JSON is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..spanview import Message, SpanView, ToolCall
from ._chat import as_json, chat_message, compact_json, text_of

__all__ = ["read", "response_message"]


def response_message(raw: object) -> Message | None:
    """The assistant message of a chat-completion or Responses API JSON, else None."""
    obj = as_json(raw)
    if isinstance(obj, Mapping) and isinstance(obj.get("messages"), list):
        obj = obj[
            "messages"
        ]  # {"messages": [...]}: the reply list some instrumentations write
    if isinstance(obj, list):  # a list of reply messages: the last assistant one
        replies = [
            m
            for m in (
                chat_message(i, "assistant") for i in obj if isinstance(i, Mapping)
            )
            if m
        ]
        answers = [m for m in replies if m.role in ("assistant", "ai", "model")]
        return answers[-1] if answers else None
    if not isinstance(obj, Mapping):
        return None
    choices = obj.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
        first = choices[0]
        if isinstance(first.get("message"), Mapping):
            return chat_message(first["message"], "assistant")
        if isinstance(first.get("text"), str):  # legacy completions
            return Message("assistant", first["text"])
        return None
    output = obj.get("output")
    if isinstance(output, list) and obj.get("object") in (None, "response"):
        texts: list[str] = []
        calls: list[ToolCall] = []
        for item in output:
            if not isinstance(item, Mapping):
                continue
            if item.get("type") == "message":
                text = text_of(item.get("content"))
                if text:
                    texts.append(text)
            elif item.get("type") == "function_call" and isinstance(
                item.get("name"), str
            ):
                calls.append(ToolCall(item["name"], compact_json(item.get("arguments", "")),
                                      str(item.get("call_id") or item.get("id") or "")))  # fmt: skip
        if texts or calls:
            return Message("assistant", "\n".join(texts), tuple(calls))
    return None


def read(attrs: Mapping[str, object], events: Sequence[object], view: SpanView) -> None:
    if view.kind != "llm" or view.output_messages:
        return
    message = response_message(view.output_text)
    if message is not None:
        view.output_messages = [message]
