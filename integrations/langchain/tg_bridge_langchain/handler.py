"""SpanHandler: one LangChain callback handler that turns every run into an OTel span.

Contract:
- every run (chain, prompt, parser, chat model / LLM, retriever, tool) becomes one span with
  OpenInference attributes plus ``tg_bridge.*`` ones (:mod:`tg_bridge.semconv`); the span's
  parent is the span of the run's ``parent_run_id``, so thread pools and ``asyncio.gather``
  keep the tree whatever the OTel context does; a root run nests under the current OTel span;
- nothing is recorded inside tg_bridge's own engine calls (``is_internal()``);
- every hook body is wrapped: a failure is counted with ``record_hook_error`` and never
  reaches the host (LangChain would swallow it silently anyway);
- the only state is the map of OPEN runs -> spans, capped at ``max_open`` (the oldest open
  span is ended and dropped beyond that, e.g. abandoned generators), so it stays bounded;
- thread-safe: dict operations only, no lock on the hot path; ``run_inline`` so async
  callback managers call it directly instead of through a thread pool.

The attribute builders live in :mod:`.run_attributes`; this module binds them as its own
globals (``_llm_output_attributes``, ...) so tests can patch them here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage
from opentelemetry import trace as trace_api
from opentelemetry.trace import Status, StatusCode

from tg_bridge import semconv as sc
from tg_bridge._internal import is_internal
from tg_bridge.capturing import record_hook_error
from tg_bridge.config import get_settings

from . import hooks
from .attributes import message_attributes, to_json, value_attributes

# The builders are bound to module globals here and looked up at call time (never through
# another module), so patching ``tg_bridge_langchain.handler.<name>`` injects a failure.
from .run_attributes import agent_prompt_attributes as _agent_prompt_attributes
from .run_attributes import chain_output_attributes as _chain_output_attributes
from .run_attributes import llm_output_attributes as _llm_output_attributes
from .run_attributes import model_attributes as _model_attributes
from .run_attributes import prompt_attributes as _prompt_attributes
from .run_attributes import retriever_output_attributes as _retriever_output_attributes
from .run_attributes import serialized_name as _serialized_name
from .run_attributes import tool_output_attributes as _tool_output_attributes
from .tools import tool_attributes

__all__ = ["SpanHandler"]

log = logging.getLogger(__name__)

_KIND_BY_RUN_TYPE = {
    "prompt": "PROMPT",
    "llm": "LLM",
    "chat_model": "LLM",
    "retriever": "RETRIEVER",
    "tool": "TOOL",
    "parser": "CHAIN",
}
#: chain runs that are agents (legacy AgentExecutor; LangChain 1.x create_agent graphs)
_AGENT_NAMES = frozenset({"AgentExecutor", "agent", "LangGraph"})
_OK = Status(StatusCode.OK)


class SpanHandler(BaseCallbackHandler):
    """Emit OTel spans for LangChain runs through ``tracer`` (see module docstring)."""

    run_inline = True
    raise_error = False

    def __init__(self, tracer: trace_api.Tracer, *, max_open: int = 10_000, tool_descriptions: bool = False):
        super().__init__()
        self.tracer = tracer
        self.max_open = max_open
        self.tool_descriptions = tool_descriptions
        self.dropped = 0
        self._spans: dict[UUID, trace_api.Span] = {}

    # -- span bookkeeping -------------------------------------------------------------------
    def _start(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        name: str,
        kind: str,
        node_type: str,
        tags: Sequence[str] | None,
        attrs: dict[str, Any],
    ) -> None:
        parent = self._spans.get(parent_run_id) if parent_run_id is not None else None
        context = trace_api.set_span_in_context(parent) if parent is not None else None
        attrs[sc.SPAN_KIND] = kind
        attrs[sc.FRAMEWORK] = "langchain"
        attrs[sc.NODE_ID] = str(run_id)
        attrs[sc.NODE_TYPE] = node_type
        if parent_run_id is not None:
            attrs[sc.PARENT_NODE_ID] = str(parent_run_id)
        if tags:
            attrs[sc.STEP_TAGS] = json.dumps(list(tags))
        span = self.tracer.start_span(name, context=context, attributes=attrs)
        spans = self._spans
        if len(spans) >= self.max_open:
            self._evict()
        spans[run_id] = span

    def _evict(self) -> None:
        try:
            oldest = next(iter(self._spans))
        except (StopIteration, RuntimeError):
            return
        span = self._spans.pop(oldest, None)
        if span is not None:
            self.dropped += 1
            span.set_attribute("tg_bridge.dropped", True)
            span.end()

    def _finish(self, run_id: UUID, where: str, make: Any, *args: Any) -> None:
        """End the run's span with the attributes ``make(*args)`` computes; the span is
        ended even when computing them fails (a failing hook must not leak open spans)."""
        span = self._spans.pop(run_id, None)
        if span is None:
            return
        try:
            attrs = make(*args)
            if attrs:
                span.set_attributes(attrs)
            span.set_status(_OK)
        except Exception as exc:
            record_hook_error(exc, where=where)
        finally:
            try:
                span.end()
            except Exception as exc:
                record_hook_error(exc, where=where)

    def _fail(self, run_id: UUID, error: BaseException, where: str) -> None:
        """End the run's span as failed; never raises (errors are counted on the Run)."""
        try:
            span = self._spans.pop(run_id, None)
            if span is None:
                return
            try:
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
            finally:
                span.end()
        except Exception as exc:
            record_hook_error(exc, where=where)

    # -- chains, prompts, parsers -----------------------------------------------------------
    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if is_internal():
            return
        try:
            hooks.ensure_agent_hooks()  # langgraph may have been loaded after instrument()
            run_type = kwargs.get("run_type")
            name = kwargs.get("name") or _serialized_name(serialized) or "chain"
            kind = _KIND_BY_RUN_TYPE.get(run_type or "", "CHAIN")
            if kind == "CHAIN" and name in _AGENT_NAMES:
                kind = "AGENT"
            attrs = value_attributes(inputs, sc.INPUT_VALUE, sc.INPUT_MIME_TYPE)
            if kind == "PROMPT":
                _prompt_attributes(inputs, metadata, attrs)
            node_type = _serialized_name(serialized) or name
            self._start(run_id, parent_run_id, name, kind, node_type, tags, attrs)
        except Exception as exc:
            record_hook_error(exc, where="on_chain_start")

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._finish(run_id, "on_chain_end", _chain_output_attributes, outputs, kwargs.get("inputs"))

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._fail(run_id, error, "on_chain_error")

    # -- models ---------------------------------------------------------------------------
    def on_chat_model_start(
        self,
        serialized: dict[str, Any] | None,
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if is_internal():
            return
        try:
            first = messages[0] if messages else []
            attrs = message_attributes(sc.LLM_INPUT_MESSAGES, first)
            attrs[sc.INPUT_VALUE] = to_json({"messages": first})
            attrs[sc.INPUT_MIME_TYPE] = "application/json"
            _model_attributes(kwargs.get("invocation_params"), metadata, attrs)
            _agent_prompt_attributes(first, attrs)
            name = kwargs.get("name") or _serialized_name(serialized) or "chat_model"
            self._start(run_id, parent_run_id, name, "LLM", _serialized_name(serialized) or name,
                        tags, attrs)
        except Exception as exc:
            record_hook_error(exc, where="on_chat_model_start")

    def on_llm_start(
        self,
        serialized: dict[str, Any] | None,
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if is_internal():
            return
        try:
            attrs: dict[str, Any] = {}
            for i, prompt in enumerate(prompts):
                attrs[f"{sc.LLM_PROMPTS}.{i}.prompt.text"] = prompt
            if prompts:
                attrs[sc.INPUT_VALUE] = prompts[0]
                attrs[sc.INPUT_MIME_TYPE] = "text/plain"
            _model_attributes(kwargs.get("invocation_params"), metadata, attrs)
            name = kwargs.get("name") or _serialized_name(serialized) or "llm"
            self._start(run_id, parent_run_id, name, "LLM", _serialized_name(serialized) or name,
                        tags, attrs)
        except Exception as exc:
            record_hook_error(exc, where="on_llm_start")

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._finish(run_id, "on_llm_end", _llm_output_attributes, response)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._fail(run_id, error, "on_llm_error")

    # -- retrievers -------------------------------------------------------------------------
    def on_retriever_start(
        self,
        serialized: dict[str, Any] | None,
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if is_internal():
            return
        try:
            attrs: dict[str, Any] = {sc.INPUT_VALUE: str(query), sc.INPUT_MIME_TYPE: "text/plain"}
            name = kwargs.get("name") or _serialized_name(serialized) or "retriever"
            self._start(run_id, parent_run_id, name, "RETRIEVER",
                        _serialized_name(serialized) or name, tags, attrs)
        except Exception as exc:
            record_hook_error(exc, where="on_retriever_start")

    def on_retriever_end(self, documents: Sequence[Any], *, run_id: UUID, **kwargs: Any) -> None:
        self._finish(run_id, "on_retriever_end", _retriever_output_attributes, documents)

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._fail(run_id, error, "on_retriever_error")

    # -- tools ----------------------------------------------------------------------------
    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if is_internal():
            return
        try:
            attrs: dict[str, Any] = {sc.INPUT_VALUE: str(input_str), sc.INPUT_MIME_TYPE: "text/plain"}
            serialized = serialized or {}
            name = kwargs.get("name") or serialized.get("name") or "tool"
            attrs[sc.TOOL_NAME] = str(serialized.get("name") or name)
            if serialized.get("description"):
                attrs[sc.TOOL_DESCRIPTION] = str(serialized["description"])
            with_tools = self.tool_descriptions or get_settings().tool_descriptions
            attrs.update(tool_attributes(metadata, with_tools))
            self._start(run_id, parent_run_id, str(name), "TOOL", "tool", tags, attrs)
        except Exception as exc:
            record_hook_error(exc, where="on_tool_start")

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._finish(run_id, "on_tool_end", _tool_output_attributes, output)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._fail(run_id, error, "on_tool_error")

