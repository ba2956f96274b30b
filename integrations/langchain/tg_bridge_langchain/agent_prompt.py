"""The system prompt of a ``create_agent`` / ``create_react_agent`` graph as a live binding.

``langgraph.prebuilt.create_react_agent(model, tools, prompt=...)`` keeps a str or
``SystemMessage`` prompt the same way, one level down: the agent node's ``call_model`` reads
``static_model`` (``prompt_runnable | model``) from its closure, and the prompt runnable's
lambda holds the message in a closure cell; the same binding reads and writes that cell. A
callable prompt computes its text at call time: it cannot be written, and
:func:`unwritable_prompt` names it so the adapter can report it.

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
    "react_prompt_runnable",
    "template_record",
    "unwritable_prompt",
]

log = logging.getLogger(__name__)

_MODULE = "langchain.agents.factory"
_NODE_FUNCS = ("create_agent.<locals>.model_node", "create_agent.<locals>.amodel_node")
_CELL = "system_message"
# langgraph.prebuilt.create_react_agent: the "agent" node's call_model reads ``static_model``
# (``prompt_runnable | model``) from its closure; the prompt runnable is a RunnableCallable
# over a lambda holding the SystemMessage in a closure cell (``_system_message`` for a str
# prompt, ``prompt`` for a SystemMessage)
_REACT_MODULE = "langgraph.prebuilt.chat_agent_executor"
_REACT_FUNCS = ("create_react_agent.<locals>.call_model", "create_react_agent.<locals>.acall_model")
_REACT_PROMPT = "_get_prompt_runnable.<locals>.<lambda>"
_REACT_CELLS = ("_system_message", "prompt")
#: the binding of the create_agent model node currently running in this context
_current: contextvars.ContextVar[AgentPromptBinding | None] = contextvars.ContextVar(
    "tg_bridge_agent_prompt", default=None
)


def _is_node_func(fn: Any) -> bool:
    return (
        getattr(fn, "__module__", None) == _MODULE
        and getattr(fn, "__qualname__", None) in _NODE_FUNCS
    )


def _is_react_func(fn: Any) -> bool:
    return (
        getattr(fn, "__module__", None) == _REACT_MODULE
        and getattr(fn, "__qualname__", None) in _REACT_FUNCS
    )


def _funcs(obj: Any) -> list[Any]:
    try:
        attrs = obj.__dict__
    except AttributeError:
        return []
    return [attrs.get("func"), attrs.get("afunc")]


def is_model_node(obj: Any) -> bool:
    """True for the ``RunnableCallable`` of a ``create_agent`` graph's model node or of a
    ``create_react_agent`` graph's agent node. Cheap."""
    return any(_is_node_func(fn) or _is_react_func(fn) for fn in _funcs(obj))


def _cell_named(fn: Any, names: tuple[str, ...]) -> types.CellType | None:
    code: types.CodeType | None = getattr(fn, "__code__", None)
    closure: tuple[types.CellType, ...] | None = getattr(fn, "__closure__", None)
    if code is None or closure is None:
        return None
    for name in names:
        if name in code.co_freevars:
            return closure[code.co_freevars.index(name)]
    return None


def react_prompt_runnable(node: Any) -> Any:
    """The prompt runnable (first step of ``static_model``) of a create_react_agent agent
    node, or None (a dynamic model, another langgraph version)."""
    for fn in _funcs(node):
        if not _is_react_func(fn):
            continue
        cell = _cell_named(fn, ("static_model",))
        try:
            model = cell.cell_contents if cell is not None else None
        except ValueError:
            continue
        first = getattr(model, "first", None)
        if first is not None:
            return first
    return None


def _is_react_prompt_func(fn: Any) -> bool:
    return (
        getattr(fn, "__module__", None) == _REACT_MODULE
        and getattr(fn, "__qualname__", None) == _REACT_PROMPT
    )


def _cell_owners(node: Any) -> tuple[Any, tuple[str, ...]] | None:
    """The object whose functions hold the system message, and the cell names."""
    if any(_is_node_func(fn) for fn in _funcs(node)):
        return node, (_CELL,)
    prompt = react_prompt_runnable(node)
    if prompt is not None and any(_is_react_prompt_func(fn) for fn in _funcs(prompt)):
        return prompt, _REACT_CELLS
    return None


def _cells(node: Any) -> list[types.CellType]:
    """The distinct cells holding the agent's system message (one in langchain 1.x and
    langgraph 1.x: a node's sync and async functions share it)."""
    owner = _cell_owners(node)
    if owner is None:
        return []
    obj, names = owner
    found: list[types.CellType] = []
    for fn in _funcs(obj):
        if not (_is_node_func(fn) or _is_react_prompt_func(fn)):
            continue
        cell = _cell_named(fn, names)
        if cell is not None and all(cell is not c for c in found):
            found.append(cell)
    return found


def unwritable_prompt(node: Any) -> str | None:
    """The name of a create_react_agent prompt that tg_bridge cannot write (a callable
    ``prompt=``: its text is computed at call time), else None. Never raises."""
    try:
        if not any(_is_react_func(fn) for fn in _funcs(node)):
            return None
        prompt = react_prompt_runnable(node)
        if prompt is None or type(prompt).__name__ != "RunnableCallable":
            return None
        fns = [fn for fn in _funcs(prompt) if fn is not None]
        if not fns or any(_is_react_prompt_func(fn) for fn in fns):
            return None
        fn = fns[0]
        return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
    except Exception:
        log.debug("could not inspect the agent prompt", exc_info=True)
        return None


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
        binding: AgentPromptBinding | None = cache.get("system_prompt")
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
    owner, _names = _cell_owners(node)  # type: ignore[misc]
    fresh = types.CellType(cells[0].cell_contents)
    try:
        for attr in ("func", "afunc"):
            fn = owner.__dict__.get(attr)
            if not (_is_node_func(fn) or _is_react_prompt_func(fn)) or fn.__closure__ is None:
                continue
            closure = tuple(fresh if any(c is old for old in cells) else c for c in fn.__closure__)
            clone = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, closure)
            clone.__kwdefaults__ = fn.__kwdefaults__
            clone.__qualname__ = fn.__qualname__
            clone.__annotations__ = dict(fn.__annotations__)
            clone.__dict__.update(fn.__dict__)
            setattr(owner, attr, clone)
    except Exception as exc:
        raise BindingError(f"cannot separate the copied agent's system prompt: {exc}") from exc
