"""Running a LangChain target on an example (``ainvoke``) and copying it (``copy``).

``run_target`` passes the input mapping as is, or its single value when the target takes a
single non-object input (``chain.invoke("question")`` style chains). The output becomes text:
messages give their content, agent states their last message, one-string dicts that string,
anything else JSON.

``copy_target`` deep-copies the structure (sequences, parallels, bindings, prompts, bound tool
schemas) but SHARES models, retrievers, vector stores and embeddings (they hold clients and
locks that cannot be copied, and hold no prompt), and gives each tool a shallow copy (its
description is then independent). The copy's prompts get binding keys of their own, and a
``create_agent`` graph's copy gets its own system prompt cell (:func:`.agent_prompt.detach`);
function runnables whose closures hold runnables get closures of their own (see
:func:`_detach_closures`).
"""

from __future__ import annotations

import copy
import logging
import sys
import types
from collections.abc import Mapping
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseLanguageModel
from langchain_core.messages import BaseMessage
from langchain_core.prompts import BasePromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.vectorstores import VectorStore

from tg_bridge.exceptions import UsageError
from tg_bridge.host_threads import run_in_host_thread

from . import agent_prompt, registry
from .attributes import message_content, to_json
from .walk import _holds_prompts, _walk

__all__ = ["copy_target", "output_text", "run_target"]

log = logging.getLogger(__name__)

_SHARED = (BaseLanguageModel, BaseRetriever, VectorStore, Embeddings)


def takes_single_value(target: Runnable[Any, Any]) -> bool:
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


async def run_target(
    target: Any, inputs: Mapping[str, Any], *, config: Mapping[str, Any] | None = None
) -> str:
    """``target.ainvoke`` on ``inputs`` with ``config`` (a RunnableConfig, e.g. the session id
    a message-history wrapper needs); the output as text. Raises what the target raises."""
    # target: a Runnable (the adapter owns it); Any because the caller's config mapping goes
    # to ainvoke as is, where LangChain types it as its RunnableConfig TypedDict
    if not isinstance(inputs, Mapping):
        raise UsageError(f"inputs must be a mapping, got {type(inputs).__name__}")
    if config is not None and not isinstance(config, Mapping):
        raise UsageError(f"config must be a mapping (a RunnableConfig), got {type(config).__name__}")
    payload: Any = dict(inputs)
    if len(inputs) == 1 and takes_single_value(target):
        payload = next(iter(inputs.values()))
    run_config = dict(config) if config is not None else None
    if _async_only(target):
        result = await target.ainvoke(payload, run_config)
    else:
        # the sync path in a worker thread (the context, hence the capture, is copied): model
        # classes cache async HTTP clients bound to the FIRST event loop they ran on
        # (langchain-openai's default httpx client), and each blocking tg_bridge call runs
        # its own loop, so a second optimize()/refine() through ainvoke would fail with
        # "Event loop is closed"
        result = await run_in_host_thread(target.invoke, payload, run_config)
    return output_text(result)


def _async_only(target: object) -> bool:
    """True when some function runnable (``afunc`` without ``func``) or tool (``coroutine``
    without ``func``) of ``target`` has only an async implementation."""
    for obj in _walk(target):
        attrs = getattr(obj, "__dict__", None)
        if not isinstance(attrs, dict) or attrs.get("func") is not None:
            continue
        if attrs.get("afunc") is not None or attrs.get("coroutine") is not None:
            return True
    return False


def output_text(value: object) -> str:
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


def copy_target(target: object) -> Any:
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
    _detach_closures(target, duplicate, memo)
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


def _detach_closures(original: object, duplicate: object, memo: dict[int, Any]) -> None:
    """Give the copy's function runnables closures of their own.

    ``copy.deepcopy`` keeps functions as they are, so a copied ``RunnableLambda`` (e.g. inside
    ``RunnableWithMessageHistory``, which holds the wrapped chain only in a closure) would
    still call the ORIGINAL chain. Each function of a copied object whose closure holds an
    object of the original is rebuilt over cells holding deep copies (with the same ``memo``,
    so a prompt reachable both ways is copied once and shared models stay shared). Raises
    UsageError when a function cannot be rebuilt.
    """
    from_original = {id(obj) for obj in _walk(original)}
    for _ in range(8):  # each round may uncover copies nested one closure deeper
        changed = False
        for obj in _walk(duplicate):
            if id(obj) in from_original:
                continue
            attrs = getattr(obj, "__dict__", None)
            if not isinstance(attrs, dict):
                continue
            for attr in ("func", "afunc"):
                fn = attrs.get(attr)
                if isinstance(fn, types.FunctionType) and _rebuild(obj, attr, fn, from_original, memo):
                    changed = True
        if not changed:
            return


def _rebuild(obj: object, attr: str, fn: types.FunctionType, shared: set[int], memo: dict[int, Any]) -> bool:
    cells = fn.__closure__ or ()
    contents: list[Any] = []
    for cell in cells:
        try:
            contents.append(cell.cell_contents)
        except ValueError:
            contents.append(_EMPTY)
    if not any(id(v) in shared and _holds_prompts(v) for v in contents):
        return False
    try:
        closure = tuple(
            cell if value is _EMPTY or not (id(value) in shared and _holds_prompts(value))
            else types.CellType(copy.deepcopy(value, memo))
            for cell, value in zip(cells, contents)
        )
        clone = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, closure)
        clone.__kwdefaults__ = fn.__kwdefaults__
        clone.__qualname__ = fn.__qualname__
        clone.__annotations__ = dict(fn.__annotations__)
        clone.__dict__.update(fn.__dict__)
        obj.__dict__[attr] = clone
        obj.__dict__.pop("deps", None)  # RunnableLambda caches the runnables of its closure
    except Exception as exc:
        raise UsageError(
            f"cannot copy the function {fn.__qualname__} for optimize(in_place=False): {exc};"
            " optimize in place (and revert the patch) instead"
        ) from exc
    return True


_EMPTY = object()
