"""Which Run is current: a ContextVar set by ``capture()``, plus helpers for adapters.

The ContextVar follows asyncio tasks and ``contextvars.copy_context().run`` (thread pools that
copy context). Work that lost its context (a raw thread) is attached through the parent span
instead, by :class:`~tg_bridge.capturing.processor.RunSpanProcessor`.

Every helper here runs on the host's request path: none of them raises.
"""

from __future__ import annotations

import contextvars
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..patching.binding import Binding
    from .run import Run

__all__ = ["current_run", "record_hook_error", "register_binding"]

log = logging.getLogger("tg_bridge.capture")

_current: contextvars.ContextVar[Run | None] = contextvars.ContextVar(
    "tg_bridge_current_run", default=None
)


def context_run() -> Run | None:
    """The Run set by the innermost ``capture()`` in this context (no span fallback)."""
    return _current.get()


def current_run() -> Run | None:
    """The Run that work happening here belongs to, or None. Never raises.

    The innermost ``capture()`` of this context first; else the Run of the active OTel span,
    when that span is one of ours still open (work in a thread that lost the ContextVar but
    re-entered its parent span).
    """
    run = _current.get()
    if run is not None:
        return run
    try:
        from opentelemetry import trace as trace_api

        from . import provider

        processor = provider._processor
        if processor is None:  # nothing was ever traced: no span can be ours
            return None
        ctx = trace_api.get_current_span().get_span_context()
        return processor.run_of_span(ctx.span_id) if ctx.is_valid else None
    except Exception:
        log.debug("current_run() fallback failed", exc_info=True)
        return None


def register_binding(binding: Binding, *, run: Run | None = None) -> None:
    """Add a live prompt binding to ``run`` (default: :func:`current_run`); no-op without one.

    For adapters. Never raises: a malformed binding is logged and counted as a hook error.
    """
    try:
        target = run if run is not None else current_run()
        if target is None:
            return
        if not isinstance(getattr(binding, "key", None), str):
            raise TypeError(f"binding without a str key: {binding!r}")
        target.add_binding(binding)
    except Exception as exc:
        record_hook_error(exc, run=run)


def record_hook_error(exc: BaseException | None = None, *, run: Run | None = None, where: object = None) -> None:
    """Log a failure of a capture hook and count it on the Run. Never raises.

    ``where`` names the hook (for the log line). The first failure of a Run is logged at
    WARNING with its traceback, later ones at DEBUG, so a hook failing on every call does not
    flood the host's logs.
    """
    try:
        target = run if run is not None else current_run()
        count = target.count_hook_error() if target is not None else 0
        level = logging.WARNING if count <= 1 else logging.DEBUG
        label = f" in {where}" if where else ""
        exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
        log.log(level, "tg_bridge capture hook failed%s: %r", label, exc, exc_info=exc_info)
    except Exception:  # even logging can fail (a broken handler); the host still goes on
        pass


def set_current(run: Run | None) -> contextvars.Token[Run | None]:
    """Make ``run`` current in this context (``capture()`` uses it)."""
    return _current.set(run)


def reset_current(token: contextvars.Token[Run | None], previous: Run | None) -> None:
    """Undo :func:`set_current`; falls back to setting ``previous`` when the token belongs to
    another context (a block entered in one task and left in another)."""
    try:
        _current.reset(token)
    except ValueError:
        _current.set(previous)
