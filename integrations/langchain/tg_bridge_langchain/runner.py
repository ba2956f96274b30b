"""Running a LangChain target on an example (``ainvoke``) and copying it (``copy``).

``run_target`` passes the input mapping as is, or its single value when the target takes a
single non-object input (``chain.invoke("question")`` style chains). The output becomes text:
messages give their content, agent states their last message, one-string dicts that string,
anything else JSON.

``copy_target`` deep-copies the structure (sequences, parallels, bindings, prompts, bound tool
schemas) but SHARES models, retrievers, vector stores and embeddings (they hold clients and
locks that cannot be copied, and hold no prompt), and gives each tool a shallow copy (its
description is then independent). The copy's prompts get binding keys of their own, and a
``create_agent`` graph's copy gets its own system prompt cell (:func:`.agent_prompt.detach`).
"""

from __future__ import annotations

import copy
import logging
import sys
from collections.abc import Mapping
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseLanguageModel
from langchain_core.messages import BaseMessage
from langchain_core.prompts import BasePromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import BaseTool
from langchain_core.vectorstores import VectorStore
from tg_bridge.exceptions import UsageError

from . import agent_prompt, registry
from .attributes import message_content, to_json
from .walk import _walk

__all__ = ["copy_target", "output_text", "run_target"]

log = logging.getLogger(__name__)

_SHARED = (BaseLanguageModel, BaseRetriever, VectorStore, Embeddings)


def takes_single_value(target: Any) -> bool:
    """True when ``target``'s input schema is not an object with named fields."""
    try:
        schema = target.get_input_jsonschema()
    except Exception:
        return False
    if not isinstance(schema, Mapping):
        return False
    if schema.get("type") == "object" or schema.get("properties"):
        return False
    return True


async def run_target(target: Any, inputs: Mapping[str, Any]) -> str:
    """``target.ainvoke`` on ``inputs``; the output as text. Raises what the target raises."""
    if not isinstance(inputs, Mapping):
        raise UsageError(f"inputs must be a mapping, got {type(inputs).__name__}")
    payload: Any = dict(inputs)
    if len(inputs) == 1 and takes_single_value(target):
        payload = next(iter(inputs.values()))
    result = await target.ainvoke(payload)
    return output_text(result)


def output_text(value: Any) -> str:
    """A target's output as text (see module docstring)."""
    if isinstance(value, str):
        return value
    if isinstance(value, BaseMessage):
        return message_content(value)
    if isinstance(value, Mapping):
        messages = value.get("messages")
        if isinstance(messages, list) and messages and isinstance(messages[-1], BaseMessage):
            return message_content(messages[-1])
        strings = [v for v in value.values() if isinstance(v, (str, BaseMessage))]
        if len(value) == 1 and strings:
            return output_text(strings[0])
        for key in ("output", "answer", "result", "text"):
            if key in value:
                return output_text(value[key])
    if isinstance(value, list) and value and all(isinstance(v, BaseMessage) for v in value):
        return message_content(value[-1])
    return to_json(value)


def _module_sentinels() -> dict[int, Any]:
    """Module-level ``object()`` sentinels of LangChain and LangGraph (e.g. langgraph's
    ``PASSTHROUGH``), compared by identity: a deep copy must keep, not duplicate, them, or a
    copied compiled graph (``create_agent``) fails with "Expected dict, got <object ...>"."""
    found: dict[int, Any] = {}
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith(("langgraph", "langchain")):
            continue
        for value in list(vars(module).values()):
            if type(value) is object:
                found[id(value)] = value
    return found


def copy_target(target: Any) -> Any:
    """An independent copy of ``target`` (see module docstring). Raises UsageError when the
    target cannot be copied."""
    memo: dict[int, Any] = _module_sentinels()
    for obj in _walk(target):
        if obj is target:
            continue
        if isinstance(obj, _SHARED) and not isinstance(obj, BasePromptTemplate):
            memo[id(obj)] = obj
        elif isinstance(obj, BaseTool):
            try:
                memo[id(obj)] = obj.model_copy()
            except Exception:
                memo[id(obj)] = obj
    try:
        duplicate = copy.deepcopy(target, memo)
    except Exception as exc:
        raise UsageError(
            f"cannot copy {type(target).__name__} for optimize(in_place=False): {exc}; "
            "optimize in place (and revert the patch) instead"
        ) from exc
    for obj in _walk(duplicate):
        if agent_prompt.is_model_node(obj):
            try:
                agent_prompt.detach(obj)
            except Exception as exc:
                raise UsageError(
                    f"cannot copy {type(target).__name__} for optimize(in_place=False): {exc}; "
                    "optimize in place (and revert the patch) instead"
                ) from exc
        if isinstance(obj, (BasePromptTemplate, BaseTool)) and registry.key_of(obj) is None:
            registry.forget(obj)
            registry.ensure_key(obj, "tool:" if isinstance(obj, BaseTool) else "")
    return duplicate
