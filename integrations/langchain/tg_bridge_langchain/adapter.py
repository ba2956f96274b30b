"""LangChainAdapter: the object behind the ``tg_bridge.adapters`` entry point ``langchain``."""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Mapping
from typing import Any

from langchain_core.language_models import BaseLanguageModel
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool

from tg_bridge.config import get_settings
from tg_bridge.exceptions import UnwritablePromptWarning, UsageError

from . import hooks
from .engine import LangChainEngine
from .handler import SpanHandler
from .runner import copy_target, run_target
from .walk import find_bindings, find_unwritable

__all__ = ["LangChainAdapter"]

log = logging.getLogger(__name__)


class LangChainAdapter:
    """Implements :class:`tg_bridge.adapters.Adapter` for LangChain.

    ``tool_descriptions`` (default False) makes tool descriptions parameters too: tool spans
    then carry ``tg_bridge.tool_bindings`` and :meth:`bindings` lists them. Set it before
    instrumenting (``adapter.tool_descriptions = True``), or pass it to :meth:`bindings`.
    """

    name = "langchain"

    def __init__(self, *, tool_descriptions: bool = False) -> None:
        self.tool_descriptions = tool_descriptions
        self._lock = threading.Lock()
        self._handler: SpanHandler | None = None
        self._reported: set[tuple[int, str]] = set()

    # -- capture ----------------------------------------------------------------------------
    def instrument(self, tracer_provider: Any = None) -> None:
        """Install the hooks (idempotent; a second call with a new provider switches to it)."""
        with self._lock:
            if tracer_provider is None:
                from tg_bridge.capturing import tracer_provider as default_provider

                tracer_provider = default_provider()
            tracer = tracer_provider.get_tracer("tg_bridge_langchain")
            handler = self._handler
            if handler is None or handler.tracer is not tracer:
                handler = SpanHandler(tracer, tool_descriptions=self.tool_descriptions)
                self._handler = handler
            handler.tool_descriptions = self.tool_descriptions
            hooks.install(handler)

    def uninstrument(self) -> None:
        """Remove every hook (idempotent)."""
        with self._lock:
            hooks.uninstall()
            self._handler = None

    @property
    def instrumented(self) -> bool:
        return hooks.installed_handler() is not None

    # -- targets ----------------------------------------------------------------------------
    def owns(self, obj: Any) -> bool:
        """True for runnables (chains, prompts, models, retrievers, compiled graphs) and tools."""
        return isinstance(obj, (Runnable, BaseLanguageModel, BaseTool))

    def bindings(self, target: Any, *, tool_descriptions: bool | None = None) -> list[Any]:
        """Every live binding reachable from ``target``, in document order. Tool descriptions
        are included when ``tool_descriptions`` is true, else when this adapter's flag or the
        ``tool_descriptions`` setting (:func:`tg_bridge.context`) is on."""
        with_tools = tool_descriptions
        if with_tools is None:
            with_tools = self.tool_descriptions or get_settings().tool_descriptions
        found = find_bindings(target, tool_descriptions=with_tools)
        for name in self.unwritable(target):
            if (id(target), name) in self._reported:  # once per app object, not per listing
                continue
            if len(self._reported) > 1000:  # bounded: ids of dead apps can be reused
                self._reported.clear()
            self._reported.add((id(target), name))
            message = (f"the prompt {name} of {type(target).__name__} is a function: tg_bridge"
                       " cannot write it and leaves it as it is (pass a str or SystemMessage)")
            log.warning(message)
            warnings.warn(message, UnwritablePromptWarning, stacklevel=2)
        return found

    def unwritable(self, target: Any) -> list[str]:
        """Names of the prompts of ``target`` that cannot be written (e.g. a callable
        ``prompt=`` of ``create_react_agent``). Never raises."""
        return find_unwritable(target)

    def engine(self, model: Any, **kwargs: Any) -> LangChainEngine:
        """A tg_bridge Engine calling ``model`` (a chat model or LLM)."""
        if not isinstance(model, BaseLanguageModel):
            bound = getattr(model, "bound", None)
            if isinstance(bound, BaseLanguageModel):
                model = bound
            else:
                raise UsageError(f"not a LangChain language model: {type(model).__name__}")
        return LangChainEngine(model, **kwargs)

    async def ainvoke(
        self, target: Any, inputs: Mapping[str, Any], *, config: Mapping[str, Any] | None = None
    ) -> str:
        """Run ``target`` on one example's inputs (with ``config`` as its RunnableConfig);
        its output as text."""
        return await run_target(target, inputs, config=config)

    def copy(self, target: Any) -> Any:
        """An independent copy whose prompts can be written without touching ``target``."""
        return copy_target(target)

    def __repr__(self) -> str:
        return f"<LangChainAdapter instrumented={self.instrumented}>"
