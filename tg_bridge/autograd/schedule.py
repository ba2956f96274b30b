"""backward()/abackward(): who gets a gradient, in which order, and how calls are batched.

Edge mode walks :meth:`Graph.reverse_levels` (roots first). Every variable of one level that
has feedback (or is a loss) runs its rule; the rules of one level — across all the roots of a
batch — run concurrently (the engine's shared limit bounds the calls in flight), and their
gradients are appended afterwards in level order, so prompts are deterministic. A variable
with more than K gradients has them summarized before it passes feedback upstream.

Only variables that lead to a trainable parameter ("needs grad": a trainable ancestor or
self) receive gradients; nothing else costs a call.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Awaitable, Sequence
from typing import TypeVar, get_args

from ..config import get_settings
from ..engines.base import Completion, Engine
from ..engines.sync import run_sync
from ..exceptions import DisconnectedParameterWarning, GraphError, TgBridgeError, UsageError
from ..graph import Graph
from ..variable import Variable, unique_variables
from . import _engine
from .report import BackwardMode, BackwardReport, LevelStats, is_backward_mode
from .rules import RuleContext, get_rule
from .summarize import summarize_gradients

__all__ = ["abackward", "backward"]

MODES: tuple[BackwardMode, ...] = get_args(BackwardMode)

_T = TypeVar("_T")


class Caller:
    """Counts calls and resolves the engine on first use (a pass with no LLM work needs none)."""

    def __init__(self, engine: object, report: BackwardReport) -> None:
        self._engine_arg = engine
        self._engine: Engine | None = None
        self.report = report

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = _engine.resolve(self._engine_arg, backward=True)
        return self._engine

    async def completion(self, messages: list[dict[str, str]], response_format: object = None) -> Completion:
        engine = self.engine
        self.report.calls += 1
        return await _engine.ask(engine, messages, response_format=response_format)

    async def text(self, messages: list[dict[str, str]]) -> str:
        return (await self.completion(messages)).text.strip()

    async def summary(self, messages: list[dict[str, str]]) -> str:
        self.report.summaries += 1
        return await self.text(messages)


def _as_roots(roots: Variable | Sequence[Variable]) -> list[Variable]:
    return unique_variables(roots, what="backward roots",
                            empty_message="backward needs at least one root Variable")


def needs_grad_map(nodes: Sequence[Variable], trainable: set[int]) -> dict[int, bool]:
    """id -> needs grad, for nodes in topological order (parents first). Iterative."""
    needs: dict[int, bool] = {}
    for node in nodes:
        needs[id(node)] = id(node) in trainable or any(needs.get(id(p), False) for p in node.parents)
    return needs


def _trainable(graph: Graph, parameters: Sequence[Variable] | None, report: BackwardReport) -> set[int]:
    if parameters is None:
        return {id(v) for v in graph.nodes if v.requires_grad}
    present = {id(v) for v in graph.nodes}
    for p in parameters:
        if not isinstance(p, Variable):
            raise UsageError(f"parameters must be Variables, got {type(p).__name__}")
        if id(p) not in present:
            report.disconnected.append(p.key)
            warnings.warn(
                f"parameter {p.role!r} ({p.key}) cannot reach any backward root; it will get"
                " no feedback",
                DisconnectedParameterWarning,
                stacklevel=4,
            )
    return {id(p) for p in parameters if id(p) in present}


async def abackward(
    roots: Variable | Sequence[Variable],
    *,
    engine: object = None,
    mode: BackwardMode = "edge",
    max_gradients: int | None = None,
    parameters: Sequence[Variable] | None = None,
) -> BackwardReport:
    """Propagate feedback from ``roots`` (losses, or variables holding feedback) to every
    trainable parameter they depend on; returns a :class:`BackwardReport`.

    ``roots``: one Variable or a batch (one per run; merged graphs share parameters).
    ``mode``: ``"edge"`` (one call per edge into a variable that needs grad) or ``"fused"``
    (one call per root for its whole graph). ``parameters``: restrict training to these (a
    :class:`DisconnectedParameterWarning` for any that cannot reach a root); default: every
    ``requires_grad`` variable. ``max_gradients``: K, default ``settings.max_gradients``.

    Gradients accumulate on the variables (call ``zero_grad`` between steps). Raises
    :class:`GraphError` (a cycle, a root with nothing to propagate, a failing rule),
    :class:`EngineError`, or :class:`OptimizerOutputError` (fused answer unreadable). On error,
    gradients of levels already finished stay in place.
    """
    # ``mode`` is typed str, not BackwardMode, because the loop and offline entry points still
    # hand over a plain str; this check narrows it (and rejects anything else at run time)
    if not is_backward_mode(mode):
        raise UsageError(f"mode must be one of {MODES}, got {mode!r}")
    items = _as_roots(roots)
    k = get_settings(max_gradients=max_gradients).max_gradients
    started = time.perf_counter()
    report = BackwardReport(mode=mode, roots=len(items))
    graph = Graph(items)
    trainable = _trainable(graph, parameters, report)
    for root in items:
        if not root.gradients and (root.op is None or root.op.kind != "loss"):
            raise GraphError(
                f"root {root!r} is neither a loss nor a variable with feedback; use a loss"
                " (TextLoss/MetricLoss) or tg_bridge.feedback(variable, text) first"
            )
    needs = needs_grad_map(graph.nodes, trainable)
    caller = Caller(engine, report)
    if mode == "edge":
        await _edge(graph, needs, caller, k)
    else:
        from .fused import fused_backward

        await fused_backward(items, needs, trainable, caller)
    report.parameters = sum(1 for v in graph.nodes if id(v) in trainable and v.gradients)
    report.seconds = time.perf_counter() - started
    return report


def backward(
    roots: Variable | Sequence[Variable],
    *,
    engine: object = None,
    mode: BackwardMode = "edge",
    max_gradients: int | None = None,
    parameters: Sequence[Variable] | None = None,
) -> BackwardReport:
    """Blocking :func:`abackward` (also works inside a running event loop)."""
    return run_sync(
        abackward(roots, engine=engine, mode=mode, max_gradients=max_gradients, parameters=parameters)
    )


async def _gather_in_order(coros: list[Awaitable[_T]], what: str) -> list[_T]:
    """Run concurrently; raise the first failure in input order (typed)."""
    results = await asyncio.gather(*coros, return_exceptions=True)
    done: list[_T] = []
    for r in results:
        if isinstance(r, TgBridgeError):
            raise r
        if isinstance(r, BaseException):
            if not isinstance(r, Exception):
                raise r
            raise GraphError(f"{what} failed: {type(r).__name__}: {r}") from r
        done.append(r)
    return done


async def _edge(graph: Graph, needs: dict[int, bool], caller: Caller, k: int) -> None:
    report = caller.report
    ctx = RuleContext(ask=caller.text, needs_grad=lambda v: needs.get(id(v), False))
    for index, level in enumerate(graph.reverse_levels()):
        active = [
            v
            for v in level
            if v.op is not None
            and (v.gradients or v.op.kind == "loss")
            and any(needs.get(id(p), False) for p in v.op.inputs)
        ]
        if not active:
            continue
        calls_before, grads_before = report.calls, report.gradients
        crowded = [v for v in active if len(v.gradients) > k]
        if crowded:
            merged = await _gather_in_order(
                [summarize_gradients(v.role, v.gradients, k, caller.summary) for v in crowded],
                "summarizing feedback",
            )
            for v, grads in zip(crowded, merged):
                v.gradients[:] = grads
        results = await _gather_in_order(
            [get_rule(v.op.kind)(ctx, v) for v in active if v.op is not None], "backward rule"
        )
        for v, edges in zip(active, results):
            for edge in edges:
                before = len(edge.target.gradients)
                edge.target.add_gradient(edge.text, source=v, context=edge.context)
                report.gradients += len(edge.target.gradients) - before
        report.levels.append(
            LevelStats(index, len(active), report.calls - calls_before, report.gradients - grads_before)
        )
