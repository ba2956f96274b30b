"""An LLM span whose answer is a whole OpenAI Responses API object in a ``response`` attribute.

Logfire's OpenAI Agents SDK integration writes each model call as a ``Responses API with ...``
span: ``gen_ai.operation.name = chat``, the conversation as an ``events`` JSON attribute (read
by :mod:`.pydantic_ai`, which also takes the answer from its end) and the result as
``response``, the Responses API object (``{"object": "response", "output": [{"type": "message",
"content": [{"type": "output_text", "text"}]}, {"type": "function_call", ...}]}``).

For an LLM span that still has no output and a ``response`` attribute that IS a Responses API
object (``"object": "response"``; the attribute name alone is too common to trust), the answer
is read from ``response``. Only fills what is still empty. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..spanview import SpanView
from ._chat import as_json
from .openai_json import response_message

__all__ = ["read"]

RESPONSE = "response"


def read(attrs: Mapping[str, object], events: Sequence[object], view: SpanView) -> None:
    if view.kind != "llm" or view.output_messages or RESPONSE not in attrs:
        return
    obj = as_json(attrs[RESPONSE])
    if not isinstance(obj, Mapping) or obj.get("object") != "response":
        return
    answer = response_message(obj)
    if answer is None:
        return
    view.output_messages = [answer]
