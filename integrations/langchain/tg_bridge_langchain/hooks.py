"""Installing and removing the capture hooks in LangChain.

Why a configure hook and not a wrapped ``BaseCallbackManager.__init__`` (OpenInference's
way): ``langchain_core.tracers.context.register_configure_hook`` is LangChain's own extension
point, consulted every time a callback manager is configured for a run (invoke, ainvoke,
batch, abatch, stream, astream, tools, retrievers), and it adds the handler as inheritable so
child runs in thread pools and ``asyncio.gather`` tasks get it through their parent's
manager. It is normally given a ContextVar; a ContextVar set once would not be visible in
threads started from a fresh context, so we register a small switch object instead whose
``get()`` returns the handler while instrumented, in every thread and task, and None inside
tg_bridge's own engine calls (so those runs get no handler at all). ``uninstrument()`` turns
the switch off and removes it from LangChain's hook list, so no trace of it stays.

Prompt and tool objects are tagged with binding keys (:mod:`.registry`) by wrapping
``BasePromptTemplate.invoke/ainvoke`` and ``BaseTool.run/arun`` at the class level; the
wrappers are removed again by ``uninstrument()``. langgraph's ``RunnableCallable.invoke/ainvoke``
is wrapped the same way so a ``create_agent`` model node publishes its system prompt binding
while it runs (:mod:`.agent_prompt`); langgraph is never imported for that: the wrap happens
as soon as it is loaded (at install, or at the first chain run seen afterwards).

``instrument``/``uninstrument`` are idempotent and thread-safe (one lock).
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
from typing import TYPE_CHECKING, Any

from langchain_core.prompts import BasePromptTemplate
from langchain_core.tools import BaseTool

from tg_bridge._internal import is_internal

from . import agent_prompt, registry

if TYPE_CHECKING:
    from .handler import SpanHandler

__all__ = ["install", "uninstall", "installed_handler"]

log = logging.getLogger(__name__)

_lock = threading.Lock()
_WRAPPED_FLAG = "__tg_bridge_wrapped__"


class _Switch:
    """Stands in for the ContextVar LangChain's configure hook expects (only ``get()``)."""

    __slots__ = ("handler",)

    def __init__(self) -> None:
        self.handler: SpanHandler | None = None

    def get(self) -> SpanHandler | None:
        handler = self.handler
        if handler is None or is_internal():
            return None
        return handler


_switch = _Switch()
_registered = False
_originals: list[tuple[type, str, Any]] = []
_agent_nodes_wrapped = False
_LANGGRAPH_RUNNABLE = "langgraph._internal._runnable"


def installed_handler() -> SpanHandler | None:
    """The active span handler, or None when not instrumented."""
    return _switch.handler


def install(handler: SpanHandler) -> None:
    """Route every LangChain run to ``handler`` and tag prompts/tools. Idempotent."""
    global _registered
    with _lock:
        _switch.handler = handler
        if not _registered:
            from langchain_core.tracers.context import register_configure_hook

            register_configure_hook(_switch, True)  # type: ignore[arg-type]
            _registered = True
        if not _originals:
            _wrap(BasePromptTemplate, "invoke", "")
            _wrap(BasePromptTemplate, "ainvoke", "")
            _wrap(BaseTool, "run", "tool:")
            _wrap(BaseTool, "arun", "tool:")
        _wrap_agent_nodes()


def uninstall() -> None:
    """Stop capturing: switch off, drop the configure hook, unwrap classes. Idempotent."""
    global _registered, _agent_nodes_wrapped
    with _lock:
        _switch.handler = None
        _agent_nodes_wrapped = False
        if _registered:
            try:
                from langchain_core.tracers import context as lc_context

                hooks = lc_context._configure_hooks
                hooks[:] = [h for h in hooks if h[0] is not _switch]  # type: ignore[comparison-overlap]  # our stand-in
                _registered = False
            except Exception:  # private list moved: the switch stays registered but off
                log.debug("could not remove the LangChain configure hook", exc_info=True)
        while _originals:
            cls, attr, original = _originals.pop()
            if getattr(cls.__dict__.get(attr), _WRAPPED_FLAG, False):
                setattr(cls, attr, original)


def _wrap(cls: type, attr: str, kind: str) -> None:
    original = cls.__dict__[attr]
    if getattr(original, _WRAPPED_FLAG, False):
        return
    if attr.startswith("a"):

        @functools.wraps(original)
        async def async_wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            _tag(self, kind)
            return await original(self, *args, **kwargs)

        wrapper: Any = async_wrapper
    else:

        @functools.wraps(original)
        def sync_wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            _tag(self, kind)
            return original(self, *args, **kwargs)

        wrapper = sync_wrapper
    setattr(wrapper, _WRAPPED_FLAG, True)
    setattr(cls, attr, wrapper)
    _originals.append((cls, attr, original))


def ensure_agent_hooks() -> None:
    """Wrap langgraph's RunnableCallable if langgraph got loaded since install. Cheap after
    the first success; never imports langgraph; never raises (called from the handler)."""
    if _agent_nodes_wrapped or _switch.handler is None or _LANGGRAPH_RUNNABLE not in sys.modules:
        return
    try:
        with _lock:
            if _switch.handler is not None:
                _wrap_agent_nodes()
    except Exception:
        log.debug("could not hook langgraph nodes", exc_info=True)


def _wrap_agent_nodes() -> None:
    # caller holds _lock
    global _agent_nodes_wrapped
    if _agent_nodes_wrapped:
        return
    module = sys.modules.get(_LANGGRAPH_RUNNABLE)
    cls = getattr(module, "RunnableCallable", None) if module is not None else None
    if not isinstance(cls, type) or "invoke" not in cls.__dict__ or "ainvoke" not in cls.__dict__:
        return
    for attr in ("invoke", "ainvoke"):
        original = cls.__dict__[attr]
        if getattr(original, _WRAPPED_FLAG, False):
            continue
        wrapper = _scoped_async(original) if attr == "ainvoke" else _scoped_sync(original)
        setattr(wrapper, _WRAPPED_FLAG, True)
        setattr(cls, attr, wrapper)
        _originals.append((cls, attr, original))
    _agent_nodes_wrapped = True


def _scoped_sync(original: Any) -> Any:
    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        token = agent_prompt.enter(self) if _switch.handler is not None else None
        try:
            return original(self, *args, **kwargs)
        finally:
            agent_prompt.leave(token)

    return wrapper


def _scoped_async(original: Any) -> Any:
    @functools.wraps(original)
    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        token = agent_prompt.enter(self) if _switch.handler is not None else None
        try:
            return await original(self, *args, **kwargs)
        finally:
            agent_prompt.leave(token)

    return wrapper


def _tag(obj: Any, kind: str) -> None:
    # on the host's request path: never raise
    if _switch.handler is None or is_internal():
        return
    try:
        registry.ensure_key(obj, kind)
    except Exception:
        log.debug("tagging %r failed", type(obj).__name__, exc_info=True)
