"""The value types reconstruction reads one span into: :class:`SpanView` and its parts
(:class:`Message`, :class:`ToolCall`, :class:`Document`, :class:`TemplateInfo`), plus the
tolerant coercions (``_str``, ``_json``) they and the convention readers in :mod:`.messages`
share. Plain data: the only format knowledge here is unwrapping a LangChain ``generations``
output for :attr:`SpanView.output_value`. Nothing here raises on odd input. Pure.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Literal, TypeGuard, get_args

__all__ = ["Document", "Message", "SpanKind", "SpanView", "TemplateInfo", "ToolCall", "is_span_kind"]

#: What a span did, as reconstruction reads it: OpenInference's span kinds (lower case), plus
#: ``other`` (unknown) and ``merged`` (a start/success pair read as one span).
SpanKind = Literal[
    "llm", "chain", "retriever", "tool", "agent", "embedding", "reranker", "prompt", "other", "merged"
]


def is_span_kind(value: object) -> TypeGuard[SpanKind]:
    return value in get_args(SpanKind)


@dataclasses.dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: str = ""
    id: str = ""


@dataclasses.dataclass(frozen=True)
class Message:
    role: str
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str = ""

    @property
    def text(self) -> str:
        """Content plus one line per tool call: the same text wherever the message shows up,
        so an assistant turn replayed in a later call matches the output that produced it."""
        lines = [self.content] if self.content else []
        lines.extend(f"[tool call] {c.name}({c.arguments})" for c in self.tool_calls)
        return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class Document:
    content: str
    id: str = ""
    score: float | None = None


@dataclasses.dataclass(frozen=True)
class TemplateInfo:
    """A prompt template a span reports. ``role``/``index`` place it in the chat prompt
    when known (our own spans); ``binding`` is the live object's binding key if any."""

    template: str
    fmt: str = "f-string"
    role: str | None = None
    index: int | None = None
    name: str | None = None
    binding: str | None = None
    source: str = "openinference"


@dataclasses.dataclass
class SpanView:
    kind: SpanKind = "other"
    name: str = ""
    input_text: str | None = None
    output_text: str | None = None
    input_obj: object = None
    messages: list[Message] = dataclasses.field(default_factory=list)
    output_messages: list[Message] = dataclasses.field(default_factory=list)
    completion: bool = False
    templates: list[TemplateInfo] = dataclasses.field(default_factory=list)
    variables: dict[str, str] = dataclasses.field(default_factory=dict)
    documents: list[Document] = dataclasses.field(default_factory=list)
    tool_name: str | None = None
    tool_description: str | None = None
    tool_args: str | None = None
    tool_result: str | None = None
    model: str | None = None
    tool_definitions: list[dict[str, str]] = dataclasses.field(default_factory=list)  # name, description

    @property
    def output_value(self) -> str | None:
        """The LLM's answer as text (first output message, else output.value)."""
        if self.output_messages:
            return self.output_messages[0].text
        return _generation_text(self.output_text)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _json(value: object) -> object:
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or text[0] not in "[{\"":
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # hostile JSON nested too deep is not JSON here
        return None


def _generation_text(output: str | None) -> str | None:
    """LangChain LLM spans put ``{"generations": [[{"text": ...}]]}`` in output.value."""
    parsed = _json(output)
    if isinstance(parsed, Mapping) and isinstance(parsed.get("generations"), list):
        try:
            text = parsed["generations"][0][0]["text"]
            return text if isinstance(text, str) else output
        except (IndexError, KeyError, TypeError):
            return output
    return output

