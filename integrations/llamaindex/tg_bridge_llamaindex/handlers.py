"""The span and event handlers installed on LlamaIndex's root dispatcher.

Both are thin shells over one :class:`~tg_bridge_llamaindex.recorder.Recorder`; they keep no
span state of their own (the base class's ``open_spans`` stays empty). ``install`` / ``remove``
are idempotent and thread-safe.
"""

from __future__ import annotations

import threading
from typing import Any

from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.span import BaseSpan
from llama_index.core.instrumentation.span_handlers import BaseSpanHandler
from pydantic import PrivateAttr

from .recorder import Recorder

__all__ = ["TgBridgeEventHandler", "TgBridgeSpanHandler", "install", "installed", "remove"]


class TgBridgeSpanHandler(BaseSpanHandler[BaseSpan]):
    """Forwards span enter/exit/drop to the Recorder (which never raises)."""

    _recorder: Any = PrivateAttr(default=None)

    def __init__(self, recorder: Recorder) -> None:
        super().__init__(open_spans={}, completed_spans=[], dropped_spans=[], current_span_ids={})
        self._recorder = recorder

    @classmethod
    def class_name(cls) -> str:
        return "TgBridgeSpanHandler"

    def span_enter(self, id_: str, bound_args: Any, instance: Any = None, parent_id: str | None = None,
                   tags: Any = None, **kwargs: Any) -> None:
        self._recorder.enter(id_, bound_args, instance, parent_id)

    def span_exit(self, id_: str, bound_args: Any, instance: Any = None, result: Any = None,
                  **kwargs: Any) -> None:
        self._recorder.exit(id_, result)

    def span_drop(self, id_: str, bound_args: Any, instance: Any = None,
                  err: BaseException | None = None, **kwargs: Any) -> None:
        self._recorder.drop(id_, err)

    # The abstract hooks of the base class are bypassed by the overrides above.
    def new_span(self, *args: Any, **kwargs: Any) -> None:
        return None

    def prepare_to_exit_span(self, *args: Any, **kwargs: Any) -> None:
        return None

    def prepare_to_drop_span(self, *args: Any, **kwargs: Any) -> None:
        return None


class TgBridgeEventHandler(BaseEventHandler):
    """Forwards events to the Recorder."""

    _recorder: Any = PrivateAttr(default=None)

    def __init__(self, recorder: Recorder) -> None:
        super().__init__()
        self._recorder = recorder

    @classmethod
    def class_name(cls) -> str:
        return "TgBridgeEventHandler"

    def handle(self, event: Any, **kwargs: Any) -> None:
        self._recorder.event(event)


_lock = threading.Lock()
_installed: tuple[TgBridgeSpanHandler, TgBridgeEventHandler] | None = None


def install(tracer: Any) -> Recorder:
    """Add our handlers to the root dispatcher (once); returns the active Recorder."""
    global _installed
    with _lock:
        if _installed is not None:
            active: Recorder = _installed[0]._recorder
            return active
        recorder = Recorder(tracer)
        span_handler, event_handler = TgBridgeSpanHandler(recorder), TgBridgeEventHandler(recorder)
        dispatcher = get_dispatcher()
        dispatcher.add_span_handler(span_handler)
        dispatcher.add_event_handler(event_handler)
        _installed = (span_handler, event_handler)
        return recorder


def remove() -> None:
    """Remove our handlers (if installed) and end any span still open."""
    global _installed
    with _lock:
        if _installed is None:
            return
        span_handler, event_handler = _installed
        _installed = None
        dispatcher = get_dispatcher()
        dispatcher.span_handlers = [h for h in dispatcher.span_handlers if h is not span_handler]
        dispatcher.event_handlers = [h for h in dispatcher.event_handlers if h is not event_handler]
    span_handler._recorder.close_all()


def installed() -> Recorder | None:
    """The active Recorder, or None when not instrumented."""
    current = _installed
    return current[0]._recorder if current is not None else None
