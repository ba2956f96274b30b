"""Capture-time view of app objects: which spans are app roots, and their prompts.

When a capture is active and a query engine, chat engine or agent starts, its prompts are
discovered (and tagged) once per object, then registered on the Run at each use. Prompts that
never pass through ``LLM.predict`` (chat engines' context templates, agents' system prompts and
ReAct headers, LLM system prompts) are listed on the root span in ``tg_bridge.templates``, since
no predict event will show them.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.chat_engine.types import BaseChatEngine

from tg_bridge import semconv as sc
from tg_bridge._internal import internal_call

from .bindings import PromptKeyBinding
from .discover import collect_bindings
from .hooks import agent_types, register_binding
from .registry import strong_or_weak

__all__ = ["app_roots", "forget", "root_bindings"]

log = logging.getLogger(__name__)

_MAX_CACHED = 1024
_lock = threading.Lock()
_cache: dict[int, tuple[Any, list[Any]]] = {}
_ROOTS: tuple[type, ...] | None = None


def app_roots() -> tuple[type, ...]:
    """Types whose spans start an app run (and own prompts)."""
    global _ROOTS
    if _ROOTS is None:
        _ROOTS = (BaseQueryEngine, BaseChatEngine, *agent_types())
    return _ROOTS


def bindings_of(instance: Any) -> list[Any]:
    """Cached :func:`collect_bindings` (one discovery per live object)."""
    oid = id(instance)
    cached = _cache.get(oid)
    if cached is not None and cached[0]() is instance:
        return cached[1]
    from .tools import enabled

    with internal_call():  # discovery calls get_prompts(): span-decorated, not app steps
        found = collect_bindings(instance, tool_descriptions=enabled())
    with _lock:
        if len(_cache) >= _MAX_CACHED:
            _cache.clear()
        _cache[oid] = (strong_or_weak(instance), found)
    return found


def forget(instance: Any) -> None:
    """Drop the cached discovery of ``instance`` (after its prompts were replaced)."""
    with _lock:
        _cache.pop(id(instance), None)


def root_bindings(instance: Any) -> dict[str, Any]:
    """Register ``instance``'s bindings on the current Run; span attributes for the ones
    capture cannot see through predict events."""
    bindings = bindings_of(instance)
    shown: list[dict[str, Any]] = []
    for binding in bindings:
        register_binding(binding)
        if isinstance(binding, PromptKeyBinding) and isinstance(instance, BaseQueryEngine):
            continue  # query engines format these through LLM.predict: the event shows them
        try:
            text = binding.read()
        except Exception:
            log.debug("cannot read %s", binding.key, exc_info=True)
            continue
        shown.append(
            {
                "binding": binding.key,
                "name": binding.key.rsplit("/", 1)[-1],
                "role": getattr(binding, "role", None),
                "template": text,
                "format": binding.template_format,
                "index": len(shown),
            }
        )
    attrs: dict[str, Any] = {sc.BINDING_IDS: json.dumps([b.key for b in bindings])}
    if shown:
        attrs[sc.TEMPLATES] = json.dumps(shown, ensure_ascii=False)
    return attrs
