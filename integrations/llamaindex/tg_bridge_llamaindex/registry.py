"""Process-wide tables: a stable key per app object, and the live binding behind each key.

Both tables are bounded by the app objects alive: entries die with their object (weak
references; objects that cannot be weakly referenced are held strongly, which only happens for
exotic owners). Thread-safe.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["binding_for", "owner_key", "register", "strong_or_weak"]

_lock = threading.Lock()
_counter = itertools.count(1)
#: id(obj) -> (reference, key). The weakref callback removes the entry when obj dies, so a
#: recycled id never inherits a dead object's key.
_owner_keys: dict[int, tuple[Callable[[], Any], str]] = {}
_bindings: dict[str, Any] = {}


def strong_or_weak(obj: object) -> Callable[[], Any]:
    """A weak reference to ``obj`` when it supports one, else a strong one (same call shape)."""
    try:
        return weakref.ref(obj)
    except TypeError:
        return lambda: obj


def owner_key(obj: object) -> str:
    """``llamaindex:<ClassName>#<n>``, assigned on first sight and stable for obj's life."""
    oid = id(obj)
    with _lock:
        entry = _owner_keys.get(oid)
        if entry is not None and entry[0]() is obj:
            return entry[1]
        key = f"llamaindex:{type(obj).__name__}#{next(_counter)}"
        try:
            ref: Callable[[], Any] = weakref.ref(obj, _forgetter(oid))
        except TypeError:
            ref = strong_or_weak(obj)
        _owner_keys[oid] = (ref, key)
        return key


def _forgetter(oid: int) -> Callable[[object], None]:
    """A weakref callback dropping ``oid``'s entry once its object is collected."""

    def on_collected(_ref: object) -> None:
        _forget(oid)

    return on_collected


def _forget(oid: int) -> None:
    with _lock:
        entry = _owner_keys.get(oid)
        if entry is not None and entry[0]() is None:
            del _owner_keys[oid]
            prefix = entry[1] + "/"
            for key in [k for k in _bindings if k.startswith(prefix)]:
                del _bindings[key]


def register(binding: Any) -> Any:
    """Remember ``binding`` under its key (the newest wins) and return it."""
    with _lock:
        _bindings[binding.key] = binding
    return binding


def binding_for(key: str) -> Any | None:
    """The live binding registered under ``key``, or None."""
    return _bindings.get(key)
