"""One LLM call recorded as two spans: a *start* span with the input messages and no output,
then a *success* span with the output and no input at all (tools likewise: arguments, then
result). BeeAI framework 0.1 through OpenInference does this: each emitter event ``start`` /
``success`` became its own span, siblings under the agent iteration.

:func:`pair_halves` finds such pairs among siblings, in start order, and moves the success
half's output into the start half's view, so the call reads as one LLM span; the success half
becomes kind ``"merged"`` (used, not skipped). A success half pairs with the latest unpaired
start half under the same parent (same model when both name one; same ``target`` stem when
both carry BeeAI's ``target`` event path). BeeAI's counters are kept out of parameter
addresses: a start half is named by its event path stem (``backend.ollama.chat``) and an
iteration group span (``target == "groupId"``, ``iteration-3``) loses its ``-3``, so one
prompt used in every iteration is one parameter. Pure apart from updating the given views.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Final

from ..spanview import Message, ToolCall

if TYPE_CHECKING:
    from ..spanview import SpanView
    from ..tree import SpanNode

__all__ = ["MERGED", "pair_halves"]

MERGED: Final = "merged"  # a SpanKind
_COUNTER = re.compile(r"-\d+$")
_SUFFIXES = (".start", ".success", ".finish")


def _stem(attrs: Mapping[str, object]) -> str | None:
    target = attrs.get("target")
    if isinstance(target, str):
        for suffix in _SUFFIXES:
            if target.endswith(suffix):
                return target[: -len(suffix)]
    return None


def _compatible(
    start: SpanNode, start_view: SpanView, success: SpanNode, view: SpanView
) -> bool:
    if start_view.model and view.model and start_view.model != view.model:
        return False
    a, b = _stem(start.record.attributes), _stem(success.record.attributes)
    return a is None or b is None or a == b


def _half(node: SpanNode, view: SpanView) -> str | None:
    """``"start"`` / ``"success"`` when the span looks like that half of a split call, else
    None. A success half has no input of any kind (an LLM span with only ``input.value`` is a
    whole call). Tool halves need BeeAI's ``target`` path: a tool span without a result is
    otherwise just a tool span without a result."""
    if view.kind == "llm":
        has_output = view.output_value is not None
        if view.messages and not has_output:
            return "start"
        if (
            has_output
            and not view.messages
            and not view.input_text
            and not view.templates
        ):
            return "success"
    elif view.kind == "tool" and _stem(node.record.attributes) is not None:
        target = str(node.record.attributes.get("target"))
        if view.tool_result is None and target.endswith(".start"):
            return "start"
        if view.tool_result is not None and target.endswith(".success"):
            return "success"
    return None


def _merge(start: SpanNode, start_view: SpanView, view: SpanView) -> None:
    stem = _stem(start.record.attributes)
    if stem is not None:
        start_view.name = stem  # "backend.ollama.chat", not the per-event "...start-3"
    if start_view.kind == "tool":
        start_view.tool_result = view.tool_result
        start_view.output_text = view.output_text
        params = start.record.attributes.get(
            "tool.parameters"
        )  # BeeAI: the call's input
        if start_view.tool_args is None and isinstance(params, str):
            start_view.tool_args = params
        if not start_view.tool_name and stem is not None:
            start_view.tool_name = stem
    else:
        start_view.output_messages = [
            _with_calls(m, view.output_text) for m in view.output_messages
        ]
        start_view.output_text = view.output_text
        start_view.model = start_view.model or view.model
    view.kind = MERGED


def _with_calls(message: Message, output_text: str | None) -> Message:
    """BeeAI keeps only text in ``llm.output_messages``; a tool-calling answer is empty there
    and its calls exist only in ``output.value`` (``{"type": "tool-call", "tool_name",
    "args"}`` parts)."""
    if message.content or message.tool_calls or not output_text:
        return message
    try:
        parsed = json.loads(output_text)
    except (
        ValueError,
        RecursionError,
    ):  # hostile JSON nested too deep is not JSON here
        return message
    calls = []
    for item in parsed if isinstance(parsed, list) else ():
        content = item.get("content") if isinstance(item, Mapping) else None
        for part in content if isinstance(content, list) else ():  # a number or text: no calls
            if (
                isinstance(part, Mapping)
                and part.get("type") == "tool-call"
                and isinstance(part.get("tool_name"), str)
            ):
                args = part.get("args")
                calls.append(ToolCall(part["tool_name"], args if isinstance(args, str) else json.dumps(args),
                                      str(part.get("id") or "")))  # fmt: skip
    return dataclasses.replace(message, tool_calls=tuple(calls)) if calls else message


def pair_halves(nodes: Iterable[SpanNode], views: Mapping[int, SpanView]) -> int:
    """Merge start/success halves in place; returns the number of pairs merged."""
    pending: dict[
        tuple[str, int, str], list[SpanNode]
    ] = {}  # (trace, id(parent), kind) -> starts
    merged = 0
    for node in sorted(nodes, key=lambda n: n.order):
        view = views[id(node)]
        if (
            node.record.attributes.get("target") == "groupId"
        ):  # BeeAI "iteration-3" group spans:
            view.name = _COUNTER.sub(
                "", view.name
            )  # one address for a prompt in every iteration
        half = _half(node, view)
        if half is None:
            continue
        key = (node.record.trace_id, id(node.parent), view.kind)
        if half == "start":
            stem = _stem(node.record.attributes)
            view.name = stem or view.name  # one address for every call, paired or not
            pending.setdefault(key, []).append(node)
            continue
        starts = pending.get(key, [])
        for i in range(len(starts) - 1, -1, -1):
            if _compatible(starts[i], views[id(starts[i])], node, view):
                _merge(starts[i], views[id(starts[i])], view)
                del starts[i]
                merged += 1
                break
    return merged
