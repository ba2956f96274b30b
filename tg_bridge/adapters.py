"""The adapter protocol: how the core talks to a host framework without importing it.

Adapters are found through the entry-point group ``tg_bridge.adapters`` (distributions
``tg-bridge-langchain`` and ``tg-bridge-llamaindex``). Each entry point names an object
implementing :class:`Adapter`. Loading is lazy: nothing is imported until needed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

from .patching.binding import Binding

__all__ = ["Adapter", "adapter_for", "load_adapters"]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "tg_bridge.adapters"


@runtime_checkable
class Adapter(Protocol):
    """What a host-framework adapter provides.

    - ``instrument(tracer_provider)`` / ``uninstrument()``: install / remove capture hooks;
      both idempotent; never raise into the host afterwards.
    - ``owns(obj)``: True when ``obj`` (an app target or a model) belongs to this framework.
    - ``bindings(target)``: every live prompt binding reachable from ``target``.
    - ``engine(model)``: an :class:`~tg_bridge.engines.base.Engine` over a host model object.
    - ``ainvoke(target, inputs)``: run ``target`` once on an example's input mapping and return
      its output as text (the optimize loop calls this under capture).
    - ``copy(target)``: an independent copy whose prompts can be written without touching
      ``target`` (``optimize(in_place=False)``).
    """

    name: str

    def instrument(self, tracer_provider: Any) -> None: ...

    def uninstrument(self) -> None: ...

    def owns(self, obj: Any) -> bool: ...

    def bindings(self, target: Any) -> list[Binding]: ...

    def engine(self, model: Any) -> Any: ...

    async def ainvoke(self, target: Any, inputs: Mapping[str, Any]) -> str: ...

    def copy(self, target: Any) -> Any: ...


_lock = threading.Lock()
_loaded: list[Adapter] | None = None


def load_adapters() -> list[Adapter]:
    """Every installed adapter, loaded once; broken ones are logged and skipped."""
    global _loaded
    with _lock:
        if _loaded is None:
            found: list[Adapter] = []
            for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
                try:
                    found.append(ep.load())
                except Exception:  # a missing host framework must not break the core
                    log.debug("adapter %s could not be loaded", ep.name, exc_info=True)
            _loaded = found
        return list(_loaded)


def adapter_for(obj: Any) -> Adapter | None:
    """The adapter that owns ``obj``, or None."""
    for adapter in load_adapters():
        try:
            if adapter.owns(obj):
                return adapter
        except Exception:
            log.debug("adapter %s failed on owns()", adapter.name, exc_info=True)
    return None
