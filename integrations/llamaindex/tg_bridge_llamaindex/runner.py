"""Run an app object once (``ainvoke``), copy it (``copy_target``), and recognise it (``owns``).

``ainvoke`` picks the input from the example mapping: ``query`` / ``question`` / ``input`` /
``message`` / ``user_msg``, else the single value. Streaming results are consumed fully.
``copy_target`` deep-copies the prompt-bearing objects while sharing what is heavy and holds no
prompt (indexes, vector and document stores, embedding models, clients); LLMs are shallow
copies so an LLM ``system_prompt`` written on the copy leaves the original alone.
"""

from __future__ import annotations

import copy
import inspect
import logging
from collections.abc import Mapping
from typing import TypeVar

from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.base.llms.base import BaseLLM
from llama_index.core.base.response.schema import AsyncStreamingResponse, StreamingResponse
from llama_index.core.chat_engine.types import BaseChatEngine
from llama_index.core.indices.base import BaseIndex
from llama_index.core.response_synthesizers.base import BaseSynthesizer
from llama_index.core.storage.docstore.types import BaseDocumentStore

from tg_bridge.exceptions import UsageError

from .hooks import agent_types

__all__ = ["ainvoke", "copy_target", "owns", "pick_input"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

_INPUT_KEYS = ("query", "question", "input", "message", "user_msg", "query_str")


def owns(obj: object) -> bool:
    """True for LlamaIndex engines, chat engines, agents/workflows, retrievers, synthesizers, LLMs."""
    return isinstance(obj, (BaseQueryEngine, BaseChatEngine, BaseRetriever, BaseSynthesizer, BaseLLM, *agent_types()))


def pick_input(inputs: Mapping[str, object] | str) -> str:
    """The text to send: a known key, else the only value. Raises UsageError otherwise."""
    if isinstance(inputs, str):
        return inputs
    if not isinstance(inputs, Mapping):
        raise UsageError(f"inputs must be a mapping or a string, not {type(inputs).__name__}")
    for key in _INPUT_KEYS:
        if key in inputs:
            return str(inputs[key])
    if len(inputs) == 1:
        return str(next(iter(inputs.values())))
    raise UsageError(
        f"cannot tell which input to send among {sorted(inputs)}; use one of {list(_INPUT_KEYS)}"
    )


async def ainvoke(target: object, inputs: Mapping[str, object] | str) -> str:
    """Run ``target`` once and return its answer text. Errors of the app propagate as they are."""
    text = pick_input(inputs)
    if isinstance(target, BaseQueryEngine):
        return await _text(await target.aquery(text))
    if isinstance(target, BaseChatEngine):
        return await _text(await target.achat(text))
    if isinstance(target, agent_types()):
        result = await target.run(user_msg=text)
        return await _text(result)
    if isinstance(target, BaseRetriever):
        nodes = await target.aretrieve(text)
        return "\n\n".join(n.node.get_content() for n in nodes)
    if isinstance(target, BaseLLM):
        return (await target.acomplete(text)).text
    raise UsageError(f"the llamaindex adapter cannot run a {type(target).__name__}")


async def _text(result: object) -> str:
    if isinstance(result, StreamingResponse):
        return str(result.get_response().response or "")
    if isinstance(result, AsyncStreamingResponse):
        return str((await result.get_response()).response or "")
    response = getattr(result, "response", None)
    if response is not None and not isinstance(response, str):
        # AgentOutput.response is a ChatMessage
        content = getattr(response, "content", None)
        if isinstance(content, str):
            return content
    if isinstance(response, str):
        return response
    if inspect.isawaitable(result):  # pragma: no cover - defensive
        return await _text(await result)
    return str(result)


_SHARED = (BaseIndex, BaseDocumentStore, BaseEmbedding)


def copy_target(target: _T) -> _T:
    """An independent copy of ``target`` whose prompts can be written without touching it.

    Raises UsageError when the object cannot be copied (then optimize in place instead).
    """
    memo: dict[int, object] = {}
    for obj in _reachable(target):
        if isinstance(obj, _SHARED) or _is_vector_store(obj):
            memo[id(obj)] = obj
        elif isinstance(obj, BaseLLM):
            memo[id(obj)] = obj.model_copy()
    try:
        return copy.deepcopy(target, memo)
    except Exception as exc:
        raise UsageError(
            f"cannot copy this {type(target).__name__} ({type(exc).__name__}: {exc}); "
            "optimize with in_place=True instead"
        ) from exc


def _is_vector_store(obj: object) -> bool:
    return any(c.__name__ in ("BasePydanticVectorStore", "VectorStore") for c in type(obj).__mro__)


def _reachable(root: object, limit: int = 5000) -> list[object]:
    """LlamaIndex objects reachable from ``root`` through attributes and containers (bounded)."""
    found: list[object] = []
    seen: set[int] = set()
    stack = [root]
    while stack and len(seen) < limit:
        obj = stack.pop()
        if id(obj) in seen or obj is None or isinstance(obj, (str, bytes, int, float, bool)):
            continue
        seen.add(id(obj))
        if isinstance(obj, (list, tuple)):
            stack.extend(obj)
            continue
        if isinstance(obj, dict):
            stack.extend(obj.values())
            continue
        if isinstance(obj, _SHARED) or _is_vector_store(obj) or isinstance(obj, BaseLLM):
            found.append(obj)
            continue  # shared or shallow-copied: no need to look inside
        module = type(obj).__module__ or ""
        if not module.startswith(("llama_index", "workflows")) and obj is not root:
            continue
        found.append(obj)
        state = getattr(obj, "__dict__", None) or {}
        stack.extend(state.values())
        private = getattr(obj, "__pydantic_private__", None)
        if isinstance(private, dict):
            stack.extend(private.values())
    return found
