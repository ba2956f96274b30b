"""Span attribute builders for LangChain runs, used by :mod:`.handler`.

Contract:
- pure functions of the callback payloads: the ``*_output_attributes`` builders return a new
  dict; ``prompt_attributes`` / ``agent_prompt_attributes`` / ``model_attributes`` fill the
  ``attrs`` dict they are given in place;
- side effect: ``prompt_attributes`` and ``agent_prompt_attributes`` register the live
  prompt bindings they find (``tg_bridge.capturing.register_binding``);
- they MAY raise on odd payloads; the handler calls them inside its guarded hook bodies, so
  a failure is counted on the Run and never reaches the host;
- thread-safe: no state of their own.

The handler imports these names into its own namespace and looks them up there at call time,
so failures can be injected by patching ``tg_bridge_langchain.handler``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage

from tg_bridge import semconv as sc
from tg_bridge.capturing import register_binding

from . import agent_prompt, registry
from .attributes import document_attributes, message_attributes, message_content, to_json, value_attributes
from .bindings import prompt_bindings, template_records

__all__ = [
    "agent_prompt_attributes",
    "chain_output_attributes",
    "llm_output_attributes",
    "model_attributes",
    "prompt_attributes",
    "retriever_output_attributes",
    "serialized_name",
    "tool_output_attributes",
]


def serialized_name(serialized: Mapping[str, Any] | None) -> str | None:
    """The class name LangChain serialized for a run (last ``id`` part), else its ``name``."""
    if not serialized:
        return None
    ids = serialized.get("id")
    if isinstance(ids, list) and ids:
        return str(ids[-1])
    name = serialized.get("name")
    return str(name) if name else None


# -- start attributes -----------------------------------------------------------------------
def prompt_attributes(
    inputs: Any, metadata: Mapping[str, Any] | None, attrs: dict[str, Any]
) -> None:
    """Template variables of a prompt run, plus its template records and live bindings when
    the prompt was registered (``registry.META_KEY`` in the run metadata)."""
    variables = to_json(inputs) if isinstance(inputs, Mapping) else to_json({"input": inputs})
    attrs[sc.TEMPLATE_VARIABLES] = variables
    attrs[sc.LLM_PROMPT_TEMPLATE_VARIABLES] = variables
    key = metadata.get(registry.META_KEY) if metadata else None
    if not isinstance(key, str):
        return
    prompt = registry.lookup(key)
    if prompt is None:
        return
    records = template_records(prompt, key)
    if not records:
        return
    attrs[sc.TEMPLATES] = json.dumps(records, ensure_ascii=False)
    attrs[sc.BINDING_IDS] = json.dumps([r["binding"] for r in records])
    for record in records:  # OpenInference has room for one template: the first templated
        if record["format"] != "none":
            attrs[sc.LLM_PROMPT_TEMPLATE] = record["template"]
            break
    for binding in prompt_bindings(prompt, key):
        register_binding(binding)


def agent_prompt_attributes(messages: list[BaseMessage], attrs: dict[str, Any]) -> None:
    """Inside a create_agent model node: the agent's system prompt as a template record
    (format "none") plus its live binding, when the call sends that prompt first."""
    binding = agent_prompt.current_binding()
    if binding is None:
        return
    record = agent_prompt.template_record(binding, messages)
    if record is None:
        return
    attrs[sc.TEMPLATES] = json.dumps([record], ensure_ascii=False)
    attrs[sc.BINDING_IDS] = json.dumps([record["binding"]])
    register_binding(binding)


def model_attributes(
    params: Mapping[str, Any] | None, metadata: Mapping[str, Any] | None, attrs: dict[str, Any]
) -> None:
    """Model name, provider and offered tool schemas of a chat model / LLM run."""
    params = params or {}
    metadata = metadata or {}
    model = params.get("model") or params.get("model_name") or metadata.get("ls_model_name")
    if model:
        attrs[sc.LLM_MODEL_NAME] = str(model)
    provider = metadata.get("ls_provider")
    if provider:
        attrs[sc.LLM_PROVIDER] = str(provider)
    for i, tool in enumerate(params.get("tools") or ()):
        attrs[f"llm.tools.{i}.tool.json_schema"] = to_json(tool)


# -- end attributes -------------------------------------------------------------------------
def chain_output_attributes(outputs: Any, inputs: Any) -> dict[str, Any]:
    """Output value of a chain run (and its real input when it was streamed)."""
    attrs = value_attributes(outputs, sc.OUTPUT_VALUE, sc.OUTPUT_MIME_TYPE)
    if inputs is not None and inputs != {"input": ""}:
        # streamed runs start with a placeholder input and report the real one at the end
        attrs.update(value_attributes(inputs, sc.INPUT_VALUE, sc.INPUT_MIME_TYPE))
    return attrs


def retriever_output_attributes(documents: Sequence[Any]) -> dict[str, Any]:
    """Retrieved documents, indexed and as one JSON output value."""
    attrs = document_attributes(documents)
    attrs[sc.OUTPUT_VALUE] = to_json(documents)
    attrs[sc.OUTPUT_MIME_TYPE] = "application/json"
    return attrs


def tool_output_attributes(output: Any) -> dict[str, Any]:
    """A tool's result as plain text."""
    if isinstance(output, BaseMessage):
        text = message_content(output)
    else:
        text = output if isinstance(output, str) else to_json(output)
    return {sc.OUTPUT_VALUE: text, sc.OUTPUT_MIME_TYPE: "text/plain"}


def llm_output_attributes(response: Any) -> dict[str, Any]:
    """Output message, text and token counts of an LLMResult (message usage first, else the
    provider's ``llm_output.token_usage``)."""
    attrs: dict[str, Any] = {}
    generations = getattr(response, "generations", None) or []
    first = generations[0][0] if generations and generations[0] else None
    message = getattr(first, "message", None)
    usage: Mapping[str, Any] | None = None
    if isinstance(message, BaseMessage):
        attrs.update(message_attributes(sc.LLM_OUTPUT_MESSAGES, [message]))
        text = message_content(message)
        if not text and isinstance(message, AIMessage) and message.tool_calls:
            text = to_json(message.tool_calls)
        attrs[sc.OUTPUT_VALUE] = text
        usage = getattr(message, "usage_metadata", None)
        if usage:
            attrs[sc.LLM_TOKEN_COUNT_PROMPT] = int(usage.get("input_tokens", 0))
            attrs[sc.LLM_TOKEN_COUNT_COMPLETION] = int(usage.get("output_tokens", 0))
            attrs[sc.LLM_TOKEN_COUNT_TOTAL] = int(usage.get("total_tokens", 0))
    elif first is not None:
        attrs[sc.OUTPUT_VALUE] = str(getattr(first, "text", ""))
    attrs[sc.OUTPUT_MIME_TYPE] = "text/plain"
    if not usage:
        llm_output = getattr(response, "llm_output", None) or {}
        token_usage = llm_output.get("token_usage") if isinstance(llm_output, Mapping) else None
        if isinstance(token_usage, Mapping):
            for ours, theirs in (
                (sc.LLM_TOKEN_COUNT_PROMPT, "prompt_tokens"),
                (sc.LLM_TOKEN_COUNT_COMPLETION, "completion_tokens"),
                (sc.LLM_TOKEN_COUNT_TOTAL, "total_tokens"),
            ):
                if isinstance(token_usage.get(theirs), int):
                    attrs[ours] = token_usage[theirs]
    return attrs
