"""Backward rules, one small function per operation kind, in a registry.

A rule is ``async rule(ctx, var) -> list[Edge]`` where ``var`` is a variable computed by an
operation (``var.op``) that has feedback to pass on (or is a loss). It returns the gradients
for the inputs that need one, as ``Edge(target, text, context)`` records, in input order.
Rules never append gradients themselves: the scheduler does, in a deterministic order.

``ctx.ask(messages) -> str`` makes one counted LLM call; ``ctx.needs_grad(v)`` says whether
``v`` leads to a trainable parameter. Register your own with :func:`register_rule`.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable

from ..exceptions import GraphError, UsageError
from ..variable import Variable
from . import prompts
from .render import describe_operation, edge_context, render_feedback, render_inputs, render_node

__all__ = ["Edge", "RuleContext", "get_rule", "register_rule", "registered_kinds"]


@dataclasses.dataclass(frozen=True)
class Edge:
    """One gradient to add: ``text`` for ``target``, with the ``context`` it was written in."""

    target: Variable
    text: str
    context: str = ""


@dataclasses.dataclass
class RuleContext:
    """What a rule may use: a counted ``ask`` and the ``needs_grad`` predicate."""

    ask: Callable[[list[dict[str, str]]], Awaitable[str]]
    needs_grad: Callable[[Variable], bool]


Rule = Callable[[RuleContext, Variable], Awaitable["list[Edge]"]]
_RULES: dict[str, Rule] = {}


def register_rule(kind: str, rule: Rule) -> None:
    """Use ``rule`` for operations of ``kind`` (replacing any previous rule)."""
    if not isinstance(kind, str) or not kind:
        raise UsageError("rule kind must be a non-empty string")
    if not callable(rule):
        raise UsageError("rule must be an async callable (ctx, var) -> list[Edge]")
    _RULES[kind] = rule


def get_rule(kind: str) -> Rule:
    """The rule for ``kind``; :class:`GraphError` when none is registered."""
    try:
        return _RULES[kind]
    except KeyError:
        raise GraphError(
            f"no backward rule for operation kind {kind!r}; known: {', '.join(sorted(_RULES))}"
        ) from None


def registered_kinds() -> list[str]:
    return sorted(_RULES)


def _grad_inputs(ctx: RuleContext, var: Variable) -> list[Variable]:
    """Inputs of ``var.op`` that need a gradient, each once, in input order."""
    assert var.op is not None
    out: list[Variable] = []
    for v in var.op.inputs:
        if ctx.needs_grad(v) and not any(v is seen for seen in out):
            out.append(v)
    return out


def _system() -> dict[str, str]:
    return {"role": "system", "content": prompts.BACKWARD_SYSTEM.format(data_note=prompts.DATA_NOTE)}


async def edge_rule(ctx: RuleContext, var: Variable) -> list[Edge]:
    """One LLM call per input that needs a gradient; each carries the step (conversation or
    inputs), its output and ALL feedback on the output: the chain rule in text.

    Used for ``llm_call``, ``retrieval``, ``tool_call`` and ``function``.
    """
    op = var.op
    assert op is not None
    targets = _grad_inputs(ctx, var)
    if not targets:
        return []
    operation, inputs = describe_operation(op), render_inputs(op)
    output, feedback = render_node(var), render_feedback(var.gradients)
    context = edge_context(op, var)

    def messages(target: Variable) -> list[dict[str, str]]:
        user = prompts.EDGE_USER.format(
            operation=operation,
            inputs=inputs,
            output_role=var.role,
            output=output,
            feedback=feedback,
            target_role=target.role,
            target=render_node(target),
        )
        return [_system(), {"role": "user", "content": user}]

    texts = await asyncio.gather(*(ctx.ask(messages(t)) for t in targets))
    return [Edge(t, text, context) for t, text in zip(targets, texts)]


async def format_rule(ctx: RuleContext, var: Variable) -> list[Edge]:
    """No LLM call: feedback on a formatted text is feedback on its template and on every
    value filled into it (each gets the same feedback, with the formatted text as context)."""
    targets = _grad_inputs(ctx, var)
    if not targets:
        return []
    text = render_feedback(var.gradients)
    context = prompts.FORMAT_CONTEXT.format(role=var.role, output=render_node(var))
    return [Edge(t, text, context) for t in targets]


async def loss_rule(ctx: RuleContext, var: Variable) -> list[Edge]:
    """Seed feedback on what the loss evaluated.

    A judge (``attrs["instruction"]``): one call turning the evaluation into criticism.
    A metric (``attrs["metric"]``): no call; the score and the metric's feedback ARE the
    feedback. Feedback already on the loss variable (e.g. a human's) is passed on as well.
    """
    op = var.op
    assert op is not None
    targets = _grad_inputs(ctx, var)
    if not targets:
        return []
    attrs = op.attrs
    edges: list[Edge] = []
    if "instruction" in attrs:
        evaluated = targets[0]
        user = prompts.LOSS_USER.format(
            instruction=str(attrs["instruction"]),
            output_role=evaluated.role,
            output=render_node(evaluated),
            evaluation=render_node(var),
        )
        text = await ctx.ask([_system(), {"role": "user", "content": user}])
        context = f"Evaluation ({var.role}):\n{render_node(var)}"
        edges.extend(Edge(t, text, context) for t in targets)
    else:
        text = metric_feedback(var)
        edges.extend(Edge(t, text, f"metric {attrs.get('metric', 'metric')!r}") for t in targets)
    for g in var.gradients:
        edges.extend(Edge(t, g.text, g.context) for t in targets)
    return edges


def metric_feedback(var: Variable) -> str:
    """The feedback text of a MetricLoss variable (score + the metric's own words)."""
    attrs = var.op.attrs if var.op is not None else {}
    extra = str(attrs.get("feedback") or "").strip()
    return prompts.METRIC_FEEDBACK.format(
        metric=str(attrs.get("metric", "metric")),
        score=attrs.get("score", var.metadata.get("score")),
        feedback=f" {extra}" if extra else "",
    )


for _kind in ("llm_call", "retrieval", "tool_call", "function"):
    register_rule(_kind, edge_rule)
register_rule("format", format_rule)
register_rule("loss", loss_rule)
