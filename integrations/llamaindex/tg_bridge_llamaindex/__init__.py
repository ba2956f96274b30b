"""tg-bridge-llamaindex: capture, prompt bindings, write-back and a host-model engine for
LlamaIndex apps. Found by tg_bridge through the ``tg_bridge.adapters`` entry point ``llamaindex``
(this module's :data:`adapter`).

Importing this module installs nothing; :meth:`LlamaIndexAdapter.instrument` does.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from .engine import LlamaIndexEngine
from .engine_llm import EngineLLM

__all__ = ["EngineLLM", "LlamaIndexAdapter", "LlamaIndexEngine", "adapter"]

log = logging.getLogger(__name__)


class LlamaIndexAdapter:
    """The :class:`tg_bridge.adapters.Adapter` for LlamaIndex (llama-index-core >= 0.12).

    ``tool_descriptions`` (default False) makes tool descriptions parameters too: tool spans
    then carry ``tg_bridge.tool_bindings`` and :meth:`bindings` lists them (the core's
    ``tool_descriptions`` setting, where it exists, turns it on as well).
    """

    name = "llamaindex"

    def __init__(self, *, tool_descriptions: bool = False) -> None:
        self.tool_descriptions = tool_descriptions

    def instrument(self, tracer_provider: Any = None) -> None:
        """Add our span and event handlers to LlamaIndex's root dispatcher. Idempotent.

        Spans go to ``tracer_provider`` (default: ``tg_bridge.capturing.tracer_provider()``).
        """
        from . import handlers

        if handlers.installed() is not None:
            return
        if tracer_provider is None:
            from tg_bridge.capturing import tracer_provider as _provider

            tracer_provider = _provider()
        handlers.install(tracer_provider.get_tracer("tg_bridge_llamaindex"))

    def uninstrument(self) -> None:
        """Remove our handlers; spans still open are ended. Idempotent."""
        from . import handlers

        handlers.remove()

    def owns(self, obj: Any) -> bool:
        from .runner import owns

        return owns(obj)

    def bindings(self, target: Any, *, tool_descriptions: bool | None = None) -> list[Any]:
        """Every live prompt of ``target`` (tags them so capture can name them; text unchanged).

        Tool descriptions are included when ``tool_descriptions`` is true, else when this
        adapter's flag or the core setting is on."""
        from .discover import collect_bindings
        from .runtime import forget
        from .tools import enabled

        forget(target)
        with_tools = enabled() if tool_descriptions is None else tool_descriptions
        return collect_bindings(target, tool_descriptions=with_tools)

    def engine(self, model: Any) -> LlamaIndexEngine:
        """A tg_bridge Engine that calls the LlamaIndex LLM ``model``."""
        return LlamaIndexEngine(model)

    async def ainvoke(self, target: Any, inputs: Mapping[str, Any]) -> str:
        from .runner import ainvoke

        return await ainvoke(target, inputs)

    def copy(self, target: Any) -> Any:
        """An independent copy (prompts re-tagged with the copy's own binding keys)."""
        from .discover import collect_bindings
        from .runner import copy_target
        from .tools import enabled

        clone = copy_target(target)
        collect_bindings(clone, tool_descriptions=enabled())
        return clone

    def __repr__(self) -> str:
        return "<LlamaIndexAdapter>"


#: The entry-point object.
adapter = LlamaIndexAdapter()
