"""Find (and tag) every prompt reachable from a LlamaIndex app object.

:func:`collect_bindings` walks a target: its ``get_prompts()`` keys (query engines, synthesizers,
retrievers, agents, agent workflows and all their prompt sub-modules), prompt templates held in
plain attributes (chat engines), plain-text system prompts (agents' ``system_prompt``, chat
engines' system message, an LLM's ``system_prompt``), and nested app objects (a chat engine's
query engine or retriever, an engine's LLM).

Side effect (why it exists): each bound template gets a ``metadata`` tag naming its binding key,
written back into the live object through ``update_prompts`` (or by swapping the attribute for a
tagged copy, never mutating a template that module-level defaults may share). The prompt text is
unchanged. The tag is what lets capture map the template copy inside ``LLMPredictStartEvent`` to
the live prompt.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from llama_index.core.base.llms.base import BaseLLM
from llama_index.core.prompts.base import BasePromptTemplate, ChatPromptTemplate
from llama_index.core.prompts.mixin import PromptMixin

from .bindings import (
    TAG,
    format_of,
    AttrTemplateBinding,
    AttrTextBinding,
    Path,
    PrefixSystemBinding,
    PromptKeyBinding,
    ReActContextBinding,
    iter_variants,
)
from .registry import binding_for, register

__all__ = ["collect_bindings"]

log = logging.getLogger(__name__)

_MAX_DEPTH = 8
#: Attributes that hold nested app objects worth visiting (engines, retrievers, LLMs, tools).
_CHILD_ATTRS = ("_query_engine", "_retriever", "_llm", "llm", "_agent", "_chat_engine")


def collect_bindings(target: Any) -> list[Any]:
    """Every live prompt binding reachable from ``target``, in a stable order (tags them).

    Blocking; calls ``get_prompts()``/``update_prompts()`` on the target (text unchanged).
    Never raises for an unusual object: parts that cannot be read are logged and skipped.
    """
    out: list[Any] = []
    seen: set[int] = set()
    _visit(target, out, seen, _module_tree(target), 0)
    unique: dict[str, Any] = {}
    for binding in out:
        unique.setdefault(binding.key, binding)
    return list(unique.values())


def _module_tree(obj: Any) -> set[int]:
    """ids of ``obj`` and every prompt sub-module below it (a tag owned by one is ours)."""
    ids: set[int] = set()
    stack = [obj]
    while stack and len(ids) < 10_000:
        current = stack.pop()
        if id(current) in ids:
            continue
        ids.add(id(current))
        if isinstance(current, PromptMixin):
            try:
                stack.extend(current._get_prompt_modules().values())
            except Exception:
                log.debug("cannot list prompt modules of %r", current, exc_info=True)
        for attr in _CHILD_ATTRS:
            child = getattr(current, attr, None)
            if child is not None and not isinstance(child, (str, int, float)):
                stack.append(child)
    return ids


def _visit(obj: Any, out: list[Any], seen: set[int], tree: set[int], depth: int) -> None:
    if obj is None or id(obj) in seen or depth > _MAX_DEPTH:
        return
    seen.add(id(obj))
    if isinstance(obj, PromptMixin):
        _prompt_mixin(obj, out, tree)
        try:
            modules = list(obj._get_prompt_modules().values())
        except Exception:
            modules = []
        for module in modules:
            _visit_children_only(module, out, seen, tree, depth + 1)
    elif not isinstance(obj, BaseLLM):
        _attr_templates(obj, out)
    _text_prompts(obj, out)
    for attr in _CHILD_ATTRS:
        _visit(getattr(obj, attr, None), out, seen, tree, depth + 1)


def _visit_children_only(obj: Any, out: list[Any], seen: set[int], tree: set[int], depth: int) -> None:
    """A prompt sub-module: its ``get_prompts`` keys are already covered by the parent."""
    if obj is None or id(obj) in seen or depth > _MAX_DEPTH:
        return
    seen.add(id(obj))
    _text_prompts(obj, out)
    try:
        modules = list(obj._get_prompt_modules().values()) if isinstance(obj, PromptMixin) else []
    except Exception:
        modules = []
    for module in modules:
        _visit_children_only(module, out, seen, tree, depth + 1)
    for attr in _CHILD_ATTRS:
        _visit(getattr(obj, attr, None), out, seen, tree, depth + 1)


def _prompt_mixin(obj: Any, out: list[Any], tree: set[int]) -> None:
    try:
        prompts = obj.get_prompts()
    except Exception:
        log.debug("get_prompts() failed on %r", obj, exc_info=True)
        return
    for slot, template in prompts.items():
        if not isinstance(template, BasePromptTemplate):
            continue
        retag = False
        for path, inner in iter_variants(template):
            existing = _reusable(inner, tree)
            if existing is not None:
                out.extend(_expand(existing.owner, existing.slot, path, inner, PromptKeyBinding))
                continue
            base = PromptKeyBinding(obj, slot, path)
            inner.metadata[TAG] = base.key
            retag = True
            out.extend(_expand(obj, slot, path, inner, PromptKeyBinding))
        if retag:
            try:
                obj.update_prompts({slot: template})
            except Exception:
                log.debug("update_prompts() failed on %r for %s", obj, slot, exc_info=True)


def _reusable(inner: BasePromptTemplate, tree: set[int]) -> Any | None:
    """The registered binding named by ``inner``'s tag, if its owner belongs to ``tree``."""
    tag = inner.metadata.get(TAG) if isinstance(inner.metadata, dict) else None
    existing = binding_for(tag) if tag else None
    if not isinstance(existing, PromptKeyBinding):
        return None
    try:
        owner = existing.owner
    except Exception:
        return None
    return existing if id(owner) in tree else None


def _expand(owner: Any, where: str, path: Path, inner: BasePromptTemplate, cls: type) -> list[Any]:
    """One binding per concrete text: the template itself, or each message of a chat template."""
    if isinstance(inner, ChatPromptTemplate):
        found = []
        for j, message in enumerate(inner.message_templates):
            role = getattr(message.role, "value", str(message.role))
            found.append(register(cls(owner, where, path + (("messages", j),), role=role)))
        return found
    return [register(cls(owner, where, path, fmt=format_of(inner)))]


def _attr_templates(obj: Any, out: list[Any]) -> None:
    """Prompt templates in plain attributes (chat engines), each swapped for a tagged copy."""
    try:
        attrs = sorted(vars(obj).items())
    except TypeError:
        return
    for attr, template in attrs:
        if not isinstance(template, BasePromptTemplate):
            continue
        tagged = copy.deepcopy(template)
        changed = False
        for path, inner in iter_variants(tagged):
            key = AttrTemplateBinding(obj, attr, path).key
            if inner.metadata.get(TAG) != key:
                inner.metadata[TAG] = key
                changed = True
            out.extend(_expand(obj, attr, path, inner, AttrTemplateBinding))
        if changed:
            try:
                setattr(obj, attr, tagged)
            except Exception:
                log.debug("cannot tag %s.%s", type(obj).__name__, attr, exc_info=True)


def _text_prompts(obj: Any, out: list[Any]) -> None:
    """Plain-text system prompts: ``system_prompt``/``_system_prompt`` and prefix messages."""
    formatter = getattr(obj, "formatter", None)
    if isinstance(getattr(formatter, "context", None), str) and hasattr(obj, "system_prompt"):
        if formatter.context:
            out.append(register(ReActContextBinding(obj)))
        return
    for attr in ("system_prompt", "_system_prompt"):
        try:
            value = getattr(obj, attr, None)
        except Exception:
            value = None
        if isinstance(value, str) and value:
            out.append(register(AttrTextBinding(obj, attr)))
            break
    prefix = getattr(obj, "_prefix_messages", None) if not isinstance(obj, BaseLLM) else None
    if isinstance(prefix, list) and prefix:
        role = getattr(prefix[0], "role", None)
        if getattr(role, "value", role) == "system":
            out.append(register(PrefixSystemBinding(obj)))
