"""Concurrent host calls see a multi-target patch whole.

A patch that changes two messages of one chat prompt is written as two binding writes; a
host call formatting the prompt between them would send the new system message with the old
human message. A binding may expose ``write_lock`` (a re-entrant lock the host's formatting
path also takes, e.g. the LangChain adapter's per-prompt lock); :func:`hold` takes the locks
of every target of a patch for the whole write (and rollback) sequence, so a formatting call
runs entirely before or entirely after it.

Locks are acquired in one global order (by ``id``), so two writers never deadlock; bindings
without ``write_lock`` need nothing (single-assignment writes). Blocking; thread-safe.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["hold"]


def _lock_of(target: Any) -> Any:
    binding = getattr(target, "binding", None) or target  # a Variable writes through its binding
    try:
        return getattr(binding, "write_lock", None)
    except Exception:  # a broken property must not stop the patch: no lock for it
        return None


@contextlib.contextmanager
def hold(targets: Iterable[Any]) -> Iterator[None]:
    """Hold the ``write_lock`` of every target (each once) while the block runs."""
    locks: dict[int, Any] = {}
    for target in targets:
        lock = _lock_of(target)
        if lock is not None and hasattr(lock, "acquire") and hasattr(lock, "release"):
            locks.setdefault(id(lock), lock)
    with contextlib.ExitStack() as stack:
        for _, lock in sorted(locks.items(), key=lambda item: item[0]):
            lock.acquire()
            stack.callback(lock.release)
        yield
