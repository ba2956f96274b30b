"""One LLM call recorded as two spans: a *start* span with the input messages and no output,
then a *success* span with the output and no input (BeeAI framework 0.1 through
OpenInference: each emitter event ``start`` / ``success`` became its own LLM span, siblings
under the agent iteration).

:func:`pair_halves` finds such pairs among siblings, in start order, and moves the success
half's output into the start half's view, so the call reads as one LLM span; the success half
becomes kind ``"merged"`` (used, not skipped). A success half pairs with the latest unpaired
start half under the same parent (same model when both name one; same ``target`` stem when
both carry BeeAI's ``target`` event path). Pure apart from updating the given views.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..spanview import SpanView
    from ..tree import SpanNode

__all__ = ["MERGED", "pair_halves"]

MERGED = "merged"
_SUFFIXES = (".start", ".success", ".finish")


def _stem(attrs: Mapping[str, Any]) -> str | None:
    target = attrs.get("target")
    if isinstance(target, str):
        for suffix in _SUFFIXES:
            if target.endswith(suffix):
                return target[: -len(suffix)]
    return None


def _compatible(start: SpanNode, start_view: SpanView, success: SpanNode, view: SpanView) -> bool:
    if start_view.model and view.model and start_view.model != view.model:
        return False
    a, b = _stem(start.record.attributes), _stem(success.record.attributes)
    return a is None or b is None or a == b


def pair_halves(nodes: Iterable[SpanNode], views: Mapping[int, SpanView]) -> int:
    """Merge start/success halves in place; returns the number of pairs merged."""
    pending: dict[tuple[str, int], list[SpanNode]] = {}  # (trace, id(parent)) -> unpaired starts
    merged = 0
    for node in sorted(nodes, key=lambda n: n.order):
        view = views[id(node)]
        if view.kind != "llm":
            continue
        has_output = view.output_value is not None
        if view.messages and not has_output:
            pending.setdefault((node.record.trace_id, id(node.parent)), []).append(node)
        elif has_output and not view.messages:
            starts = pending.get((node.record.trace_id, id(node.parent)), [])
            for i in range(len(starts) - 1, -1, -1):
                start_view = views[id(starts[i])]
                if _compatible(starts[i], start_view, node, view):
                    start_view.output_messages = list(view.output_messages)
                    start_view.output_text = view.output_text
                    start_view.model = start_view.model or view.model
                    view.kind = MERGED
                    del starts[i]
                    merged += 1
                    break
    return merged
