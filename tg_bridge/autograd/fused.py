"""Fused backward: ONE call per run for the whole graph (the Trace/OptoPrime idea).

The run reachable from a root is rendered as readable text — parameters get ids ``p1, p2,
...`` and other nodes ``n1, n2, ...`` in topological order, computed nodes name their
operation and inputs by id — followed by the feedback on the result. The answer is a JSON
object ``{"feedback": {"p1": "...", ...}}`` requested with a schema that has one required
string property per parameter id (so constrained decoding works on small models); engines
without structured output are asked for ``<feedback id="p1">...</feedback>`` blocks instead.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from ..engines.base import Completion
from ..exceptions import OptimizerOutputError
from ..graph import topological_order
from ..variable import Variable
from . import _engine, prompts
from ._engine import lenient_json
from .render import MAX_CONTEXT_CHARS, clip, render_feedback, render_node
from .rules import metric_feedback
from .schedule import Caller, _gather_in_order

__all__ = ["feedback_schema", "fused_backward", "parse_feedback", "render_run"]

log = logging.getLogger(__name__)

_TAG = re.compile(r'<feedback\s+id\s*=\s*"?(\w+)"?\s*>(.*?)</feedback>', re.DOTALL | re.IGNORECASE)

RETRY_NOTE = (
    "Your answer could not be read. Answer again, with feedback for each of: {ids}, in exactly "
    "the requested format."
)


def feedback_schema(ids: Sequence[str]) -> dict[str, object]:
    """JSON schema: ``{"feedback": {id: string, ...}}`` with every id required."""
    return {
        "type": "object",
        "properties": {
            "feedback": {
                "type": "object",
                "properties": {i: {"type": "string"} for i in ids},
                "required": list(ids),
                "additionalProperties": False,
            }
        },
        "required": ["feedback"],
        "additionalProperties": False,
    }


def render_run(
    root: Variable, trainable: set[int]
) -> tuple[str, str, list[tuple[str, Variable]]]:
    """(graph text, feedback text, [(id, parameter)]) for the run reachable from ``root``."""
    nodes = topological_order([root])
    ids: dict[int, str] = {}
    params: list[tuple[str, Variable]] = []
    counts = {"p": 0, "n": 0}
    for node in nodes:
        prefix = "p" if id(node) in trainable else "n"
        counts[prefix] += 1
        ids[id(node)] = f"{prefix}{counts[prefix]}"
        if prefix == "p":
            params.append((ids[id(node)], node))
    blocks: list[str] = []
    feedback: list[str] = []
    for node in nodes:
        nid = ids[id(node)]
        if node.op is not None:
            args = ", ".join(ids.get(id(v), "?") for v in node.op.inputs)
            label = node.op.name or str(node.op.attrs.get("name", "")) or node.op.kind
            head = f"{nid} = {node.op.kind} {label!r}({args}) -- {node.role}"
        else:
            tag = "trainable parameter" if id(node) in trainable else "fixed"
            head = f"{nid} ({tag}) -- {node.role}"
        blocks.append(f"{head}\n{render_node(node)}")
        if node.op is not None and node.op.kind == "loss":
            feedback.append(_loss_feedback(node, ids))
        if node.gradients and id(node) not in trainable:
            feedback.append(f"Feedback on {nid}:\n{render_feedback(node.gradients)}")
    return "\n\n".join(blocks), "\n\n".join(feedback) or "(no feedback)", params


def _loss_feedback(loss: Variable, ids: dict[int, str]) -> str:
    assert loss.op is not None
    targets = ", ".join(ids.get(id(v), "?") for v in loss.op.inputs)
    if "instruction" in loss.op.attrs:
        return (
            f"An evaluator judged {targets} with the instruction:\n"
            f"{loss.op.attrs['instruction']}\nIts evaluation is {ids[id(loss)]} above."
        )
    return f"On {targets}: {metric_feedback(loss)}"


def parse_feedback(completion: Completion, ids: Sequence[str]) -> dict[str, str] | None:
    """id -> feedback from a JSON answer or tagged blocks; None when nothing is readable."""
    data = completion.parsed
    if not isinstance(data, dict):
        data = lenient_json(completion.text)
    if isinstance(data, dict) and isinstance(data.get("feedback"), dict):
        found = {i: str(data["feedback"][i]).strip() for i in ids if i in data["feedback"]}
        if found:
            return found
    found = {}
    for pid, text in _TAG.findall(completion.text):
        if pid in ids and pid not in found:
            found[pid] = text.strip()
    if found:
        return found
    if len(ids) == 1 and completion.text.strip() and not completion.text.lstrip().startswith("{"):
        return {ids[0]: completion.text.strip()}
    return None


async def _one_run(root: Variable, trainable: set[int], caller: Caller) -> list[tuple[Variable, str, str]]:
    graph_text, feedback_text, params = render_run(root, trainable)
    if not params:
        return []
    ids = [pid for pid, _ in params]
    structured = _engine.supports_structured(caller.engine)
    answer_format = (
        prompts.FUSED_FORMAT_JSON if structured else prompts.FUSED_FORMAT_TAGS.format(example_id=ids[0])
    )
    messages = [
        {"role": "system", "content": prompts.FUSED_SYSTEM.format(data_note=prompts.DATA_NOTE)},
        {
            "role": "user",
            "content": prompts.FUSED_USER.format(
                graph=graph_text, feedback=feedback_text, ids=", ".join(ids), answer_format=answer_format
            ),
        },
    ]
    schema = feedback_schema(ids) if structured else None
    completion = await caller.completion(messages, schema)
    found = parse_feedback(completion, ids)
    if found is None:  # one bounded retry
        retry = messages + [
            {"role": "assistant", "content": completion.text},
            {"role": "user", "content": RETRY_NOTE.format(ids=", ".join(ids))},
        ]
        completion = await caller.completion(retry, schema)
        found = parse_feedback(completion, ids)
    if found is None:
        raise OptimizerOutputError(
            "the fused feedback answer could not be parsed (after one retry)", raw=completion.text
        )
    missing = [i for i in ids if i not in found]
    if missing:
        log.info("fused feedback gave nothing for %s", ", ".join(missing))
    context = clip(f"The run:\n{graph_text}\n\nFeedback on the result:\n{feedback_text}", MAX_CONTEXT_CHARS)
    return [(param, found[pid], context) for pid, param in params if pid in found]


async def fused_backward(
    roots: Sequence[Variable], needs: dict[int, bool], trainable: set[int], caller: Caller
) -> None:
    """One call per root (concurrently); feedback appended to parameters in root order."""
    del needs  # fused mode only addresses parameters directly
    results = await _gather_in_order([_one_run(r, trainable, caller) for r in roots], "fused backward")
    for root, items in zip(roots, results):
        for param, text, context in items:
            before = len(param.gradients)
            param.add_gradient(text, source=root, context=context)
            caller.report.gradients += len(param.gradients) - before
