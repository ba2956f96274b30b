"""Optimize from recorded runs and user feedback, without running the app.

Two sources: OTLP JSON trace files plus a feedback JSONL file (the ``tg-bridge optimize``
command), and the production calls recorded by ``@optimizable`` with the feedback attached
through ``fn.feedback(...)``. Either way each run is rebuilt as a graph (one parameter per
prompt across runs), the feedback text is seeded as the gradient of the run's output
(:func:`tg_bridge.losses.feedback`), backward propagates it to the prompts and TGD proposes a
Patch. Parameters are named by binding key when the spans carry one, else by identity
(``name#hash``): :func:`tg_bridge.apply_patch` matches either at deploy time.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from .engines import as_engine
from .engines.sync import run_sync
from .engines.usage import Usage, usage
from .exceptions import TgBridgeError, UsageError
from .graph import Graph
from .loop.descent import Descent, Mode, pick_output
from .variable import Variable

__all__ = [
    "FeedbackEntry",
    "FeedbackOptimization",
    "afrom_graphs",
    "feedback_text",
    "optimize_from_feedback",
    "optimize_traces",
    "read_feedback",
]

log = logging.getLogger(__name__)

_HEX32 = re.compile(r"^[0-9a-f]{32}$")


@dataclasses.dataclass(frozen=True)
class FeedbackEntry:
    """One feedback line: the trace it is about, a score and/or a text."""

    trace_id: str
    score: float | None = None
    text: str | None = None


@dataclasses.dataclass
class FeedbackOptimization:
    """The proposal: ``patch`` (not applied), gradients per prompt key, how many runs were
    used / skipped, and usage per phase (backward, update)."""

    patch: Any
    gradients: dict[str, tuple[str, ...]]
    used: int
    skipped: int
    usage: dict[str, dict[str, int]]


def feedback_text(score: float | None, text: str | None) -> str:
    """The gradient seeded on a run's output for one piece of user feedback."""
    parts = []
    if score is not None:
        parts.append(f"A user rated this output {score:g} (higher is better).")
    if text and text.strip():
        parts.append(f"The user's comment: {text.strip()}")
    return " ".join(parts)


def normalize_trace_id(value: Any) -> str:
    """A trace id as 32 lowercase hex chars (accepts hex or base64, as OTLP writers differ)."""
    if not isinstance(value, str) or not value.strip():
        raise UsageError("trace_id must be a non-empty string")
    text = value.strip().lower()
    if _HEX32.match(text):
        return text
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) == 16:
        return raw.hex()
    raise UsageError(f"trace_id {value!r} is neither 32 hex characters nor base64 of 16 bytes")


def read_feedback(path: str | os.PathLike[str]) -> list[FeedbackEntry]:
    """Read a feedback JSONL file: one ``{"trace_id", "score"?, "text"?}`` per line.

    Blank lines are skipped. Raises UsageError naming the file and line for bad input.
    """
    from .traces.checks import decode_utf8, finite_number, parse_json

    entries = []
    try:
        with open(path, "rb") as fh:
            lines = fh.readlines()
    except OSError as exc:
        raise UsageError(f"cannot read feedback file {os.fspath(path)!r}: {exc}") from exc
    for number, raw in enumerate(lines, start=1):
        where = f"{os.fspath(path)}:{number}"
        line = decode_utf8(raw, _located(where, "{}"))
        if not line.strip():
            continue
        item = parse_json(line, _located(where, "not JSON ({})"))
        if not isinstance(item, Mapping):
            raise UsageError(f"{where}: expected an object with trace_id, score and/or text")
        try:
            trace_id = normalize_trace_id(item.get("trace_id"))
        except UsageError as exc:
            raise UsageError(f"{where}: {exc}") from None
        score, text = item.get("score"), item.get("text")
        if score is not None and finite_number(score) is None:
            raise UsageError(f"{where}: score must be a finite number, got {str(score)[:40]}")
        if text is not None and not isinstance(text, str):
            raise UsageError(f"{where}: text must be a string")
        if score is None and not (text or "").strip():
            raise UsageError(f"{where}: give a score, a text, or both")
        entries.append(FeedbackEntry(trace_id, None if score is None else float(score), text))
    return entries


async def afrom_graphs(
    items: Sequence[tuple[Graph, Variable | None, Sequence[str]]],
    *,
    engine: Any = None,
    mode: Mode = "edge",
    constraints: Sequence[str] = (),
    parameters: Mapping[str, Variable] | None = None,
    start_values: Mapping[str, str] | None = None,
) -> FeedbackOptimization:
    """Seed each ``(graph, output, texts)`` and propose a Patch over the shared parameters.

    ``output`` None means the graph's first output. ``engine``: the backward engine (an
    Engine is used as is; a spec or None is resolved once, here). Backward and proposal run
    through :class:`tg_bridge.loop.descent.Descent`, as in the live loop's step.

    ``start_values``: parameter key (as the runs name it) -> the text the proposal starts
    from instead of the one the runs used (successive steps over a stream: the previous
    proposal). Backward still sees the text the runs were made with; the parameters hold it
    again on return. The Patch's changes keep the runs' keys, with ``old`` = the start text.

    Raises UsageError when nothing usable is left, EngineError / OptimizerOutputError from
    the engine.
    """
    from .losses import feedback

    roots: list[Variable] = []
    skipped = 0
    for graph, output, texts in items:
        target = output if output is not None else (graph.outputs[0] if graph.outputs else None)
        texts = [t for t in texts if t and t.strip()]
        if target is None or target.requires_grad or not texts:  # a prompt kept alone is no output
            skipped += 1
            continue
        for text in texts:
            feedback(target, text)
        if all(target is not r for r in roots):
            roots.append(target)
    if not roots:
        raise UsageError("no run with feedback could be turned into a graph with an output")
    pool: list[Variable] = []
    sources = parameters.values() if parameters is not None else (
        p for graph, _, _ in items for p in graph.parameters())
    for param in sources:
        if param.requires_grad and all(param is not p for p in pool):
            pool.append(param)
    if not pool:
        raise UsageError("the runs contain no prompt to optimize")
    # the live loop's step runs the very same backward and proposal (loop.descent); the
    # engine is resolved here once (an Engine passed by the caller is used as is)
    descent = Descent(as_engine(engine, backward=True), mode, tuple(constraints))
    meters = {"backward": Usage(), "update": Usage()}
    with usage(meters["backward"]):
        gradients = await descent.backward(roots, pool)
    with usage(meters["update"]), _started_from(pool, start_values or {}) as keys:
        patch = _rekeyed(await descent.propose(pool), keys)
    return FeedbackOptimization(
        patch=patch,
        gradients=gradients,
        used=len(roots),
        skipped=skipped,
        usage={phase: _counters(m) for phase, m in meters.items()},
    )


@contextlib.contextmanager
def _started_from(pool: Sequence[Variable], values: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """Give each parameter of ``pool`` named in ``values`` that value for the proposal, and
    its own back on exit. Yields proposal-time key -> run key: a parameter keyed by its
    content hash changes key with its value, and a patch must name what the runs saw."""
    swapped = [(p, p.key, p.value) for p in pool if values.get(p.key, p.value) != p.value]
    try:
        for param, key, _ in swapped:
            param.set_value(values[key])
        yield {param.key: key for param, key, _ in swapped}
    finally:
        for param, _, value in swapped:
            param.set_value(value)


def _rekeyed(patch: Any, keys: Mapping[str, str]) -> Any:
    """``patch`` with each change (and refusal) named by its run key (see _started_from)."""
    if not keys:
        return patch
    from .patching.patch import Patch

    changes = [dataclasses.replace(c, target=keys.get(c.target, c.target)) for c in patch.changes]
    metadata = dict(patch.metadata)
    if isinstance(metadata.get("rejected"), list):
        metadata["rejected"] = [{**r, "target": keys.get(str(r.get("target")), r.get("target"))}
                                if isinstance(r, dict) else r for r in metadata["rejected"]]
    return Patch(changes, metadata)


def optimize_traces(
    traces: str | os.PathLike[str],
    feedback: str | os.PathLike[str] | Sequence[FeedbackEntry],
    *,
    engine: Any = None,
    mode: Mode = "edge",
    constraints: Sequence[str] = (),
) -> FeedbackOptimization:
    """Blocking: rebuild every trace of a trace file that has feedback and propose a Patch.

    The other traces are read but not rebuilt (they would seed no loss). Feedback for trace
    ids absent from the file is logged and ignored. When the traces with feedback hold no
    prompt, the result is an empty Patch with ``gradients == {}`` (no engine call). Raises
    UsageError / TraceFormatError for bad files, EngineError from the engine.
    """
    from .reconstruction import reconstruct
    from .traces import iter_traces

    entries = list(feedback) if not isinstance(feedback, (str, os.PathLike)) else read_feedback(feedback)
    by_trace: dict[str, list[str]] = {}
    for entry in entries:
        by_trace.setdefault(entry.trace_id, []).append(feedback_text(entry.score, entry.text))
    pool: dict[str, Variable] = {}
    graphs = 0
    items = []
    # Only the traces with feedback are rebuilt: a trace without any seeds no loss, so its
    # prompts would get no gradient and TGD would leave them as they are; reading a trace
    # costs a tenth of rebuilding it, and feedback usually covers few of them.
    for spans in iter_traces(traces):  # one at a time: only those with feedback stay
        graphs += 1
        texts = by_trace.pop(spans[0].trace_id, None) if spans else None
        if texts:
            graph = reconstruct(spans, parameters=pool)
            items.append((graph, pick_output(graph.outputs, graph.metadata.get("output")), texts))
    if by_trace:
        log.warning("feedback for %d trace id(s) not in %s ignored: %s", len(by_trace),
                    os.fspath(traces), ", ".join(sorted(by_trace)[:5]))
    if not items:
        raise UsageError(f"no trace of {os.fspath(traces)} has feedback (check the trace ids)")
    if not any(p.requires_grad for p in pool.values()):
        # Nothing to optimize (not a usage error): an empty proposal, which the CLI reports
        # as "nothing to change" with the reason, without an engine call.
        from .patching.patch import Patch

        result = FeedbackOptimization(patch=Patch(), gradients={}, used=len(items), skipped=0,
                                      usage={})
    else:
        result = run_sync(afrom_graphs(items, engine=engine, mode=mode, constraints=constraints,
                                       parameters=pool))
    result.skipped += len(by_trace)
    result.patch.metadata.update({"source": "traces", "traces": graphs,
                                  "with_feedback": result.used})
    return result


def optimize_from_feedback(
    recorder: Any,
    *,
    engine: Any = None,
    mode: Mode = "edge",
    constraints: Sequence[str] = (),
    limit: int | None = None,
    apply: bool = True,
) -> Any:
    """Optimize an ``@optimizable`` function's prompts from its recorded calls' feedback.

    Returns an OptimizationResult (stored as a one-step run). With ``apply=True`` the patch
    is written into the live prompts seen by this process (BindingError when a changed prompt
    was never seen live: call the function once, or apply later with ``apply_patch``).
    """
    from .loop.result import OptimizationResult, StepResult
    from .patching.apply import apply_patch
    from .reconstruction import reconstruct
    from .store.records import StepRecord

    captures = recorder.store.captures(recorder.source, with_feedback=True, limit=limit)
    if not captures:
        raise UsageError(f"no recorded call of {recorder.source} has feedback yet")
    live = {b.key: b for b in recorder.live_bindings()}
    pool: dict[str, Variable] = {}
    items = []
    for cap in captures:
        try:
            graph = reconstruct(cap.spans, bindings=live, parameters=pool)
        except TgBridgeError as exc:
            log.warning("recorded call %s cannot be rebuilt: %s", cap.id, exc)
            continue
        texts = [feedback_text(f.score, f.text) for f in cap.feedback]
        items.append((graph, pick_output(graph.outputs, cap.output or ""), texts))
    result = run_sync(afrom_graphs(items, engine=engine, mode=mode, constraints=constraints,
                                   parameters=pool))
    patch = result.patch
    scores = [f.score for c in captures for f in c.feedback if f.score is not None]
    baseline = sum(scores) / len(scores) if scores else None
    applied = False
    if apply and patch.changes:
        patch = apply_patch(list(live.values()), patch)
        applied = True
    store = recorder.store
    originals = {c.target: c.old for c in patch.changes}
    run_id = store.create_run(name=f"{recorder.source} (feedback)", originals=originals,
                              baseline_score=baseline,
                              config={"source": "feedback", "captures": len(captures),
                                      "mode": mode})
    record = StepRecord(
        run_id=run_id, step=1, epoch=0, batch=(), candidate=patch.to_json(), score=None,
        before=baseline, accepted=applied,
        values={c.target: c.new if applied else c.old for c in patch.changes},
        gradients=result.gradients, usage=result.usage,
        reason="" if applied else "not applied (apply=False or no change)",
    )
    store.commit_step(record)
    store.finish_run(run_id)
    step = StepResult(1, 0, (), patch, None, baseline, applied, result.gradients, result.usage,
                      record.reason)
    return OptimizationResult(run_id=run_id, baseline_score=baseline, best_score=None,
                              best_patch=patch, history=[step], usage=store.usage(run_id),
                              target=None, store_path=store.path)


def _counters(meter: Usage) -> dict[str, int]:
    return {"calls": meter.calls, "cached_calls": meter.cached_calls,
            "prompt_tokens": meter.prompt_tokens, "completion_tokens": meter.completion_tokens}


def _located(where: str, template: str) -> Callable[[str], UsageError]:
    """A UsageError factory naming ``where`` (file:line): ``template`` wraps the message."""
    def make(msg: str) -> UsageError:
        return UsageError(f"{where}: {template.format(msg)}")
    return make
