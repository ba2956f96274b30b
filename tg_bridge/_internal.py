"""A ContextVar marking tg_bridge's own LLM calls, so capture hooks skip them.

DESIGN principle 7: gradients, updates and judges are never captured as app steps. Engines
wrap each call in :func:`internal_call`; adapters check :func:`is_internal` before recording.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

__all__ = ["internal_call", "is_internal"]

_internal: contextvars.ContextVar[bool] = contextvars.ContextVar("tg_bridge_internal", default=False)


@contextlib.contextmanager
def internal_call() -> Iterator[None]:
    """Everything run inside this block is tg_bridge's own work (not captured)."""
    token = _internal.set(True)
    try:
        yield
    finally:
        _internal.reset(token)


def is_internal() -> bool:
    """True inside :func:`internal_call` (in this thread / task / copied context)."""
    return _internal.get()
