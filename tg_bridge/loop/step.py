"""One optimization step: forward (captured) -> loss -> backward -> propose -> validate -> decide.

The candidate is written into the live app only between ``Patch.apply()`` and the
accept/revert decision; the caller commits the returned record to the store afterwards, so a
crash anywhere in here leaves the store at the previous step.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

from ..engines.usage import Usage, usage
from ..exceptions import OptimizerOutputError, PatchError, TgBridgeError
from ..losses import MetricLoss
from ..store.records import StepRecord
from ..variable import Variable
from .batching import Example, PlannedStep
from .evaluation import Runner, Scorer, Trial, evaluate, mean, run_examples

__all__ = ["PHASES", "LoopState", "StepOutcome", "run_step"]

log = logging.getLogger(__name__)

PHASES = ("forward", "backward", "update", "eval")

#: Scores may differ by float noise on equal quality; do not reject on that.
_TOLERANCE = 1e-9


@dataclasses.dataclass
class LoopState:
    """What the steps of one run share. ``current`` is the score to match on the valset."""

    run_id: str
    runner: Runner
    scorer: Scorer
    trainset: list[Example]
    valset: list[Example]
    backward_engine: Any
    mode: str
    constraints: Sequence[str]
    originals: dict[str, str]
    current: float | None = None


@dataclasses.dataclass
class StepOutcome:
    """The committed record plus the in-memory candidate Patch (None when none)."""

    record: StepRecord
    candidate: Any


def _meters() -> dict[str, Usage]:
    return {phase: Usage() for phase in PHASES}


async def run_step(state: LoopState, planned: PlannedStep) -> StepOutcome:
    """Run one step and decide; returns the record to commit. Raises EngineError and
    UsageError (a broken metric); optimizer/patch failures become a rejected step."""
    meters = _meters()
    label = f"step {planned.number}"
    with usage(meters["forward"]):
        trials = await run_examples(state.runner, state.trainset, planned.batch, label=label)
        pool: dict[str, Variable] = {}
        roots = await _losses(state, trials, pool)
    _remember_originals(state)
    before = mean([t.score for t in trials]) if not state.valset else state.current
    params = [v for v in pool.values() if v.requires_grad and v.binding is not None]

    def outcome(reason: str, candidate: Any = None, score: float | None = None,
                accepted: bool = False, gradients: Any = None) -> StepOutcome:
        record = StepRecord(
            run_id=state.run_id, step=planned.number, epoch=planned.epoch, batch=planned.batch,
            candidate=candidate.to_json() if candidate is not None else None, score=score,
            before=before, accepted=accepted, values=_values(state),
            gradients=gradients or {}, usage={p: _counters(m) for p, m in meters.items()},
            reason=reason,
        )
        return StepOutcome(record, candidate)

    if not roots:
        return outcome("no run of the batch could be turned into a graph")
    if not params:
        return outcome("no writable prompt was found in the captured runs")
    from ..autograd import abackward

    try:
        with usage(meters["backward"]):
            await abackward(roots, engine=state.backward_engine, mode=state.mode)
    except OptimizerOutputError as exc:  # e.g. an unparseable fused answer: skip this step
        log.info("%s: backward failed (%s)", label, exc)
        return outcome(f"backward failed: {exc}")
    gradients = {p.key: tuple(g.text for g in p.gradients) for p in params}
    if not any(gradients.values()):
        return outcome("no feedback reached a prompt", gradients=gradients)
    from ..optim.tgd import TGD, guard_data

    try:
        with usage(meters["update"]):
            optimizer = TGD(params, engine=state.backward_engine,
                            constraints=tuple(state.constraints),
                            **guard_data([t.example for t in trials], [t.output_text for t in trials],
                                         labels_of=state.trainset))
            candidate = await optimizer.apropose()
    except (OptimizerOutputError, PatchError) as exc:
        log.info("%s: no candidate (%s)", label, exc)
        return outcome(f"proposal rejected: {exc}", gradients=gradients)
    if not list(candidate.changes):
        rejected = [r for r in candidate.metadata.get("rejected") or () if isinstance(r, dict)]
        reason = ("proposal rejected: " + ", ".join(
            f"{r.get('target')} ({r.get('reason')})" for r in rejected)) if rejected else (
            "the optimizer proposed no change")
        return outcome(reason, candidate, gradients=gradients)
    try:
        candidate.apply()  # the optimizer's patch keeps its live targets in memory
    except PatchError as exc:
        log.info("%s: candidate not applied (%s)", label, exc)
        return outcome(f"candidate not applied: {exc}", candidate, gradients=gradients)
    try:
        with usage(meters["eval"]):
            if state.valset:
                score, _ = await evaluate(state.runner, state.scorer, state.valset,
                                          label=label + " val")
            else:
                score, _ = await evaluate(state.runner, state.scorer, state.trainset,
                                          indices=planned.batch, label=label + " check")
    except BaseException:
        # Scoring failed (engine error, broken metric, cancellation): an unvalidated
        # candidate must not stay live in the app.
        candidate.revert()
        raise
    accepted = before is None or score + _TOLERANCE >= before
    if accepted:
        if state.valset:
            state.current = score
        reason = ""
    else:
        candidate.revert()
        reason = f"score dropped ({score:.4g} < {before:.4g}); reverted"
    log.info("%s: candidate score %.4g vs %s -> %s", label, score, before,
             "kept" if accepted else "reverted")
    return outcome(reason, candidate, score, accepted, gradients)


async def _losses(state: LoopState, trials: Sequence[Trial], pool: dict[str, Variable]) -> list[Variable]:
    """Score every trial and build one loss Variable per run that became a graph.

    Graphs are built in batch order against one shared parameter ``pool``, so a prompt used
    by every run is ONE Variable that receives every run's feedback.
    """
    roots: list[Variable] = []
    for trial in trials:
        await state.scorer.score(trial)
        if trial.error is not None:
            continue
        try:
            graph = trial.run.graph(parameters=pool)
        except TgBridgeError as exc:
            log.warning("run %s could not be reconstructed: %s", trial.run.name, exc)
            continue
        output_var = _pick_output(graph.outputs, trial.output_text)
        if output_var is None:
            continue
        # the metric's (or the judge's) score and feedback seed the loss: no extra LLM call
        result = (trial.score, trial.feedback) if trial.feedback else trial.score
        name = "metric" if state.scorer.metric is not None else "judge"
        roots.append(MetricLoss(lambda *_a, _r=result: _r, name=name)(output_var, trial.example))
    return roots


def _pick_output(outputs: Sequence[Variable], text: str) -> Variable | None:
    """The graph output holding the app's answer (else the first: the trace's final output)."""
    for var in outputs:
        if var.value == text:
            return var
    return outputs[0] if outputs else None


def _remember_originals(state: LoopState) -> None:
    # first sight of a prompt, before any candidate of this step is written
    for binding in state.runner.bindings():
        if binding.key not in state.originals:
            state.originals[binding.key] = binding.read()


def _values(state: LoopState) -> dict[str, str]:
    found = {b.key: b for b in state.runner.bindings()}
    return {key: found[key].read() for key in state.originals if key in found}


def _counters(meter: Usage) -> dict[str, int]:
    return {
        "calls": meter.calls,
        "cached_calls": meter.cached_calls,
        "prompt_tokens": meter.prompt_tokens,
        "completion_tokens": meter.completion_tokens,
    }
