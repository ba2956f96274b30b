"""The system prompt of a LangChain 1.x ``create_agent`` graph as a live binding.

Where LangChain keeps it (langchain 1.x, ``langchain/agents/factory.py``): ``create_agent``
turns ``system_prompt`` into a ``SystemMessage`` held in the local variable ``system_message``,
which the two functions of the graph's ``"model"`` node (``model_node`` / ``amodel_node``,
wrapped in a langgraph ``RunnableCallable``) read as a closure variable on every call. No
object exposes it, so the binding reads and writes that closure cell
(``types.CellType.cell_contents``). ``write()`` stores a NEW ``SystemMessage`` (a
``model_copy`` with the new content, other fields kept) instead of editing the old one, so a
``SystemMessage`` the user passed in and may share elsewhere is never mutated; the next
``invoke``/``ainvoke``/``stream`` of the agent sends the new text. Writing the original text
back restores it byte for byte.

Capture: hooks around ``RunnableCallable.invoke/ainvoke`` (see :mod:`.hooks`) call
:func:`enter`/:func:`leave`, which publish the running model node's binding in a ContextVar;
the span handler then records a ``tg_bridge.templates`` record (format ``"none"``, role
``"system"``) on the LLM span whose first message is that system prompt, and registers the
binding with the capture Run. Reconstruction matches the record to the message by text.

Limits: only text content (a ``SystemMessage`` with content blocks gets no binding); a
middleware that replaces ``request.system_message`` (e.g. ``dynamic_prompt``) wins at call
time, its message no longer matches the record and the parameter stays unbound there. A
LangChain version that stores the prompt elsewhere yields no binding (logged at debug level),
never an error. Not thread-safe against a concurrent invoke of the same agent (a run sees the
old or the new message, never a mix).
"""

from __future__ import annotations

import contextvars
import dataclasses
import logging
import types
from typing import Any

from langchain_core.messages import BaseMessage, SystemMessage
from tg_bridge.exceptions import BindingError

from . import registry

__all__ = [
    "AgentPromptBinding",
    "agent_prompt_binding",
    "current_binding",
    "detach",
    "enter",
    "is_model_node",
    "leave",
    "template_record",
]

log = logging.getLogger(__name__)

_MODULE = "langchain.agents.factory"
_NODE_FUNCS = ("create_agent.<locals>.model_node", "create_agent.<locals>.amodel_node")
_CELL = "system_message"
#: the binding of the create_agent model node currently running in this context
_current: contextvars.ContextVar[AgentPromptBinding | None] = contextvars.ContextVar(
    "tg_bridge_agent_prompt", default=None
)


def _is_node_func(fn: Any) -> bool:
    return (
        getattr(fn, "__module__", None) == _MODULE
        and getattr(fn, "__qualname__", None) in _NODE_FUNCS
    )


def is_model_node(obj: Any) -> bool:
    """True for the ``RunnableCallable`` of a ``create_agent`` graph's model node. Cheap."""
    try:
        attrs = obj.__dict__
    except AttributeError:
        return False
    return _is_node_func(attrs.get("func")) or _is_node_func(attrs.get("afunc"))


def _cells(node: Any) -> list[types.CellType]:
    """The distinct ``system_message`` cells of the node's functions (one in langchain 1.x:
    both closures share it)."""
    found: list[types.CellType] = []
    for attr in ("func", "afunc"):
        fn = node.__dict__.get(attr)
        if not _is_node_func(fn):
            continue
        names = fn.__code__.co_freevars
        if _CELL not in names or fn.__closure__ is None:
            continue
        cell = fn.__closure__[names.index(_CELL)]
        if all(cell is not c for c in found):
            found.append(cell)
    return found


@dataclasses.dataclass(eq=False)
class AgentPromptBinding:
    """The system prompt of one ``create_agent`` graph (implements tg_bridge's Binding).

    ``read()`` returns the text the next model call sends; ``write(text)`` swaps in a new
    ``SystemMessage`` carrying ``text``. Both raise :class:`BindingError` when the agent no
    longer holds a text system message (e.g. it was built without one).
    """

    key: str
    node: Any = dataclasses.field(repr=False)
    template_format: str = "none"

    def _message(self) -> SystemMessage:
        cells = _cells(self.node)
        message = cells[0].cell_contents if cells else None
        if not isinstance(message, SystemMessage) or not isinstance(message.content, str):
            raise BindingError(f"{self.key}: the agent holds no text system prompt")
        return message

    def read(self) -> str:
        return self._message().content  # type: ignore[return-value]

    def write(self, value: str) -> None:
        if not isinstance(value, str):
            raise BindingError(f"{self.key}: a system prompt must be a str, got {type(value)!r}")
        message = self._message()
        try:
            replacement = message.model_copy(update={"content": value})
            for cell in _cells(self.node):
                cell.cell_contents = replacement
        except Exception as exc:
            raise BindingError(f"cannot write {self.key}: {exc}") from exc


def agent_prompt_binding(node: Any) -> AgentPromptBinding | None:
    """The binding of a model node's system prompt, or None (not a create_agent model node,
    no system prompt, content blocks). The same object for the life of the node. Never raises."""
    try:
        if not is_model_node(node):
            return None
        cells = _cells(node)
        message = cells[0].cell_contents if cells else None
        if not isinstance(message, SystemMessage) or not isinstance(message.content, str):
            return None
        key = registry.ensure_key(node, "agent:")
        if key is None:
            return None
        cache = registry.extras(key)
        binding = cache.get("system_prompt")
        if binding is None:
            binding = cache.setdefault("system_prompt", AgentPromptBinding(f"{key}/system_prompt", node))
        return binding
    except Exception:
        log.debug("no system prompt binding for %r", type(node).__name__, exc_info=True)
        return None


def enter(node: Any) -> contextvars.Token[AgentPromptBinding | None] | None:
    """Publish ``node``'s binding while it runs (hook side). Returns a token for :func:`leave`,
    or None when ``node`` is not an agent model node. Never raises."""
    try:
        if not is_model_node(node):
            return None
        return _current.set(agent_prompt_binding(node))
    except Exception:
        log.debug("agent prompt hook failed", exc_info=True)
        return None


def leave(token: contextvars.Token[AgentPromptBinding | None] | None) -> None:
    """Undo :func:`enter`. Never raises."""
    if token is None:
        return
    try:
        _current.reset(token)
    except ValueError:  # reset from another context (should not happen): just clear it
        _current.set(None)


def current_binding() -> AgentPromptBinding | None:
    """The binding of the create_agent model node running in this context, if any."""
    return _current.get()


def template_record(binding: AgentPromptBinding, messages: list[Any]) -> dict[str, Any] | None:
    """The ``tg_bridge.templates`` record for a model call whose messages start with the
    agent's system prompt (None when they do not, e.g. a middleware replaced it)."""
    first = messages[0] if messages else None
    if not isinstance(first, BaseMessage) or first.type != "system":
        return None
    text = binding.read()
    if first.content != text:
        return None
    return {
        "binding": binding.key,
        "name": "system_prompt",
        "role": "system",
        "template": text,
        "format": "none",
        "index": 0,
    }


def detach(node: Any) -> None:
    """Give a COPIED model node its own system prompt cell.

    ``copy.deepcopy`` treats functions as atomic, so a deep-copied agent shares the closure
    cells of the original and writing the copy's prompt would change the original. This
    rebuilds the node's functions over one fresh cell holding a copy of the message. Raises
    :class:`BindingError` if the functions cannot be rebuilt.
    """
    cells = _cells(node)
    if not cells:
        return
    fresh = types.CellType(cells[0].cell_contents)
    try:
        for attr in ("func", "afunc"):
            fn = node.__dict__.get(attr)
            if not _is_node_func(fn) or fn.__closure__ is None:
                continue
            closure = tuple(fresh if any(c is old for old in cells) else c for c in fn.__closure__)
            clone = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, closure)
            clone.__kwdefaults__ = fn.__kwdefaults__
            clone.__qualname__ = fn.__qualname__
            clone.__annotations__ = dict(fn.__annotations__)
            clone.__dict__.update(fn.__dict__)
            setattr(node, attr, clone)
    except Exception as exc:
        raise BindingError(f"cannot separate the copied agent's system prompt: {exc}") from exc
