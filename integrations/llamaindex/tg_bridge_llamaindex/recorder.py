"""The Recorder: turns LlamaIndex dispatcher spans and events into OpenTelemetry spans.

One OTel span per LlamaIndex span (id ``Class.method-uuid``); the OTel parent is the span of the
LlamaIndex ``parent_span_id`` (so trace trees follow LlamaIndex's own hierarchy, across threads
and ``asyncio.gather``). Events (which carry ``span_id``) add attributes to the span they
belong to. Everything is skipped inside ``tg_bridge._internal.internal_call()``.

Streaming: a call that returns a generator (or a ``StreamingResponse``) exits before any token
exists. Such spans are *deferred*, not ended: an LLM span ends when its end event arrives; the
chain above it (synthesizer, query engine) ends when the wrapped ``response_gen`` is exhausted
or closed, with the streamed text as output. Deferred spans are capped (:data:`MAX_DEFERRED`)
and expire after :data:`DEFERRED_TTL` seconds, so an unconsumed stream never leaks.

Thread-safe: dict operations are atomic; the deferred and recently-closed maps take one lock.
Never raises: the public methods catch everything and count it with ``record_hook_error``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from typing import Any

from llama_index.core.base.llms.base import BaseLLM
from llama_index.core.base.response.schema import AsyncStreamingResponse, StreamingResponse
from opentelemetry import trace as trace_api
from opentelemetry.trace import NonRecordingSpan, Status, StatusCode

from tg_bridge import semconv as sc
from tg_bridge._internal import is_internal

from . import attributes as at
from .events import EVENT_HANDLERS as _EVENT_HANDLERS
from .hooks import LLM_CALLS, current_run, record_hook_error, span_kind
from .runtime import app_roots, root_bindings
from .streaming import is_stream, wrap_stream
from .tools import enabled as tool_descriptions_enabled
from .tools import tool_binding_attributes

__all__ = ["DEFERRED_TTL", "MAX_DEFERRED", "Recorder"]

MAX_DEFERRED = 256
DEFERRED_TTL = 600.0
MAX_CLOSED = 1024
#: PromptMixin plumbing is span-decorated too; it is configuration, not an app step.
_SKIPPED_METHODS = frozenset(
    ("get_prompts", "_get_prompts", "_get_prompt_modules", "update_prompts", "_update_prompts")
)


class _Open:
    __slots__ = ("span", "parent_id", "kind", "llm", "owner", "since", "call")

    def __init__(self, span: trace_api.Span, parent_id: str | None, kind: str, llm: Any, owner: int) -> None:
        self.call = False  # a request method of an LLM (chat, complete, stream_*), whatever kind
        self.span = span
        self.parent_id = parent_id
        self.kind = kind
        self.llm = llm
        self.owner = owner
        self.since = 0.0


class Recorder:
    """State and logic behind the span and event handlers (one per instrumentation)."""

    def __init__(self, tracer: trace_api.Tracer) -> None:
        self.tracer = tracer
        self.open: dict[str, _Open] = {}
        self.deferred: OrderedDict[str, _Open] = OrderedDict()
        self.closed: OrderedDict[str, trace_api.SpanContext] = OrderedDict()  # span id -> its context
        self.generators: OrderedDict[int, str] = OrderedDict()  # id(generator) -> span id
        self.expired = 0
        self._lock = threading.Lock()

    # -- spans ----------------------------------------------------------------------------
    def enter(self, id_: str, bound_args: Any, instance: Any, parent_id: str | None) -> None:
        try:
            if is_internal():
                return
            self._expire()
            parent = self.open.get(parent_id) if parent_id else None
            if parent is None and parent_id:
                parent = self.deferred.get(parent_id)
            method = id_.split("-", 1)[0].rsplit(".", 1)[-1]
            if method in _SKIPPED_METHODS:
                return
            kind = span_kind(instance, method)
            if kind == "LLM" and self._delegated(instance, parent, parent_id):
                kind = "CHAIN"  # e.g. stream_chat delegating to stream_complete: one request, one LLM span
            attrs: dict[str, Any] = {
                sc.SPAN_KIND: kind,
                sc.FRAMEWORK: "llamaindex",
                sc.NODE_ID: id_,
                sc.NODE_TYPE: type(instance).__name__ if instance is not None else method,
            }
            if parent_id:
                attrs[sc.PARENT_NODE_ID] = parent_id
            arguments = dict(bound_args.arguments) if bound_args is not None else {}
            if kind == "TOOL":
                attrs.update(at.tool_attributes(getattr(instance, "metadata", None)))
                if tool_descriptions_enabled() and current_run() is not None:
                    attrs.update(tool_binding_attributes(instance))
                attrs[sc.INPUT_VALUE] = json.dumps(at.tool_call_arguments(arguments), default=str, sort_keys=True)
            else:
                value = at.input_value(arguments)
                if value is not None:
                    attrs[sc.INPUT_VALUE] = value
            owner = 0
            if isinstance(instance, app_roots()) and not isinstance(instance, type):
                owner = id(instance)
                if (parent is None or parent.owner != owner) and current_run() is not None:
                    attrs.update(root_bindings(instance))
            if parent is not None:
                ctx = trace_api.set_span_in_context(parent.span)
            elif parent_id and parent_id in self.closed:
                ctx = trace_api.set_span_in_context(NonRecordingSpan(self.closed[parent_id]))
            else:
                ctx = None
            name = id_.split("-", 1)[0]
            span = self.tracer.start_span(name, context=ctx, attributes=attrs)
            llm = instance if isinstance(instance, BaseLLM) else None
            entry = _Open(span, parent_id, kind, llm, owner)
            entry.call = llm is not None and method in LLM_CALLS
            self.open[id_] = entry
        except Exception as exc:
            record_hook_error(exc)

    def exit(self, id_: str, result: Any) -> None:
        try:
            entry = self.open.pop(id_, None)
            if entry is None:
                return
            if is_stream(result):
                self._defer(id_, entry, result)
                return
            text = at.output_text(result)
            if text is not None:
                entry.span.set_attribute(sc.OUTPUT_VALUE, text)
            self._end(id_, entry)
        except Exception as exc:
            record_hook_error(exc)

    def drop(self, id_: str, err: BaseException | None) -> None:
        try:
            entry = self.open.pop(id_, None)
            if entry is None:
                return
            if err is not None:
                entry.span.record_exception(err)
                entry.span.set_status(Status(StatusCode.ERROR, f"{type(err).__name__}: {err}"))
            self._end(id_, entry)
        except Exception as exc:
            record_hook_error(exc)

    def _delegated(self, instance: Any, parent: _Open | None, parent_id: str | None) -> bool:
        """True when an LLM request method runs on behalf of another request of the same LLM:
        called from it, or (async streams start lazily, after their span closed) next to a
        still-streaming request of the same LLM under the same parent."""
        if parent is not None and parent.call and parent.llm is instance:
            return True
        with self._lock:
            recent = list(self.deferred.values())[-8:]
        return any(e.call and e.llm is instance and e.parent_id == parent_id for e in recent)

    # -- streaming ------------------------------------------------------------------------
    def _defer(self, id_: str, entry: _Open, result: Any) -> None:
        entry.since = time.monotonic()
        with self._lock:
            self.deferred[id_] = entry
            overflow = len(self.deferred) > MAX_DEFERRED
            if not isinstance(result, (StreamingResponse, AsyncStreamingResponse)):
                # the first (deepest) span returning this generator owns it
                self.generators.setdefault(id(result), id_)
                if len(self.generators) > MAX_DEFERRED:
                    self.generators.popitem(last=False)
        if overflow:
            self._evict_oldest()
        if isinstance(result, (StreamingResponse, AsyncStreamingResponse)):
            wrap_stream(result, id_, self)

    def producer_of(self, generator: Any, fallback: str) -> str:
        """The deepest deferred span that returned ``generator`` (its chain starts there)."""
        with self._lock:
            return self.generators.get(id(generator), fallback)

    def finish_chain(self, start_id: str | None, text: str | None) -> None:
        """End ``start_id`` and every deferred ancestor above it (a stream was consumed)."""
        try:
            seen = 0
            sid = start_id
            while sid and seen < 64:
                with self._lock:
                    entry = self.deferred.pop(sid, None)
                if entry is None:
                    break
                if text is not None and entry.kind != "LLM":
                    entry.span.set_attribute(sc.OUTPUT_VALUE, text)
                self._end(sid, entry)
                sid = entry.parent_id
                seen += 1
        except Exception as exc:
            record_hook_error(exc)

    def _finish_llm(self, sid: str, text: str | None) -> None:
        """An LLM stream ended: end it and the LLM wrappers (``stream``) deferred above it."""
        first = True
        while sid:
            with self._lock:
                entry = self.deferred.get(sid)
                if entry is None or (not first and entry.llm is None):
                    return
                del self.deferred[sid]
            first = False
            if text is not None and entry.kind != "LLM":
                entry.span.set_attribute(sc.OUTPUT_VALUE, text)
            self._end(sid, entry)
            sid = entry.parent_id or ""

    def _expire(self) -> None:
        if not self.deferred:
            return
        with self._lock:
            first = next(iter(self.deferred.values()), None)
        if first is not None and time.monotonic() - first.since > DEFERRED_TTL:
            self._evict_oldest()

    def _evict_oldest(self) -> None:
        with self._lock:
            if not self.deferred:
                return
            sid, entry = self.deferred.popitem(last=False)
            self.expired += 1
        entry.span.set_attribute("tg_bridge.stream_unfinished", True)
        self._end(sid, entry)

    # -- events ---------------------------------------------------------------------------
    def event(self, event: Any) -> None:
        try:
            if is_internal():
                return
            sid = event.span_id
            entry = self.open.get(sid) if sid else None
            if entry is None and sid:
                entry = self.deferred.get(sid)
            if entry is None:
                return
            handler = _EVENT_HANDLERS.get(type(event).__name__)
            if handler is not None:
                handler(self, sid, entry, event)
        except Exception as exc:
            record_hook_error(exc)

    # -- helpers --------------------------------------------------------------------------
    def _end(self, id_: str, entry: _Open) -> None:
        entry.span.end()
        with self._lock:
            self.closed[id_] = entry.span.get_span_context()
            if len(self.closed) > MAX_CLOSED:
                self.closed.popitem(last=False)

    def close_all(self) -> None:
        """End every open or deferred span (on uninstrument) and forget all state."""
        for _sid, entry in list(self.open.items()) + list(self.deferred.items()):
            try:
                entry.span.set_attribute("tg_bridge.stream_unfinished", True)
                entry.span.end()
            except Exception as exc:  # pragma: no cover - OTel end() does not raise
                record_hook_error(exc)
        self.open.clear()
        with self._lock:
            self.deferred.clear()
            self.closed.clear()
            self.generators.clear()
