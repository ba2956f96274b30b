"""Binding keys for live LangChain objects (prompts, tools) and the process registry.

The callback handler only sees serialized dicts and run metadata, never the live prompt.
So each prompt (and tool) gets a key stored in its own ``metadata`` under :data:`META_KEY`;
LangChain merges an object's metadata into the metadata of its run, where the handler reads
it back and finds the live object here through a weak reference.

Keys look like ``"langchain:<name-or-class>#<n>"`` and stay the same for the life of the
object. A copy (``deepcopy``, ``model_copy``, ``partial()``) carries the original's key in
its metadata; :func:`ensure_key` notices that the key points at another object and gives
the copy a fresh one, so two live objects never share a key.

Thread-safe: key assignment runs under a lock; lookups are lock-free dict reads. Entries
disappear when their object is garbage collected (bounded by the live objects).
"""

from __future__ import annotations

import itertools
import logging
import threading
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["META_KEY", "ensure_key", "key_of", "lookup", "forget"]

log = logging.getLogger(__name__)

#: metadata field holding the binding key prefix of a prompt or tool
META_KEY = "tg_bridge_binding"

_lock = threading.Lock()
_counter = itertools.count(1)
_objects: dict[str, weakref.ReferenceType[Any]] = {}
#: per-object cache of derived data (bindings list, tool schema); dropped with the object
_extras: dict[str, dict[str, Any]] = {}
#: keys of objects that cannot carry metadata (e.g. RunnableBinding): id -> (weakref, key)
_side: dict[int, tuple[weakref.ReferenceType[Any], str]] = {}


def _base_name(obj: object) -> str:
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not name:
        name = type(obj).__name__
    return name.replace("/", "_").replace("#", "_")


def key_of(obj: object) -> str | None:
    """The key stored on ``obj`` if it is really ``obj``'s (not a copy's), else None."""
    side = _side.get(id(obj))
    if side is not None and side[0]() is obj:
        return side[1]
    meta = getattr(obj, "metadata", None)
    if not isinstance(meta, dict):
        return None
    key = meta.get(META_KEY)
    if not isinstance(key, str):
        return None
    ref = _objects.get(key)
    if ref is None or ref() is not obj:
        return None
    return key


def ensure_key(obj: object, kind: str = "") -> str | None:
    """The object's key, assigning and registering one if needed.

    Mutates ``obj.metadata`` (adds :data:`META_KEY`) the first time. Returns None when the
    object cannot carry metadata. Never raises.
    """
    key = key_of(obj)
    if key is not None:
        return key
    try:
        with _lock:
            key = key_of(obj)  # another thread may have won the race
            if key is not None:
                return key
            prefix = f"langchain:{kind}" if kind else "langchain:"
            key = f"{prefix}{_base_name(obj)}#{next(_counter)}"
            ref = weakref.ref(obj, _make_reaper(key, id(obj)))
            if _has_metadata(obj):
                meta = getattr(obj, "metadata", None)
                new_meta = dict(meta) if isinstance(meta, dict) else {}
                new_meta[META_KEY] = key
                # a fresh dict: a copy made by model_copy() shares the metadata dict with
                # its original, and the original must keep its own key
                setattr(obj, "metadata", new_meta)
            else:  # only findable through this process table, not through run metadata
                _side[id(obj)] = (ref, key)
            _objects[key] = ref
            return key
    except Exception:  # an object without settable metadata: no binding, never an error
        log.debug("cannot tag %r with a binding key", type(obj).__name__, exc_info=True)
        return None


def _has_metadata(obj: object) -> bool:
    fields = getattr(type(obj), "model_fields", None)
    if isinstance(fields, dict):
        return "metadata" in fields
    return hasattr(obj, "metadata")


def _make_reaper(key: str, obj_id: int) -> Callable[[weakref.ref[Any]], None]:
    def reap(_ref: weakref.ref[Any]) -> None:
        try:
            _objects.pop(key, None)
            _extras.pop(key, None)
            side = _side.get(obj_id)
            if side is not None and side[1] == key:
                _side.pop(obj_id, None)
        except (AttributeError, TypeError):
            pass  # interpreter shutdown: the module's tables are already gone

    return reap


def lookup(key: str) -> Any | None:
    """The live object registered under ``key`` (None when unknown or collected)."""
    ref = _objects.get(key)
    return ref() if ref is not None else None


def extras(key: str) -> dict[str, Any]:
    """A per-object scratch dict (caches), dropped with the object."""
    found = _extras.get(key)
    if found is None:
        found = _extras.setdefault(key, {})
    return found


def forget(obj: object) -> None:
    """Drop ``obj``'s key (used on copies so they get keys of their own)."""
    meta = getattr(obj, "metadata", None)
    if isinstance(meta, dict) and META_KEY in meta:
        new_meta = {k: v for k, v in meta.items() if k != META_KEY}
        try:
            setattr(obj, "metadata", new_meta)
        except Exception:
            log.debug("cannot untag %r", type(obj).__name__, exc_info=True)
