"""Read what a span says, whatever convention wrote it, into one :class:`SpanView`.

Understood: OpenInference (``openinference.span.kind``, ``llm.input_messages.{i}.message.*``,
``llm.prompts``, ``llm.prompt_template.*``, ``retrieval.documents.{i}.document.*``,
``tool.*``), OTel GenAI (``gen_ai.operation.name``, ``gen_ai.input.messages`` /
``output.messages`` / ``system_instructions`` JSON, ``gen_ai.tool.*``, and the older event form: ``gen_ai.*.message`` / ``gen_ai.choice`` span
events, see :mod:`.events`), OpenLLMetry
(``gen_ai.prompt.{i}.role|content``, ``gen_ai.completion.{i}.*``, ``traceloop.*``) and our own
``tg_bridge.templates`` / ``tg_bridge.template.variables``; then the third-party conventions of
:mod:`.conventions` (Langfuse, Vercel AI SDK, Pydantic AI, deprecated GenAI strings, GenAI
details events and tool definitions, raw OpenAI responses) fill what is still empty. Attributes of the wrong type are
ignored one by one; nothing here raises on odd input. Pure. The types it fills live in
:mod:`.spanview` and are re-exported here.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence

from .. import semconv as sc
from ..traces.checks import finite_number
from .conventions import enrich
from .events import event_messages
from .spanview import Document, Message, SpanKind, SpanView, TemplateInfo, ToolCall, _json, _str, is_span_kind
from .templates import placeholders

__all__ = ["Document", "Message", "SpanView", "TemplateInfo", "ToolCall", "add_instructions", "view_of"]

_GENAI_KINDS: dict[str, SpanKind] = {
    "chat": "llm", "text_completion": "llm", "generate_content": "llm", "completion": "llm",
    "execute_tool": "tool", "retrieval": "retriever", "invoke_agent": "agent",
    "create_agent": "agent", "embeddings": "embedding",
}  # fmt: skip
_TRACELOOP_KINDS: dict[str, SpanKind] = {"workflow": "chain", "task": "chain", "agent": "agent", "tool": "tool"}
#: ``prefix.{i}.rest`` span attributes by group, index and rest of the key (see _split_indexed).
Groups = dict[str, dict[int, dict[str, object]]]

_INDEXED = (
    ("in", sc.LLM_INPUT_MESSAGES + "."),
    ("out", sc.LLM_OUTPUT_MESSAGES + "."),
    ("doc", sc.RETRIEVAL_DOCUMENTS + "."),
    ("prompt", sc.LLM_PROMPTS + "."),
    ("gprompt", sc.GEN_AI_PROMPT_PREFIX + "."),
    ("gcompl", sc.GEN_AI_COMPLETION_PREFIX + "."),
)


def _index(text: str) -> int | None:
    """A flattened-key index: ASCII digits, at most 9 of them (``str.isdigit`` also accepts
    ``٣`` and ``³``, and ``int()`` refuses more than 4,300 digits), else None."""
    if 0 < len(text) <= 9 and text.isascii() and text.isdigit():
        return int(text)
    return None


def _split_indexed(attrs: Mapping[str, object]) -> Groups:
    """``prefix.{i}.rest`` attributes grouped as ``{group: {i: {rest: value}}}``, one pass;
    a key whose index is not :func:`_index` is ignored."""
    groups: Groups = {}
    for key, value in attrs.items():
        found = _indexed_key(key)
        if found is not None:
            group, index, rest = found
            groups.setdefault(group, {}).setdefault(index, {})[rest] = value
    return groups


def _indexed_key(key: str) -> tuple[str, int, str] | None:
    """(group, index, rest) of one ``prefix.{i}.rest`` key; None for any other key and for
    an index that is not :func:`_index` (the first matching prefix decides). Cached: the same
    few dozen keys recur on every span of a file; a long (odd, maybe hostile) key is not."""
    return _classify_key(key) if len(key) > 200 else _cached_classify_key(key)


def _classify_key(key: str) -> tuple[str, int, str] | None:
    for group, prefix in _INDEXED:
        if key.startswith(prefix):
            head, _, rest = key[len(prefix) :].partition(".")
            index = _index(head)
            return (group, index, rest) if index is not None else None
    return None


_cached_classify_key = functools.lru_cache(maxsize=4096)(_classify_key)


def _oi_message(fields: Mapping[str, object], pre: str = "message.") -> Message:
    content = _str(fields.get(pre + "content"))
    if content is None:  # multimodal: message.contents.{j}.message_content.text
        parts = sorted(
            (k, v) for k, v in fields.items()
            if k.startswith(pre + "contents.") and k.endswith(".text") and isinstance(v, str)
        )  # fmt: skip
        content = "\n".join(v for _, v in parts)
    calls: dict[int, dict[str, str]] = {}
    for key, value in fields.items():
        if key.startswith(pre + "tool_calls.") and isinstance(value, str):
            head, _, rest = key[len(pre) + 11 :].partition(".")
            idx = _index(head)
            if idx is not None:
                calls.setdefault(idx, {})[rest.replace("tool_call.", "")] = value
    tool_calls = tuple(
        ToolCall(c.get("function.name", c.get("name", "")),
                 c.get("function.arguments", c.get("arguments", "")), c.get("id", ""))
        for _, c in sorted(calls.items())
    )  # fmt: skip
    return Message(
        role=_str(fields.get(pre + "role")) or "user",
        content=content,
        tool_calls=tool_calls,
        tool_call_id=_str(fields.get(pre + "tool_call_id")) or "",
    )


def _genai_messages(raw: object) -> list[Message]:
    parsed = _json(raw) if isinstance(raw, str) else raw
    if isinstance(parsed, tuple):
        parsed = list(parsed)
    if not isinstance(parsed, list):
        return []
    out = []
    for item in parsed:
        item = _json(item) if isinstance(item, str) else item  # OTLP kvlist values arrive as JSON
        if not isinstance(item, Mapping):
            continue
        role = _str(item.get("role")) or "user"
        texts, calls, call_id = [], [], ""
        if isinstance(item.get("content"), str):
            texts.append(item["content"])
        parts = item.get("parts")
        for part in parts if isinstance(parts, (list, tuple)) else ():
            part = _json(part) if isinstance(part, str) else part
            if not isinstance(part, Mapping):
                continue
            ptype = part.get("type")
            if ptype == "tool_call":
                args = part.get("arguments")  # absent: a call without arguments, not "null"
                args = args if isinstance(args, str) else "" if args is None else json.dumps(args, ensure_ascii=False)
                calls.append(ToolCall(str(part.get("name", "")), args, str(part.get("id") or "")))
            elif ptype == "tool_call_response":
                call_id = str(part.get("id") or "")
                resp = part.get("response", part.get("result"))  # Pydantic AI says "result"
                texts.append(resp if isinstance(resp, str) else "" if resp is None else json.dumps(resp, ensure_ascii=False))
            elif isinstance(part.get("content"), str):
                texts.append(part["content"])
        out.append(Message(role, "\n".join(texts), tuple(calls), call_id))
    return out


def add_instructions(messages: list[Message], system: Message | None) -> None:
    """Put ``gen_ai.system_instructions`` first among ``messages`` unless a system message
    already says it. Instructions are recorded apart from the conversation (Microsoft.Extensions.AI
    ``ChatOptions.Instructions``, Anthropic's ``system``); a conversation can carry a system
    message of its own as well, and the model read both. Some writers copy the instructions
    into the messages too: a system message that contains them is that copy."""
    if system is not None and not any(m.role == "system" and system.content in m.content for m in messages):
        messages.insert(0, system)


def _system_instructions(raw: object) -> Message | None:
    if isinstance(raw, str) and _json(raw) is None:
        return Message("system", raw) if raw.strip() else None
    parsed = list(raw) if isinstance(raw, (list, tuple)) else _json(raw)  # OTLP array or JSON
    if isinstance(parsed, list):
        parts = [_json(p) if isinstance(p, str) else p for p in parsed]  # kvlist parts: JSON
        texts = [p.get("content") for p in parts if isinstance(p, Mapping)]
        text = "\n".join(t for t in texts if isinstance(t, str))
        return Message("system", text) if text.strip() else None
    return None


def _kind(attrs: Mapping[str, object], groups: Groups) -> SpanKind:
    kind = _str(attrs.get(sc.SPAN_KIND))
    lowered = kind.lower() if kind and kind.upper() in sc.SPAN_KINDS else None
    if is_span_kind(lowered):
        return lowered
    op = _str(attrs.get(sc.GEN_AI_OPERATION_NAME))
    if op and op in _GENAI_KINDS:
        return _GENAI_KINDS[op]
    tl = _str(attrs.get("traceloop.span.kind"))
    if tl in _TRACELOOP_KINDS:
        return _TRACELOOP_KINDS[tl]
    if "in" in groups or "gprompt" in groups or attrs.get("llm.request.type"):
        return "llm"
    # GenAI messages with no operation name (a writer that omits it) are still a model call.
    if sc.GEN_AI_INPUT_MESSAGES in attrs or sc.GEN_AI_OUTPUT_MESSAGES in attrs:
        return "llm"
    if sc.TEMPLATES in attrs:
        return "prompt"
    return "other"


def _templates(attrs: Mapping[str, object], view: SpanView) -> None:
    records = _json(attrs.get(sc.TEMPLATES))
    if isinstance(records, list):
        for pos, rec in enumerate(records):
            if not isinstance(rec, Mapping) or not isinstance(rec.get("template"), str):
                continue
            index = rec.get("index")
            view.templates.append(
                TemplateInfo(
                    template=rec["template"],
                    fmt=_str(rec.get("format")) or "f-string",
                    role=_str(rec.get("role")),
                    index=index if isinstance(index, int) and not isinstance(index, bool) else pos,
                    name=_str(rec.get("name")),
                    binding=_str(rec.get("binding")),
                    source="tg_bridge",
                )
            )
        _merge_variables(view, _json(attrs.get(sc.TEMPLATE_VARIABLES)))
    template = _str(attrs.get(sc.LLM_PROMPT_TEMPLATE))
    if template and not view.templates:
        fmt = "f-string"
        if not placeholders(template) and placeholders(template, "mustache"):
            fmt = "mustache"
        view.templates.append(TemplateInfo(template=template, fmt=fmt))
    if view.templates:
        _merge_variables(view, _json(attrs.get(sc.LLM_PROMPT_TEMPLATE_VARIABLES)))
        if view.kind == "prompt":  # OpenInference keeps only the first message's variables
            _merge_variables(view, view.input_obj)


def _merge_variables(view: SpanView, obj: object) -> None:
    if not isinstance(obj, Mapping):
        return
    for key, value in obj.items():
        if isinstance(value, str):
            view.variables.setdefault(str(key), value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            view.variables.setdefault(str(key), str(value))


def view_of(name: str, attrs: Mapping[str, object], events: Sequence[object] = ()) -> SpanView:
    """Everything reconstruction needs from one span's attributes (and its GenAI message
    events, read only when no attribute carries the messages)."""
    groups = _split_indexed(attrs)
    view = SpanView(kind=_kind(attrs, groups), name=name)
    ev_in, ev_out = event_messages(events) if events else ([], [])
    if view.kind == "other" and ev_in:
        view.kind = "llm"  # an old GenAI chat span may carry nothing but gen_ai.system
    view.input_text = _str(attrs.get(sc.INPUT_VALUE))
    view.output_text = _str(attrs.get(sc.OUTPUT_VALUE))
    view.input_obj = _json(view.input_text)
    view.model = (_str(attrs.get(sc.LLM_MODEL_NAME)) or _str(attrs.get(sc.GEN_AI_REQUEST_MODEL))
                  or _str(attrs.get(sc.GEN_AI_RESPONSE_MODEL)))  # fmt: skip
    _templates(attrs, view)
    _llm_content(attrs, groups, view, ev_in, ev_out)
    _retrieval(attrs, groups, view)
    _tool(attrs, view)
    enrich(attrs, events, view)  # third-party conventions fill what is still empty
    return view


def _llm_content(attrs: Mapping[str, object], groups: Groups, view: SpanView,
                 ev_in: Sequence[object], ev_out: Sequence[object]) -> None:  # fmt: skip
    if "in" in groups:
        view.messages = [_oi_message(groups["in"][i]) for i in sorted(groups["in"])]
    elif sc.GEN_AI_INPUT_MESSAGES in attrs:
        view.messages = _genai_messages(attrs[sc.GEN_AI_INPUT_MESSAGES])
    elif "gprompt" in groups:
        view.messages = [_oi_message(groups["gprompt"][i], "") for i in sorted(groups["gprompt"])]
    if not view.messages and ev_in:
        view.messages = _genai_messages(ev_in)
    add_instructions(view.messages, _system_instructions(attrs.get(sc.GEN_AI_SYSTEM_INSTRUCTIONS)))
    if not view.messages:
        prompts = attrs.get(sc.LLM_PROMPTS)
        texts = list(prompts) if isinstance(prompts, tuple) else []
        if "prompt" in groups:
            texts = [groups["prompt"][i].get("prompt.text") for i in sorted(groups["prompt"])]
        texts = [t for t in texts if isinstance(t, str)]
        if texts:
            view.messages = [Message("user", t) for t in texts]
            view.completion = True
    if "out" in groups:
        view.output_messages = [_oi_message(groups["out"][i]) for i in sorted(groups["out"])]
    elif sc.GEN_AI_OUTPUT_MESSAGES in attrs:
        view.output_messages = _genai_messages(attrs[sc.GEN_AI_OUTPUT_MESSAGES])
    elif "gcompl" in groups:
        view.output_messages = [_oi_message(groups["gcompl"][i], "") for i in sorted(groups["gcompl"])]
    elif ev_out:
        view.output_messages = _genai_messages(ev_out)
    if view.input_text is None and view.kind in ("chain", "agent", "other"):
        view.input_text = _str(attrs.get("traceloop.entity.input"))
        view.output_text = view.output_text or _str(attrs.get("traceloop.entity.output"))


def _retrieval(attrs: Mapping[str, object], groups: Groups, view: SpanView) -> None:
    for i in sorted(groups.get("doc", {})):
        fields = groups["doc"][i]
        content = _str(fields.get("document.content"))
        if content is not None:
            view.documents.append(Document(content, str(fields.get("document.id") or ""),
                                           finite_number(fields.get("document.score"))))  # fmt: skip
    docs = _json(attrs.get("gen_ai.retrieval.documents"))
    if not view.documents and isinstance(docs, list):
        for doc in docs:
            if isinstance(doc, Mapping) and isinstance(doc.get("content"), str):
                view.documents.append(Document(doc["content"], str(doc.get("id") or "")))
    query = _str(attrs.get("gen_ai.retrieval.query.text"))
    if query and view.input_text is None:
        view.input_text = query


def _tool(attrs: Mapping[str, object], view: SpanView) -> None:
    view.tool_name = _str(attrs.get(sc.TOOL_NAME)) or _str(attrs.get(sc.GEN_AI_TOOL_NAME))
    view.tool_description = _str(attrs.get(sc.TOOL_DESCRIPTION)) or _str(
        attrs.get("gen_ai.tool.description")
    )
    view.tool_args = _str(attrs.get(sc.GEN_AI_TOOL_CALL_ARGUMENTS)) or view.input_text
    view.tool_result = _str(attrs.get(sc.GEN_AI_TOOL_CALL_RESULT)) or view.output_text
