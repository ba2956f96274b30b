"""Finding the live prompts (and opt-in tool descriptions) reachable from a LangChain target.

Walks the runnable graph: sequences (``steps``), parallels (``steps__``), branches
(``branches`` + ``default``), bound/configured wrappers (``RunnableBinding.bound``, and
``with_config``/``with_retry``/``with_fallbacks``), assigns and picks, runnables with
fallbacks, prompts nested in message lists, chains holding prompts in fields (legacy chains,
user classes with ``prompt``/``llm_chain`` attributes), and compiled agent graphs (their nodes'
runnables; the system prompt ``create_agent`` keeps in a closure of its model node is bound
through :mod:`.agent_prompt`), configurable alternatives, and runnables, prompts and tools held
in the closures of function runnables (``RunnableLambda``, langgraph's ``RunnableCallable``:
``RunnableWithMessageHistory`` keeps the wrapped chain only there). Iterative, cycle-safe,
deterministic (document order). Never raises: unknown objects are skipped.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import Any

from langchain_core.prompts import BasePromptTemplate
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool

from . import agent_prompt, registry
from .bindings import prompt_bindings
from .tools import bound_tool_bindings, tool_binding

__all__ = ["find_bindings", "find_prompts", "find_unwritable", "walk_paths"]

log = logging.getLogger(__name__)

# attributes that may hold child runnables / prompts, in the order we visit them
_CHILD_ATTRS = (
    "first", "middle", "last",  # RunnableSequence (``steps`` would repeat them)
    "steps__",  # RunnableParallel
    "branches", "default",  # RunnableBranch
    "bound",  # RunnableBinding / RunnableWithFallbacks' runnable is "runnable"
    "runnable", "fallbacks",
    "mapper",  # RunnableAssign
    "prompt", "llm", "llm_chain", "chain", "combine_documents_chain", "agent", "tools",
    "retriever", "question_generator",
    "_tools_by_name",  # langgraph's ToolNode
    "default_prompt", "conditionals",  # ConditionalPromptSelector
    "builder", "nodes",  # langgraph compiled graphs
    "alternatives",  # configurable_alternatives (the ``default`` is visited above)
)
# attributes holding plain functions whose closures may hold runnables: RunnableLambda and
# langgraph's RunnableCallable. RunnableWithMessageHistory keeps the wrapped chain ONLY in
# the closure of its ``_call_runnable_sync`` / ``_call_runnable_async`` lambdas.
_FUNC_ATTRS = ("func", "afunc")
_MAX_NODES = 10_000


def _children(obj: object) -> list[tuple[str, Any]]:
    """``obj``'s children with their labels (attribute, index, key or closure cell name)."""
    out: list[tuple[str, Any]] = []
    if isinstance(obj, Mapping):
        return [(f"[{k}]", v) for k, v in obj.items()]
    if isinstance(obj, (list, tuple)):
        return [(f"[{i}]", v) for i, v in enumerate(obj)]
    for attr in _CHILD_ATTRS:
        try:
            value = obj.__dict__.get(attr) if hasattr(obj, "__dict__") else None
        except Exception:
            value = None
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                # RunnableBranch keeps (condition, runnable) pairs
                if isinstance(item, tuple):
                    out.extend((f"{attr}[{i}][{j}]", part) for j, part in enumerate(item))
                else:
                    out.append((f"{attr}[{i}]", item))
        elif isinstance(value, Mapping):
            out.extend((f"{attr}[{k}]", v) for k, v in value.items())
        else:
            out.append((attr, value))
    # langgraph's PregelNode holds the node's runnable in ``bound``; StateNodeSpec in ``runnable``
    out.extend(_closure_children(obj))
    return out


def _closure_children(obj: object) -> list[tuple[str, Any]]:
    """Runnables, prompts and tools held in the closure cells of ``obj``'s functions (and of
    ``functools.partial`` wrappers around them), in cell order, labelled by variable name."""
    out: list[tuple[str, Any]] = []
    attrs = getattr(obj, "__dict__", None)
    if not isinstance(attrs, dict):
        return out
    for attr in _FUNC_ATTRS:
        fn = attrs.get(attr)
        for _ in range(4):  # unwrap a few partial layers, never loop
            inner = getattr(fn, "func", None)
            if not isinstance(fn, functools.partial) or inner is None:
                break
            out.extend((f"{attr}.args", v) for v in (*fn.args, *fn.keywords.values())
                       if _holds_prompts(v))
            fn = inner
        code = getattr(fn, "__code__", None)
        names = code.co_freevars if code is not None else ()
        for name, cell in zip(names, getattr(fn, "__closure__", None) or ()):
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell (a variable assigned later)
                continue
            if _holds_prompts(value):
                out.append((f"{attr}.{name}", value))
    return out


def _holds_prompts(value: object) -> bool:
    """Worth walking into: a runnable (chains, prompts, models), a tool, or a list of them."""
    if isinstance(value, (Runnable, BaseTool)):
        return True
    if isinstance(value, (list, tuple)):
        return any(isinstance(v, (Runnable, BaseTool)) for v in value[:50])
    return False


def _walk(target: object) -> list[Any]:
    """Every object reachable from ``target`` (pre-order, each once)."""
    return [obj for obj, _ in walk_paths(target)]


def walk_paths(target: object) -> list[tuple[Any, str]]:
    """Every object reachable from ``target`` with the path it was first reached by
    (pre-order, each object once). A path is made of attribute names, indexes, mapping keys
    and closure variable names (``bound/first/messages[0]``): the same for every instance the
    app's code builds, hence usable by a fresh process."""
    seen: set[int] = set()
    order: list[tuple[Any, str]] = []
    stack: list[tuple[Any, str]] = [(target, "")]
    while stack and len(order) < _MAX_NODES:
        obj, path = stack.pop()
        if obj is None or isinstance(obj, (str, bytes, int, float, bool)) or id(obj) in seen:
            continue
        seen.add(id(obj))
        order.append((obj, path))
        if isinstance(obj, BasePromptTemplate):
            continue  # a prompt's insides are its bindings, not further runnables
        try:
            kids = _children(obj)
        except Exception:
            log.debug("cannot walk into %r", type(obj).__name__, exc_info=True)
            continue
        stack.extend(
            (child, f"{path}/{label}" if path and not label.startswith("[") else f"{path}{label}")
            for label, child in reversed(kids)
        )
    return order


def find_prompts(target: object) -> list[Any]:
    """Every prompt object reachable from ``target`` in document order."""
    return [obj for obj in _walk(target) if isinstance(obj, BasePromptTemplate)]


def find_bindings(target: object, *, tool_descriptions: bool = False) -> list[Any]:
    """Every binding reachable from ``target``: prompt texts, plus tool descriptions when
    ``tool_descriptions``. A tool's description is ONE binding: its ``BaseTool`` (which
    ``create_agent`` binds on every call and tool spans report) linked to the schema dicts a
    model already holds for a tool of that name (``bind_tools`` in ``create_react_agent``),
    so a write reaches both; schemas of tools with no BaseTool in reach get their own."""
    found: list[Any] = []
    tools: list[Any] = []
    schemas: list[tuple[str, list[Any]]] = []
    for obj, path in walk_paths(target):
        if isinstance(obj, BasePromptTemplate):
            for binding in prompt_bindings(obj):
                _locate(binding, f"{path}/{binding.name}", obj)
                found.append(binding)
        elif agent_prompt.is_model_node(obj):
            agent_binding = agent_prompt.agent_prompt_binding(obj)
            if agent_binding is not None:
                found.append(_locate(agent_binding, f"{path}/system_prompt", obj))
        elif tool_descriptions and isinstance(obj, BaseTool):
            described = tool_binding(obj)
            if described is not None:
                found.append(_locate(described, f"{path}/description", obj))
                tools.append(described)
        elif tool_descriptions and isinstance(obj, Runnable):
            kwargs = getattr(obj, "__dict__", {}).get("kwargs")
            if isinstance(kwargs, Mapping) and isinstance(kwargs.get("tools"), list):
                key = registry.ensure_key(obj, "bound:")
                if key is not None:
                    schemas.append((key, kwargs["tools"]))
    by_name = {b.tool.name: b for b in tools}
    for key, listed in schemas:
        for schema_binding in bound_tool_bindings(key, listed):
            owner = by_name.get(schema_binding.name)
            if owner is not None:
                owner.link(schema_binding.schema)
            else:
                found.append(schema_binding)
    return found


def _locate(binding: Any, path: str, owner: object) -> Any:
    """Record where ``binding`` sits in the app walked (``app_path``, ``owner_type``): a saved
    patch records them and ``apply_patch`` on a fresh instance matches by them, so two
    prompts with the same text are never confused."""
    try:
        binding.app_path = path.lstrip("/")
        binding.owner_type = type(owner).__name__
    except Exception:  # a binding type that takes no attributes: it matches by key and text
        log.debug("cannot locate %r", binding, exc_info=True)
    return binding


def find_unwritable(target: object) -> list[str]:
    """Names of the prompts reachable from ``target`` that cannot be written (an agent
    prompt given as a function), in document order. Never raises."""
    names: list[str] = []
    for obj in _walk(target):
        if agent_prompt.is_model_node(obj):
            name = agent_prompt.unwritable_prompt(obj)
            if name is not None and name not in names:
                names.append(name)
    return names
