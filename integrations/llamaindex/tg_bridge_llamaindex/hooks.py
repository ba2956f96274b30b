"""Thin bridges from tg_bridge.capture's adapter API, and span-kind classification.

The capture core may be absent in a stripped install or still loading; these wrappers make the
adapter degrade to "no run, errors logged" instead of failing inside the host.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.base.llms.base import BaseLLM
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.tools.types import BaseTool

if TYPE_CHECKING:
    from llama_index.core.workflow import Workflow

__all__ = ["LLM_CALLS", "current_run", "record_hook_error", "register_binding", "span_kind"]

log = logging.getLogger("tg_bridge.llamaindex")

#: LLM methods that send one request (they carry the chat/completion start and end events).
LLM_CALLS = frozenset(
    ("chat", "achat", "complete", "acomplete", "stream_chat", "astream_chat",
     "stream_complete", "astream_complete")
)


def current_run() -> Any:
    try:
        from tg_bridge.capturing import current_run as _current_run
    except ImportError:
        return None
    return _current_run()


def register_binding(binding: Any) -> None:
    """Register ``binding`` on the current Run unless the Run has its key already: the first
    registration comes from the outermost app object, whose ``app_path`` is the one a patch
    must carry (a nested engine's own discovery spells paths from itself)."""
    run = current_run()
    if run is not None and binding.key in getattr(run, "bindings", {}):
        return
    try:
        from tg_bridge.capturing import register_binding as _register
    except ImportError:
        return
    _register(binding)


def record_hook_error(exc: BaseException) -> None:
    """Count and log a failure of our own hook code; never raises."""
    try:
        from tg_bridge.capturing import record_hook_error as _record

        _record(exc)
    except Exception:
        log.warning("llamaindex capture hook failed: %r", exc, exc_info=exc)


def _agent_types() -> tuple[type[Workflow], ...]:
    try:
        from llama_index.core.workflow import Workflow
    except ImportError:  # pragma: no cover - workflows ship with llama-index-core 0.12+
        return ()
    return (Workflow,)


_AGENTS: tuple[type[Workflow], ...] | None = None


def agent_types() -> tuple[type[Workflow], ...]:
    global _AGENTS
    if _AGENTS is None:
        _AGENTS = _agent_types()
    return _AGENTS


def span_kind(instance: Any, method: str) -> str:
    """The OpenInference span kind of ``instance.method``.

    Private helpers (``_retrieve``) and the LLM's formatting wrappers (``predict``, ``stream``)
    are CHAIN so each retrieval and each LLM request appears exactly once with its own kind.
    """
    if instance is None:
        return "CHAIN"
    if isinstance(instance, BaseLLM):
        return "LLM" if method in LLM_CALLS else "CHAIN"
    if method.startswith("_"):
        return "CHAIN"
    if isinstance(instance, BaseRetriever):
        return "RETRIEVER"
    if isinstance(instance, BaseEmbedding):
        return "EMBEDDING"
    if isinstance(instance, BaseNodePostprocessor):
        return "RERANKER"
    if isinstance(instance, BaseTool):
        return "TOOL"
    if method == "run" and isinstance(instance, agent_types()):
        return "AGENT"
    return "CHAIN"
