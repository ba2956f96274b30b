"""instrument() / uninstrument(): install or remove every adapter's capture hooks.

Adapters come from the ``tg_bridge.adapters`` entry points (:func:`tg_bridge.adapters.load_adapters`).
Both calls are idempotent and thread-safe. An adapter whose hook installation fails is logged
and skipped; it never breaks the caller (a broken LangChain adapter must not stop LlamaIndex
capture, nor the app).
"""

from __future__ import annotations

import logging
import threading

from .. import adapters as _adapters
from .provider import tracer_provider

__all__ = ["instrument", "instrumented", "uninstrument"]

log = logging.getLogger("tg_bridge.capture")

_lock = threading.RLock()
_active: list[object] | None = None  # adapters whose instrument() succeeded; None = not done
_frameworks: tuple[str, ...] = ()  # the frameworks in use when _active was computed


def instrument() -> list[str]:
    """Install the capture hooks of every adapter whose framework is in use (see
    :func:`tg_bridge.adapters.load_adapters`); a framework imported later is instrumented at
    the next call. Thread-safe, never raises for a failing adapter. Returns the names of the
    adapters now instrumented."""
    global _active, _frameworks
    active = _active
    # fast path: capture() calls this on every block
    if active is not None and _adapters.frameworks_in_use() == _frameworks:
        return _names(active)
    with _lock:
        frameworks = _adapters.frameworks_in_use()
        if _active is None or frameworks != _frameworks:
            provider = tracer_provider()
            done: list[object] = list(_active or [])
            for adapter in _adapters.load_adapters():
                if any(adapter is a for a in done):
                    continue
                name = getattr(adapter, "name", repr(adapter))
                try:
                    adapter.instrument(provider)
                except Exception:
                    log.warning("tg_bridge adapter %s failed to instrument; skipped", name, exc_info=True)
                    continue
                done.append(adapter)
                log.debug("tg_bridge adapter %s instrumented", name)
            _active, _frameworks = done, frameworks
        return _names(_active)


def uninstrument() -> None:
    """Remove the hooks installed by :func:`instrument`. Idempotent, thread-safe; an adapter
    that fails to uninstrument is logged and skipped."""
    global _active
    with _lock:
        active, _active = _active, None
        for adapter in reversed(active or []):
            try:
                adapter.uninstrument()  # type: ignore[attr-defined]
            except Exception:
                log.warning(
                    "tg_bridge adapter %s failed to uninstrument",
                    getattr(adapter, "name", repr(adapter)),
                    exc_info=True,
                )


def instrumented() -> list[str]:
    """Names of the adapters currently instrumented (empty when not instrumented)."""
    return _names(_active or [])


def _names(adapters: list[object]) -> list[str]:
    return [str(getattr(a, "name", repr(a))) for a in adapters]
