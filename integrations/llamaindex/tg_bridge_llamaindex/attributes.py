"""Pure conversions from LlamaIndex objects to span attributes (semconv names).

Every function here is cheap, never raises on odd input (callers still guard), and returns a
flat ``dict[str, str | int | float | bool]``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from llama_index.core.base.llms.base import BaseLLM
from llama_index.core.base.response.schema import PydanticResponse, Response
from llama_index.core.prompts.base import BasePromptTemplate, ChatPromptTemplate, SelectorPromptTemplate
from llama_index.core.prompts.utils import get_template_vars
from llama_index.core.schema import NodeWithScore, QueryBundle

from tg_bridge import semconv as sc

from .bindings import TAG, format_of, read_path

__all__ = [
    "documents",
    "input_value",
    "messages",
    "output_text",
    "template_records",
    "token_counts",
    "tool_call_arguments",
    "tool_attributes",
    "tool_calls",
]

#: Longest text kept for input.value / output.value of non-LLM spans (documents and messages
#: are kept whole: they are what the graph is made of).
_MAX_VALUE = 32_000


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_VALUE else text[:_MAX_VALUE]


def _role(message: Any) -> str:
    role = getattr(message, "role", "user")
    return str(getattr(role, "value", role))


def _content(message: Any) -> str:
    content = getattr(message, "content", None)
    return content if isinstance(content, str) else ("" if content is None else str(content))


def messages(prefix: str, items: Sequence[Any]) -> dict[str, Any]:
    """``llm.input_messages.{i}.message.role|content`` for a list of ChatMessages."""
    attrs: dict[str, Any] = {}
    for i, message in enumerate(items):
        attrs[f"{prefix}.{i}.{sc.MESSAGE_ROLE}"] = _role(message)
        attrs[f"{prefix}.{i}.{sc.MESSAGE_CONTENT}"] = _content(message)
        for k, (name, arguments, call_id) in enumerate(_message_tool_calls(message)):
            base = f"{prefix}.{i}.message.tool_calls.{k}.tool_call"
            attrs[f"{base}.function.name"] = name
            attrs[f"{base}.function.arguments"] = arguments
            if call_id:
                attrs[f"{base}.id"] = call_id
    return attrs


def _message_tool_calls(message: Any) -> list[tuple[str, str, str]]:
    """(name, JSON arguments, id) of the tool calls an assistant message carries: ToolCall
    blocks, or OpenAI-style ``additional_kwargs["tool_calls"]`` (objects or dicts). A replayed
    assistant turn then reads the same as the LLM output that produced it."""
    found: list[tuple[str, str, str]] = []
    for block in getattr(message, "blocks", None) or ():
        if type(block).__name__ == "ToolCallBlock":
            kwargs = getattr(block, "tool_kwargs", None)
            arguments = kwargs if isinstance(kwargs, str) else json.dumps(kwargs, default=str, sort_keys=True)
            found.append((str(block.tool_name), arguments, str(getattr(block, "tool_call_id", "") or "")))
    if found:
        return found
    extra = getattr(message, "additional_kwargs", None)
    for call in (extra.get("tool_calls") or ()) if isinstance(extra, Mapping) else ():
        function = call.get("function") if isinstance(call, Mapping) else getattr(call, "function", None)
        get = function.get if isinstance(function, Mapping) else (lambda k, f=function: getattr(f, k, None))
        name, raw_arguments = get("name"), get("arguments")
        call_id = call.get("id") if isinstance(call, Mapping) else getattr(call, "id", None)
        if isinstance(name, str) and name:
            canonical = str(raw_arguments or "")
            if isinstance(raw_arguments, (str, bytes, bytearray)):
                try:  # the same canonical JSON as the LLM output records
                    canonical = json.dumps(json.loads(raw_arguments), default=str, sort_keys=True)
                except (TypeError, ValueError):
                    pass  # not JSON: kept as the text it is
            found.append((name, canonical, str(call_id or "")))
    return found


def documents(nodes: Sequence[Any]) -> dict[str, Any]:
    """``retrieval.documents.{i}.document.content|id|score`` for NodeWithScore lists."""
    attrs: dict[str, Any] = {}
    for i, item in enumerate(nodes):
        node = getattr(item, "node", item)
        prefix = f"{sc.RETRIEVAL_DOCUMENTS}.{i}."
        try:
            text = node.get_content()
        except Exception:
            text = str(getattr(node, "text", ""))
        attrs[prefix + sc.DOCUMENT_CONTENT] = text
        node_id = getattr(node, "node_id", None) or getattr(node, "id_", None)
        if node_id:
            attrs[prefix + sc.DOCUMENT_ID] = str(node_id)
        score = getattr(item, "score", None)
        if isinstance(score, (int, float)):
            attrs[prefix + sc.DOCUMENT_SCORE] = float(score)
    return attrs


def input_value(arguments: Mapping[str, Any]) -> str | None:
    """The user-facing input of a call: a query string, a chat message, or compact JSON."""
    for value in arguments.values():
        if isinstance(value, str):
            return _clip(value)
        if isinstance(value, QueryBundle):
            return _clip(value.query_str)
    simple = {k: v for k, v in arguments.items() if isinstance(v, (int, float, bool))}
    return json.dumps(simple, sort_keys=True) if simple else None


def tool_call_arguments(arguments: Mapping[str, Any]) -> Any:
    """What the model asked the tool for: a ``call(*args, **kwargs)``'s keyword arguments when
    that is all it got (``{"a": 6, "b": 7}``, as the model wrote them), else all arguments."""
    rest = {k: v for k, v in arguments.items() if not (k == "args" and not v)}
    if set(rest) == {"kwargs"} and isinstance(rest["kwargs"], Mapping):
        return dict(rest["kwargs"])
    return rest


def output_text(result: Any) -> str | None:
    """The text of a finished call's result, or None when it has no textual form."""
    if isinstance(result, str):
        return _clip(result)
    if isinstance(result, (Response, PydanticResponse)):
        return _clip(str(result.response or ""))
    if type(result).__name__ == "ToolOutput":
        return _clip(str(result.content))
    for attr in ("response", "text"):  # chat engine / agent responses, CompletionResponse
        value = getattr(result, attr, None)
        if isinstance(value, str):
            return _clip(value)
    message = getattr(result, "message", None)  # ChatResponse
    if message is not None and hasattr(message, "content"):
        return _clip(_content(message))
    if type(result).__name__ in ("StopEvent", "AgentOutput"):
        inner = getattr(result, "result", None) or getattr(result, "response", None)
        if inner is not None and inner is not result:
            return output_text(inner)
    if isinstance(result, list) and result and isinstance(result[0], NodeWithScore):
        return None  # documents are recorded as retrieval.documents
    return None


def tool_calls(llm: Any, response: Any) -> dict[str, str]:
    """``llm.output_messages.0.message.tool_calls.{k}.tool_call.function.name|arguments`` and
    ``.id`` for the tool calls a function-calling LLM's response asks for (so the tool span it
    causes gets the LLM output as its parent)."""
    getter = getattr(llm, "get_tool_calls_from_response", None)
    if getter is None or getattr(response, "message", None) is None:
        return {}
    try:
        selections = getter(response, error_on_no_tool_call=False)
    except Exception:
        return {}
    attrs: dict[str, str] = {}
    prefix = f"{sc.LLM_OUTPUT_MESSAGES}.0.message.tool_calls"
    for k, call in enumerate(selections or ()):
        name = getattr(call, "tool_name", None)
        if not isinstance(name, str) or not name:
            continue
        kwargs = getattr(call, "tool_kwargs", None)
        attrs[f"{prefix}.{k}.tool_call.function.name"] = name
        attrs[f"{prefix}.{k}.tool_call.function.arguments"] = json.dumps(kwargs, default=str, sort_keys=True)
        call_id = getattr(call, "tool_id", None)
        if isinstance(call_id, str) and call_id:
            attrs[f"{prefix}.{k}.tool_call.id"] = call_id
    return attrs


def token_counts(response: Any) -> dict[str, int]:
    """``llm.token_count.*`` from a ChatResponse / CompletionResponse, when the model said."""
    found: dict[str, int] = {}
    sources = [getattr(response, "additional_kwargs", None)]
    raw = getattr(response, "raw", None)
    usage = raw.get("usage") if isinstance(raw, Mapping) else getattr(raw, "usage", None)
    sources.append(usage if isinstance(usage, Mapping) else getattr(usage, "__dict__", None))
    for source in sources:
        if not isinstance(source, Mapping):
            continue
        for key, attr in (
            ("prompt_tokens", sc.LLM_TOKEN_COUNT_PROMPT),
            ("completion_tokens", sc.LLM_TOKEN_COUNT_COMPLETION),
            ("total_tokens", sc.LLM_TOKEN_COUNT_TOTAL),
        ):
            value = source.get(key)
            if isinstance(value, int) and attr not in found:
                found[attr] = value
    if sc.LLM_TOKEN_COUNT_TOTAL not in found and sc.LLM_TOKEN_COUNT_PROMPT in found:
        found[sc.LLM_TOKEN_COUNT_TOTAL] = found[sc.LLM_TOKEN_COUNT_PROMPT] + found.get(
            sc.LLM_TOKEN_COUNT_COMPLETION, 0
        )
    return found


def template_records(
    template: BasePromptTemplate, llm: BaseLLM | None
) -> tuple[list[dict[str, Any]], list[str], str | None]:
    """The records for ``tg_bridge.templates`` of the template an LLM call formats.

    A SelectorPromptTemplate is resolved to the variant ``llm`` selects (what was really sent).
    Returns (records, binding keys, the text for ``llm.prompt_template.template``).
    """
    selected = template.select(llm) if isinstance(template, SelectorPromptTemplate) else template
    tag = selected.metadata.get(TAG) if isinstance(selected.metadata, dict) else None
    name = str(tag).rsplit("/", 1)[-1] if tag else type(selected).__name__
    fmt = format_of(selected)
    records: list[dict[str, Any]] = []
    if isinstance(selected, ChatPromptTemplate):
        for j, message in enumerate(selected.message_templates):
            if not tag and _conversation_turn(message):
                continue  # a chat template built per call around the history: turns are data
            records.append(
                {
                    "binding": f"{tag}.messages[{j}]" if tag else None,
                    "name": f"{name}.messages[{j}]",
                    "role": _role(message),
                    "template": _content(message),
                    "format": fmt,
                    "index": j,
                }
            )
    else:
        try:
            text = read_path(selected, ())
        except Exception:
            text = selected.get_template()
        records.append(
            {"binding": tag, "name": name, "role": None, "template": text, "format": fmt, "index": 0}
        )
    keys = [r["binding"] for r in records if r["binding"]]
    first = records[0]["template"] if records else None
    return records, keys, first


def _conversation_turn(message: Any) -> bool:
    """A user/assistant message with no placeholder: a turn of the conversation, not a prompt."""
    if _role(message) not in ("user", "assistant"):
        return False
    try:
        return not get_template_vars(_content(message))
    except Exception:
        return False


def template_variables(template: BasePromptTemplate, args: Mapping[str, Any] | None) -> dict[str, str]:
    """Placeholder -> value for one formatting: partial-format kwargs plus the call's args."""
    values: dict[str, str] = {}
    for source in (getattr(template, "kwargs", None), args):
        if isinstance(source, Mapping):
            for key, value in source.items():
                if isinstance(value, (str, int, float, bool)):
                    values[str(key)] = str(value)
    return values


def tool_attributes(metadata: Any) -> dict[str, Any]:
    """``tool.name|description|parameters`` from a ToolMetadata."""
    attrs: dict[str, Any] = {}
    name = getattr(metadata, "name", None)
    if name:
        attrs[sc.TOOL_NAME] = str(name)
    description = getattr(metadata, "description", None)
    if description:
        attrs[sc.TOOL_DESCRIPTION] = str(description)
    try:
        attrs[sc.TOOL_PARAMETERS] = metadata.fn_schema_str
    except Exception:
        pass
    return attrs
