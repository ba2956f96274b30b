"""A per-prompt lock shared by tg_bridge's writes and LangChain's formatting of that prompt.

A patch that changes the system AND the human message of one ``ChatPromptTemplate`` makes
two writes; a host thread formatting the prompt between them would send a mix of versions.
Each bound prompt gets a re-entrant lock (:func:`lock_for`, exposed as ``write_lock`` on its
bindings); ``tg_bridge.patching.write_group.hold`` keeps it for a whole patch, and the
formatting methods of multi-part prompts (``ChatPromptTemplate.format_messages`` /
``aformat_messages``, ``FewShotPromptTemplate.format`` / ``aformat``) take it, so every host
call formats one whole version.

The formatting wrappers go in (class level) the first time a lock is made and stay: for a
prompt that never had a lock they cost one dictionary lookup and change nothing. A failure
inside the wrapper's lookup falls back to the unlocked call (the host is never broken).
Copies of a prompt carry their own binding key, hence their own lock.
"""

from __future__ import annotations

import functools
import logging
import threading
from typing import Any

from langchain_core.prompts import ChatPromptTemplate, FewShotPromptTemplate

from . import registry

__all__ = ["existing_lock", "lock_for"]

log = logging.getLogger(__name__)

_LOCK = "write_lock"
_install_lock = threading.Lock()
_installed = False
_WRAPPED = "__tg_bridge_format_lock__"


def lock_for(prompt: object) -> threading.RLock | None:
    """The prompt's lock (made on first use; the formatting hooks go in then). Returns None
    for an object that cannot carry a binding key."""
    key = registry.ensure_key(prompt)
    if key is None:
        return None
    cache = registry.extras(key)
    lock: threading.RLock | None = cache.get(_LOCK)
    if lock is None:
        with _install_lock:
            lock = cache.setdefault(_LOCK, threading.RLock())
    _install()
    return lock


def existing_lock(prompt: object) -> threading.RLock | None:
    """The prompt's lock if it has one, else None. Cheap; never raises."""
    try:
        key = registry.key_of(prompt)
        return registry.extras(key).get(_LOCK) if key is not None else None
    except Exception:
        log.debug("format lock lookup failed", exc_info=True)
        return None


def _install() -> None:
    global _installed
    if _installed:
        return
    with _install_lock:
        if _installed:
            return
        for cls, sync_name, async_name in (
            (ChatPromptTemplate, "format_messages", "aformat_messages"),
            (FewShotPromptTemplate, "format", "aformat"),
        ):
            _wrap(cls, sync_name, asynchronous=False)
            _wrap(cls, async_name, asynchronous=True)
        _installed = True


def _wrap(cls: type, name: str, *, asynchronous: bool) -> None:
    original = cls.__dict__.get(name)
    if original is None or getattr(original, _WRAPPED, False):
        return
    if asynchronous:

        @functools.wraps(original)
        async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            lock = existing_lock(self)
            if lock is None:
                return await original(self, *args, **kwargs)
            with lock:
                return await original(self, *args, **kwargs)

    else:

        @functools.wraps(original)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
            lock = existing_lock(self)
            if lock is None:
                return original(self, *args, **kwargs)
            with lock:
                return original(self, *args, **kwargs)

    setattr(wrapper, _WRAPPED, True)
    setattr(cls, name, wrapper)
