"""What each LlamaIndex instrumentation event adds to the span it belongs to.

Handlers take ``(recorder, span_id, entry, event)``; ``entry.span`` is the OTel span of the
LlamaIndex span the event names. They may raise: the Recorder catches and counts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tg_bridge import semconv as sc

from . import attributes as at
from .bindings import PromptKeyBinding
from .hooks import current_run, register_binding
from .registry import binding_for

if TYPE_CHECKING:
    from .recorder import Recorder, _Open

__all__ = ["EVENT_HANDLERS"]


def _predict_start(recorder: Recorder, sid: str, entry: _Open, event: Any) -> None:
    template = event.template
    records, keys, first = at.template_records(template, entry.llm)
    keys.extend(_bind_by_text(records))
    variables = at.template_variables(template, getattr(event, "template_args", None))
    span = entry.span
    span.set_attribute(sc.TEMPLATES, json.dumps(records, ensure_ascii=False))
    span.set_attribute(sc.TEMPLATE_VARIABLES, json.dumps(variables, ensure_ascii=False, sort_keys=True))
    if first is not None:
        span.set_attribute(sc.LLM_PROMPT_TEMPLATE, first)
    span.set_attribute(sc.LLM_PROMPT_TEMPLATE_VARIABLES, json.dumps(variables, ensure_ascii=False, sort_keys=True))
    if keys:
        span.set_attribute(sc.BINDING_IDS, json.dumps(keys))
        for key in keys:
            binding = binding_for(key)
            if binding is not None:
                register_binding(binding)


def _bind_by_text(records: list[dict[str, Any]]) -> list[str]:
    """Untagged templates a component built per call from a prompt the app owns (a chat
    engine's context prompt copied into a fresh chat template): bound to the app prompt of the
    running capture with exactly that text, when there is exactly one. Returns the new keys."""
    run = current_run()
    pending = [r for r in records if not r.get("binding")]
    if run is None or not pending:
        return []
    texts: list[tuple[str, str]] = []
    for key, binding in list(run.bindings.items()):
        if isinstance(binding, PromptKeyBinding) or not key.startswith("llamaindex:"):
            continue  # PromptMixin prompts carry tags; reading them copies templates
        try:
            texts.append((key, binding.read()))
        except Exception:
            continue
    found: list[str] = []
    for record in pending:
        matches = [key for key, text in texts if text == record["template"]]
        if len(matches) == 1:
            record["binding"] = matches[0]
            found.append(matches[0])
    return found


def _model_name(event: Any) -> str | None:
    model = getattr(event, "model_dict", None) or {}
    name = model.get("model") or model.get("model_name") or model.get("class_name")
    return str(name) if name else None


def _chat_start(recorder: Recorder, sid: str, entry: _Open, event: Any) -> None:
    span = entry.span
    for key, value in at.messages(sc.LLM_INPUT_MESSAGES, event.messages).items():
        span.set_attribute(key, value)
    if event.messages:
        span.set_attribute(sc.INPUT_VALUE, at._content(event.messages[-1]))
    name = _model_name(event)
    if name:
        span.set_attribute(sc.LLM_MODEL_NAME, name)


def _completion_start(recorder: Recorder, sid: str, entry: _Open, event: Any) -> None:
    span = entry.span
    span.set_attribute(f"{sc.LLM_INPUT_MESSAGES}.0.{sc.MESSAGE_ROLE}", "user")
    span.set_attribute(f"{sc.LLM_INPUT_MESSAGES}.0.{sc.MESSAGE_CONTENT}", event.prompt)
    span.set_attribute(sc.INPUT_VALUE, event.prompt)
    name = _model_name(event)
    if name:
        span.set_attribute(sc.LLM_MODEL_NAME, name)


def _llm_end(recorder: Recorder, sid: str, entry: _Open, event: Any) -> None:
    response = event.response
    span = entry.span
    if response is not None:
        message = getattr(response, "message", None)
        if message is not None:
            role, text = at._role(message), at._content(message)
        else:
            role, text = "assistant", str(getattr(response, "text", "") or "")
        span.set_attribute(f"{sc.LLM_OUTPUT_MESSAGES}.0.{sc.MESSAGE_ROLE}", role)
        span.set_attribute(f"{sc.LLM_OUTPUT_MESSAGES}.0.{sc.MESSAGE_CONTENT}", text)
        for key, value in at.tool_calls(entry.llm, response).items():
            span.set_attribute(key, value)
        span.set_attribute(sc.OUTPUT_VALUE, text)
        for key, count in at.token_counts(response).items():
            span.set_attribute(key, count)
    else:
        text = None
    if sid in recorder.deferred:
        recorder._finish_llm(sid, text)


def _documents(recorder: Recorder, sid: str, entry: _Open, event: Any) -> None:
    for key, value in at.documents(event.nodes or []).items():
        entry.span.set_attribute(key, value)


def _tool_call(recorder: Recorder, sid: str, entry: _Open, event: Any) -> None:
    attrs = at.tool_attributes(event.tool)
    if entry.kind == "TOOL":
        for key, value in attrs.items():
            entry.span.set_attribute(key, value)
        entry.span.set_attribute(sc.INPUT_VALUE, event.arguments)
    else:
        attrs[sc.INPUT_VALUE] = event.arguments
        entry.span.add_event("tool_call", attrs)


def _exception(recorder: Recorder, sid: str, entry: _Open, event: Any) -> None:
    exc = getattr(event, "exception", None)
    if isinstance(exc, BaseException):
        entry.span.record_exception(exc)


# ``event``: one of LlamaIndex's instrumentation event classes (each handler reads its own)
EVENT_HANDLERS: dict[str, Callable[[Recorder, str, _Open, Any], None]] = {
    "LLMPredictStartEvent": _predict_start,
    "LLMStructuredPredictStartEvent": _predict_start,
    "LLMChatStartEvent": _chat_start,
    "LLMChatEndEvent": _llm_end,
    "LLMCompletionStartEvent": _completion_start,
    "LLMCompletionEndEvent": _llm_end,
    "RetrievalEndEvent": _documents,
    "ReRankEndEvent": _documents,
    "AgentToolCallEvent": _tool_call,
    "ExceptionEvent": _exception,
}
