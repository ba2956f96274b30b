"""Find (and tag) every prompt reachable from a LlamaIndex app object.

:func:`collect_bindings` walks a target: its ``get_prompts()`` keys (query engines, synthesizers,
retrievers, agents, agent workflows and all their prompt sub-modules), prompt templates held in
plain attributes (chat engines), plain-text system prompts (agents' ``system_prompt``, chat
engines' system message, an LLM's ``system_prompt``), and nested app objects (a chat engine's
query engine or retriever, an engine's LLM).

Every binding gets an ``app_path``: where the prompt sits relative to ``target``, spelled with
the attributes and prompt keys the walk followed (``query_engines[1]/response_synthesizer:
summary_template``, ``tools[0]/description``). Built the same way, a fresh instance in another
process yields the same paths, so a saved patch finds the same prompt (keys carry per-process
counters; default texts repeat across components). ``owner_type`` names the class the prompt
was found on.

Every object found with a prompt, and ``target`` itself, share one lock (:mod:`.call_lock`):
a patch of any of their prompts is seen whole by the host's query and chat calls.

Side effect (why it exists): each bound template gets a ``metadata`` tag naming its binding key,
written back into the live object through ``update_prompts`` (or by swapping the attribute for a
tagged copy, never mutating a template that module-level defaults may share). The prompt text is
unchanged. The tag is what lets capture map the template copy inside ``LLMPredictStartEvent`` to
the live prompt.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable
from typing import Any

from llama_index.core.base.llms.base import BaseLLM
from llama_index.core.prompts.base import BasePromptTemplate, ChatPromptTemplate
from llama_index.core.prompts.mixin import PromptMixin

from .bindings import (
    TAG,
    AttrTemplateBinding,
    AttrTextBinding,
    Path,
    PrefixSystemBinding,
    PromptKeyBinding,
    ReActContextBinding,
    format_of,
    iter_variants,
    path_suffix,
    retag_rebuilt,
)
from .call_lock import share
from .registry import binding_for, register
from .tools import tool_binding

__all__ = ["children", "collect_bindings"]

log = logging.getLogger(__name__)

_MAX_DEPTH = 8
#: Attributes that hold nested app objects worth visiting (engines, retrievers, LLMs, a
#: pydantic selector's program).
_CHILD_ATTRS = ("_query_engine", "_retriever", "_llm", "llm", "_agent", "_chat_engine", "_selector_program")
#: Attributes that hold collections of app objects (a router's and a sub-question engine's
#: query engines, an agent's tools); items are addressed ``name[i]`` / ``name[key]``.
_CONTAINER_ATTRS = ("_query_engines", "tools", "_tools", "agents")
_MAX_ITEMS = 256


def collect_bindings(target: Any, *, tool_descriptions: bool = False) -> list[Any]:
    """Every live prompt binding reachable from ``target``, in a stable order (tags them).

    ``tool_descriptions``: also bind the descriptions of the FunctionTools found (opt-in: a
    description is the tool's contract with the model). Blocking; calls
    ``get_prompts()``/``update_prompts()`` on the target (text unchanged). Never raises for an
    unusual object: parts that cannot be read are logged and skipped.
    """
    walk = _Walk(_module_tree(target), tool_descriptions)
    walk.visit(target, "", 0)
    unique: dict[str, Any] = {}
    for binding in walk.out:
        unique.setdefault(binding.key, binding)
    # one lock for the whole app: the host's calls on any of these objects read under it, a
    # patch of any of their prompts writes under it (see call_lock)
    share(target, _owners(unique.values()))
    return list(unique.values())


def _owners(bindings: Iterable[Any]) -> list[Any]:
    """The live owners of ``bindings`` (tool bindings and dead owners have none)."""
    owners = []
    for binding in bindings:
        try:
            owner = getattr(binding, "owner", None)
        except Exception:  # the owner is gone
            owner = None
        if owner is not None:
            owners.append(owner)
    return owners


def children(obj: Any) -> list[tuple[str, Any]]:
    """(address, child) for the nested app objects of ``obj``, in a stable order."""
    found: list[tuple[str, Any]] = []
    for attr in _CHILD_ATTRS:
        try:
            child = getattr(obj, attr, None)
        except Exception:
            child = None
        if child is not None and not isinstance(child, (str, int, float, bool)):
            found.append((attr.lstrip("_"), child))
    for attr in _CONTAINER_ATTRS:
        try:
            items = getattr(obj, attr, None)
        except Exception:
            items = None
        name = attr.lstrip("_")
        if isinstance(items, dict):
            found.extend((f"{name}[{k}]", v) for k, v in list(items.items())[:_MAX_ITEMS] if isinstance(k, str))
        elif isinstance(items, (list, tuple)):
            found.extend((f"{name}[{i}]", v) for i, v in enumerate(items[:_MAX_ITEMS]))
    return found


def _join(chain: str, name: str) -> str:
    return f"{chain}.{name}" if chain else name


def _place(bindings: list[Any], chain: str, owner: Any, slot_of: Callable[[Any], str]) -> list[Any]:
    """Give each binding its stable ``app_path`` (``chain/slot``) and ``owner_type``."""
    for binding in bindings:
        slot = slot_of(binding)
        binding.app_path = f"{chain}/{slot}" if chain else slot
        binding.owner_type = type(owner).__name__
    return bindings


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
        stack.extend(child for _, child in children(current))
    return ids


class _Walk:
    """One discovery: the bindings found so far and the objects already visited."""

    def __init__(self, tree: set[int], tool_descriptions: bool) -> None:
        self.out: list[Any] = []
        self.seen: set[int] = set()
        self.tree = tree
        self.tool_descriptions = tool_descriptions

    def visit(self, obj: Any, chain: str, depth: int) -> None:
        if obj is None or id(obj) in self.seen or depth > _MAX_DEPTH:
            return
        self.seen.add(id(obj))
        if isinstance(obj, PromptMixin):
            self.out.extend(_prompt_mixin(obj, self.tree, chain))
            try:
                modules = list(obj._get_prompt_modules().items())
            except Exception:
                modules = []
            for name, module in modules:
                self.children_only(module, _join(chain, name), depth + 1)
        elif not isinstance(obj, BaseLLM):
            self.out.extend(_attr_templates(obj, chain))
        self.out.extend(_text_prompts(obj, chain))
        self._tool(obj, chain)
        for name, child in children(obj):
            self.visit(child, _join(chain, name), depth + 1)

    def children_only(self, obj: Any, chain: str, depth: int) -> None:
        """A prompt sub-module: its ``get_prompts`` keys are already covered by the parent."""
        if obj is None or id(obj) in self.seen or depth > _MAX_DEPTH:
            return
        self.seen.add(id(obj))
        self.out.extend(_text_prompts(obj, chain))
        try:
            modules = list(obj._get_prompt_modules().items()) if isinstance(obj, PromptMixin) else []
        except Exception:
            modules = []
        for name, module in modules:
            self.children_only(module, _join(chain, name), depth + 1)
        for name, child in children(obj):
            self.visit(child, _join(chain, name), depth + 1)

    def _tool(self, obj: Any, chain: str) -> None:
        if not self.tool_descriptions:
            return
        binding = tool_binding(obj)
        if binding is not None:
            self.out.extend(_place([register(binding)], chain, obj, lambda b: "description"))


def _prompt_mixin(obj: Any, tree: set[int], chain: str) -> list[Any]:
    try:
        prompts = obj.get_prompts()
    except Exception:
        log.debug("get_prompts() failed on %r", obj, exc_info=True)
        return []
    out: list[Any] = []
    for slot, template in prompts.items():
        if not isinstance(template, BasePromptTemplate):
            continue
        retag = False
        for path, inner in iter_variants(template):
            existing = _reusable(inner, tree)
            if existing is not None:
                found = _expand(existing.owner, existing.slot, path, inner, PromptKeyBinding)
            else:
                base = PromptKeyBinding(obj, slot, path)
                inner.metadata[TAG] = base.key
                retag = True
                found = _expand(obj, slot, path, inner, PromptKeyBinding)
            out.extend(_place(found, chain, obj, _slot_namer(slot)))
        if retag:
            try:
                obj.update_prompts({slot: template})
            except Exception:
                log.debug("update_prompts() failed on %r for %s", obj, slot, exc_info=True)
            else:
                retag_rebuilt(obj, slot)
    return out


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


def _attr_templates(obj: Any, chain: str) -> list[Any]:
    """Prompt templates in plain attributes (chat engines, a pydantic program's ``_prompt``),
    each swapped for a tagged copy."""
    out: list[Any] = []
    try:
        attrs = sorted(vars(obj).items())
    except TypeError:
        return out
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
            found = _expand(obj, attr, path, inner, AttrTemplateBinding)
            out.extend(_place(found, chain, obj, lambda b: b.key.rsplit("/", 1)[-1]))
        if changed:
            try:
                setattr(obj, attr, tagged)
            except Exception:
                log.debug("cannot tag %s.%s", type(obj).__name__, attr, exc_info=True)
    return out


def _slot_namer(slot: str) -> Callable[[Any], str]:
    """``slot_of`` for :func:`_place`: the binding's variant path under ``slot``."""

    def slot_of(binding: Any) -> str:
        return f"{slot}{path_suffix(binding.path)}"

    return slot_of


def _text_prompts(obj: Any, chain: str) -> list[Any]:
    """Plain-text system prompts: ``system_prompt``/``_system_prompt`` and prefix messages."""
    out: list[Any] = []
    formatter = getattr(obj, "formatter", None)
    context = getattr(formatter, "context", None)
    if isinstance(context, str) and hasattr(obj, "system_prompt"):
        if context:
            out.append(register(ReActContextBinding(obj)))
        return _place(out, chain, obj, lambda b: "system_prompt")
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
    return _place(out, chain, obj, lambda b: b.key.rsplit("/", 1)[-1])
