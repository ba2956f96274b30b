"""Which offered template rendered which message of an LLM call.

An *offer* is a span that reports templates (LangChain PROMPT span, LlamaIndex predict span,
a span with ``tg_bridge.templates``). An LLM call claims the latest offer in scope (the call
itself, an ancestor, or a sibling of the call or of one of its ancestors) whose templates
render to (or pattern-match) its messages. For an OpenInference chat prompt, which records only
the FIRST message's template, the other messages' templates are recovered by substituting the
prompt's variable values back into the rendered text. Pure.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from .messages import Message, SpanView, TemplateInfo
from .templates import match_template, placeholders, recover_template, render, static_text
from .tree import SpanNode

__all__ = ["claim", "contained", "has_static_text", "placeholders_of", "render_offer"]

Claim = tuple[TemplateInfo, dict[str, str], SpanNode]
_T = TypeVar("_T")
_SAME_ROLE = {"human": "user", "ai": "assistant"}
# Containment is a weaker signal than an exact rendering: short fixed texts ("Answer:") occur
# by chance, so they never count; the scan is capped so huge spans stay cheap.
_MIN_CONTAINED_CHARS = 12
_MAX_CONTAINED_TEXT = 200_000
_MAX_CONTAINED_TEMPLATES = 64  # templates examined per call
_MAX_CONTAINED_FOUND = 8
# Per-template facts are cached (the same few templates recur in every trace of a file); a
# template longer than this is not: the cache must not pin huge hostile strings in memory.
_MAX_CACHED_TEMPLATE = 20_000


def _cached_unless_long(fact: Callable[[str, str], _T]) -> Callable[[str, str], _T]:
    """``fact(template, fmt)``, cached for templates up to :data:`_MAX_CACHED_TEMPLATE` chars."""
    cached = functools.lru_cache(maxsize=1024)(fact)
    return lambda template, fmt: fact(template, fmt) if len(template) > _MAX_CACHED_TEMPLATE else cached(template, fmt)


@_cached_unless_long
def _placeholders(template: str, fmt: str) -> tuple[str, ...]:
    return tuple(placeholders(template, fmt))  # immutable: the cache hands out copies


@_cached_unless_long
def _has_static_text(template: str, fmt: str) -> bool:
    return bool(static_text(template, fmt).strip())


@_cached_unless_long
def _fixed_text(template: str, fmt: str) -> str | None:
    """The stripped template when :func:`contained` may look for it inside a message: no
    placeholders and at least 12 characters; else None."""
    fixed = template.strip()
    if len(fixed) < _MIN_CONTAINED_CHARS or placeholders(template, fmt):
        return None
    return fixed


def placeholders_of(info: TemplateInfo) -> list[str]:
    return list(_placeholders(info.template, info.fmt))


def has_static_text(info: TemplateInfo) -> bool:
    return _has_static_text(info.template, info.fmt)


def render_offer(view: SpanView) -> str | None:
    """The prompt an LLM span with a template but no recorded messages must have sent."""
    if not view.templates:
        return None
    info = view.templates[0]
    return render(info.template, view.variables, info.fmt)


def claim(
    offers: Sequence[SpanNode],
    views: Mapping[int, SpanView],
    llm: SpanNode,
    messages: Sequence[Message],
    completion: bool,
) -> dict[int, Claim]:
    """Message index -> (template, its values, offering span) for the best offer in scope."""
    for offer in _in_scope(offers, llm):
        found = _match_offer(views[id(offer)], offer, messages, completion)
        if found:
            return found
    return {}


def contained(
    offers: Sequence[SpanNode],
    views: Mapping[int, SpanView],
    llm: SpanNode,
    text: str,
    taken: Sequence[TemplateInfo] = (),
) -> list[tuple[TemplateInfo, SpanNode]]:
    """Fixed-text templates (no placeholders) of offers in scope that occur INSIDE ``text``.

    For a prompt the app owns that a framework pastes into a larger rendered message (a
    LlamaIndex ReAct agent's ``system_prompt`` inside its ReAct header). Templates in
    ``taken`` (already claimed exactly) are skipped; the latest offer wins for a repeated
    text; overlapping finds keep the longer one; shorter than 12 characters never counts.
    Returns (template, offering span) in order of position in ``text``. Bounded, pure.
    """
    if not text or len(text) > _MAX_CONTAINED_TEXT:
        return []
    candidates: list[tuple[str, TemplateInfo, SpanNode]] = []
    seen: set[str] = set()
    for offer in _in_scope(offers, llm):
        for info in views[id(offer)].templates:
            if len(candidates) >= _MAX_CONTAINED_TEMPLATES:
                break
            fixed = _fixed_text(info.template, info.fmt)
            if fixed is None or fixed in seen or any(info is t for t in taken):
                continue
            seen.add(fixed)
            candidates.append((fixed, info, offer))
    candidates.sort(key=lambda c: -len(c[0]))  # stable: latest offer first on ties
    found: list[tuple[int, int, TemplateInfo, SpanNode]] = []  # (start, end, ...)
    for fixed, info, offer in candidates:
        start = text.find(fixed)
        end = start + len(fixed)
        if start == -1 or any(s < end and start < e for s, e, _, _ in found):
            continue
        found.append((start, end, info, offer))
        if len(found) >= _MAX_CONTAINED_FOUND:
            break
    found.sort(key=lambda f: f[0])
    return [(info, offer) for _, _, info, offer in found]


def _in_scope(offers: Sequence[SpanNode], llm: SpanNode) -> list[SpanNode]:
    """Offers an LLM call may use, latest first: the call itself, an ancestor, or a sibling
    of the call or of one of its ancestors, started no later than the call."""
    ancestors = {id(a) for a in llm.ancestors()}
    return [
        offer for offer in reversed(offers)
        if offer.order <= llm.order and (
            offer is llm or id(offer) in ancestors
            or (offer.parent is not None and id(offer.parent) in ancestors))
    ]  # fmt: skip


def _role(role: str | None) -> str | None:
    return _SAME_ROLE.get(role, role) if role else role


def _fits(info: TemplateInfo, text: str, values: Mapping[str, str]) -> dict[str, str] | None:
    names = placeholders(info.template, info.fmt)
    rendered = render(info.template, values, info.fmt)
    if rendered is not None and rendered.strip() == text.strip():
        return {n: values[n] for n in names}
    if rendered is not None and _framework_suffix(rendered.strip(), text.strip()):
        return {n: values[n] for n in names}
    return match_template(info.template, text, info.fmt)


def _framework_suffix(rendered: str, text: str) -> bool:
    """``text`` is ``rendered`` plus a block the framework appended after a line break (an
    output parser's format instructions, e.g. LlamaIndex selectors and question generators)."""
    return (len(rendered) >= _MIN_CONTAINED_CHARS and len(text) > len(rendered)
            and text.startswith(rendered) and text[len(rendered)] in "\r\n")  # fmt: skip


def _match_offer(
    view: SpanView, offer: SpanNode, messages: Sequence[Message], completion: bool
) -> dict[int, Claim]:
    assigned: dict[int, Claim] = {}
    templates = sorted(view.templates, key=lambda t: (t.index is None, t.index or 0))
    for info in templates:
        order = list(range(len(messages)))
        if info.index is not None and 0 <= info.index < len(messages):
            order.remove(info.index)
            order.insert(0, info.index)
        for k in order:
            message = messages[k]
            if k in assigned or (info.role and _role(info.role) != _role(message.role)):
                continue
            values = _fits(info, message.content, view.variables)
            if values is not None:
                assigned[k] = (info, values, offer)
                break
    if assigned and _recoverable(view, completion):
        _recover_rest(view, offer, messages, assigned)
    return assigned


def _recoverable(view: SpanView, completion: bool) -> bool:
    return (
        not completion
        and view.kind == "prompt"
        and len(view.templates) == 1
        and view.templates[0].source == "openinference"
    )


def _recover_rest(
    view: SpanView, offer: SpanNode, messages: Sequence[Message], assigned: dict[int, Claim]
) -> None:
    rendered = _rendered_contents(view.output_text)
    for k, message in enumerate(messages):
        if k in assigned or message.tool_calls or _role(message.role) not in ("system", "user"):
            continue
        if rendered is not None and message.content not in rendered:
            continue  # not produced by this prompt (e.g. a message added later)
        template, used = recover_template(message.content, view.variables)
        info = TemplateInfo(template, "f-string", role=message.role, index=k, source="recovered")
        assigned[k] = (info, {n: view.variables[n] for n in used}, offer)


def _rendered_contents(output: str | None) -> list[str] | None:
    """Message contents of a LangChain PROMPT span's output (a serialized ChatPromptValue)."""
    if not output:
        return None
    try:
        obj: object = json.loads(output)
    except (ValueError, RecursionError):  # hostile JSON nested too deep is not JSON here
        return None
    items = obj.get("messages") if isinstance(obj, Mapping) else None
    if not isinstance(items, list):
        return None
    out = []
    for item in items:
        if isinstance(item, Mapping):
            content = item.get("content")
            if not isinstance(content, str) and isinstance(item.get("kwargs"), Mapping):
                content = item["kwargs"].get("content")
            if isinstance(content, str):
                out.append(content)
    return out
