"""The adapter protocol: how the core talks to a host framework without importing it.

Adapters are found through the entry-point group ``tg_bridge.adapters`` (distributions
``tg-bridge-langchain`` and ``tg-bridge-llamaindex``). Each entry point names an object
implementing :class:`Adapter`. Loading is lazy AND selective: an adapter of a known framework
(:data:`HOST_PACKAGES`) is imported only once that framework is already imported by the
process, so a LangChain app never pays for importing LlamaIndex (an object of a framework
implies its package is imported). Adapters of unknown entry points load at the first call.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .patching.binding import Binding

if TYPE_CHECKING:
    from .engines.base import Engine

__all__ = ["HOST_PACKAGES", "Adapter", "adapter_for", "frameworks_in_use", "load_adapters"]

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

    Optional (looked up with ``getattr``/signature, so older adapters keep working):

    - ``ainvoke(target, inputs, *, config=None)``: the host's run config for the call
      (``optimize(config=...)``); an adapter without the parameter cannot take one and
      ``optimize`` says so (UsageError) instead of dropping it.
    - ``unwritable(target) -> list[str]``: names of prompts that cannot be bound for writing
      (reported in a warning and ``OptimizationResult.unwritable``).
    - Bindings may expose ``write_lock`` (a lock the host's formatting path takes; see
      :mod:`tg_bridge.patching.write_group`) and ``app_path`` / ``owner_type`` (where the
      prompt sits in the app, stable across processes).
    - The ``tool_descriptions`` setting (:func:`tg_bridge.context`) asks adapters to list tool
      descriptions as parameters too.
    """

    name: str

    # Targets, models and copies are the host framework's own objects, which the core never
    # imports: Any on purpose (each adapter narrows them to its framework's types).
    def instrument(self, tracer_provider: Any) -> None: ...

    def uninstrument(self) -> None: ...

    def owns(self, obj: object) -> bool: ...

    def bindings(self, target: Any) -> list[Binding]: ...

    def engine(self, model: Any) -> Engine: ...

    async def ainvoke(self, target: Any, inputs: Mapping[str, Any], config: object = None) -> str: ...

    def copy(self, target: Any) -> Any: ...


#: entry point name -> the top-level packages of its host framework. A framework is "in use"
#: once one of them is in ``sys.modules``; only then is its adapter imported.
HOST_PACKAGES: dict[str, tuple[str, ...]] = {
    "langchain": ("langchain_core",),
    "llamaindex": ("llama_index",),
}

_lock = threading.Lock()
_entry_points: list[EntryPoint] | None = None
#: entry point name -> its adapter (None: it failed to load; not retried)
_loaded: dict[str, Adapter | None] = {}


def _discover() -> list[EntryPoint]:
    global _entry_points
    if _entry_points is None:
        _entry_points = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
    return _entry_points


def _in_use(name: str) -> bool:
    packages = HOST_PACKAGES.get(name)
    return packages is None or any(p in sys.modules for p in packages)


def frameworks_in_use() -> tuple[str, ...]:
    """Names of the adapters whose host framework is imported now (cheap: a few dict
    lookups). Callers compare it between calls to notice a framework imported later."""
    return tuple(ep.name for ep in _discover() if _in_use(ep.name))


def load_adapters() -> list[Adapter]:
    """The installed adapters whose host framework the process has imported, each loaded
    once, in entry point name order; broken ones are logged and skipped. Calling it again
    after importing another framework adds that framework's adapter."""
    with _lock:
        found: list[Adapter] = []
        for ep in _discover():
            if not _in_use(ep.name):
                continue
            if ep.name not in _loaded:
                try:
                    _loaded[ep.name] = ep.load()
                except Exception:  # a missing host framework must not break the core
                    log.debug("adapter %s could not be loaded", ep.name, exc_info=True)
                    _loaded[ep.name] = None
            adapter = _loaded[ep.name]
            if adapter is not None:
                found.append(adapter)
        return found


def adapter_for(obj: object) -> Adapter | None:
    """The adapter that owns ``obj``, or None."""
    for adapter in load_adapters():
        try:
            if adapter.owns(obj):
                return adapter
        except Exception:
            log.debug("adapter %s failed on owns()", adapter.name, exc_info=True)
    return None
