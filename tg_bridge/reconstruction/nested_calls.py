"""Merge the nested spans of ONE model call into one LLM span.

Some LLM classes implement a call by calling another decorated method of the same call:
LlamaIndex ``OpenAILike.chat`` calls ``super().chat()``, so two spans exist for one request.
The framework's events fire inside the innermost one, so the outer span (the one with the LLM
kind) carries only the output while an inner span (CHAIN kind, or no kind) carries the
messages. Read as they are, the messages sit on a span that is not a model call and the call
has no input: no prompt of that call becomes a parameter.

:func:`merge_nested_calls` folds such an inner span into its LLM span: the merged record keeps
the outer span's identity, kind and attributes and takes what it lacks (input messages,
model, token counts, ...) from the inner one; the inner span's children move up to the
merged span. A span counts as part of the same call when it lies below an LLM span that has
no input messages, no other LLM span lies between them, it carries input messages itself,
and it names the same step (same span name or framework node type) or returned the same
output text. Spans of other shapes are left exactly as they are. Pure; linear in the spans.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from .. import semconv as sc
from .messages import view_of
from .spanview import SpanView

if TYPE_CHECKING:
    from ..spans import SpanRecord
    from .tree import SpanNode

__all__ = ["merge_nested_calls"]

logger = logging.getLogger(__name__)

#: How deep below the LLM span the span with the messages may sit (wrappers of wrappers).
_MAX_DEPTH = 4


def merge_nested_calls(nodes: Sequence[SpanNode],
                       read: dict[int, SpanView] | None = None) -> tuple[list[SpanNode], int]:  # fmt: skip
    """``nodes`` (parents set, children not yet linked) with every inner span of a nested
    model call folded into its LLM span. Returns (remaining nodes in input order, merges).

    ``read``, when given, receives the view of every remaining node whose view was read
    here without error, keyed by ``id(node)`` (reconstruction reuses them instead of
    reading each span's attributes a second time)."""
    views: dict[int, SpanView] = {}
    failed: set[int] = set()
    children: dict[int, list[SpanNode]] = {}
    for node in nodes:
        if node.parent is not None:
            children.setdefault(id(node.parent), []).append(node)

    def view(node: SpanNode) -> SpanView:
        found = views.get(id(node))
        if found is None:
            try:
                found = view_of(node.name, node.record.attributes, node.record.events)
            except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError):
                found = SpanView(name=node.name)
                failed.add(id(node))  # reconstruction reads it again and counts it unreadable
            views[id(node)] = found
        return found

    removed: set[int] = set()
    for outer in nodes:
        if id(outer) in removed:
            continue
        outer_view = view(outer)
        if outer_view.kind != "llm" or outer_view.messages:
            continue
        inner = _inner_call(outer, outer_view, children, view)
        if inner is None:
            continue
        outer.record = _merged(outer.record, inner.record)
        views.pop(id(outer), None)
        for child in children.pop(id(inner), []):
            child.parent = outer
            children.setdefault(id(outer), []).append(child)
        siblings = children.get(id(outer), [])
        children[id(outer)] = [c for c in siblings if c is not inner]
        removed.add(id(inner))
    if removed:
        logger.debug("merged %d nested span(s) of one model call", len(removed))
    if read is not None:
        read.update((k, v) for k, v in views.items() if k not in failed and k not in removed)
    return [n for n in nodes if id(n) not in removed], len(removed)


def _inner_call(outer: SpanNode, outer_view: SpanView, children: dict[int, list[SpanNode]],
                view: Callable[[SpanNode], SpanView]) -> SpanNode | None:  # fmt: skip
    """The first span below ``outer`` (breadth first, no LLM span in between) that carries
    the messages of the same call, or None."""
    level = list(children.get(id(outer), []))
    for _ in range(_MAX_DEPTH):
        below: list[SpanNode] = []
        for node in sorted(level, key=lambda n: (n.record.start_ns, n.index)):
            inner_view = view(node)
            if inner_view.kind == "llm":
                continue  # another model call (or a wrapper reconstruction already handles)
            if inner_view.messages and _same_call(outer, outer_view, node, inner_view):
                return node
            below.extend(children.get(id(node), []))
        if not below:
            return None
        level = below
    return None


def _same_call(outer: SpanNode, outer_view: SpanView, inner: SpanNode, inner_view: SpanView) -> bool:
    if outer.name == inner.name:
        return True
    outer_type = outer.record.attributes.get(sc.NODE_TYPE)
    if isinstance(outer_type, str) and outer_type and outer_type == inner.record.attributes.get(sc.NODE_TYPE):
        return True
    out_a, out_b = outer_view.output_value, inner_view.output_value
    return bool(out_a and out_a.strip()) and out_a == out_b


def _merged(outer: SpanRecord, inner: SpanRecord) -> SpanRecord:
    """``outer`` with the attributes it lacks taken from ``inner`` (outer's own win)."""
    attributes = dict(inner.attributes)
    attributes.update(outer.attributes)
    return dataclasses.replace(outer, attributes=attributes, events=tuple(outer.events) + tuple(inner.events))
