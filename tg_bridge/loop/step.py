"""One optimization step: forward (captured) -> loss -> backward -> propose -> validate -> decide.

With ``LoopState.candidates = k > 1`` the propose part is a search
(:mod:`tg_bridge.loop.candidates`): k diverse proposals, each scored on the step's batch, the
best validated under the gate; which one won and every candidate's batch score are kept in
the candidate Patch's ``metadata`` (so in the step record).

The candidate is written into the live app only between ``Patch.apply()`` and the
accept/revert decision; the caller commits the returned record to the store afterwards, so a
crash anywhere in here leaves the store at the previous step.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any, Literal

from ..engines.usage import Usage, usage
from ..exceptions import OptimizerOutputError, PatchError, TgBridgeError
from ..losses import MetricLoss
from ..optim.tgd import guard_data
from ..store.records import StepRecord
from ..variable import Variable
from .batching import Example, PlannedStep
from .descent import Descent, Mode, pick_output
from .descent import refused as refusal
from .evaluation import Runner, Scorer, Trial, evaluate, mean
from .reuse import RunMemo, forward_pass

__all__ = ["ACCEPT_RULES", "PHASES", "Accept", "LoopState", "StepOutcome", "decide", "failing",
           "run_step"]

log = logging.getLogger(__name__)

PHASES = ("forward", "backward", "update", "eval")

#: Scores may differ by float noise on equal quality: never decide on that.
_TOLERANCE = 1e-9

Accept = Literal["improve", "no_drop"]
#: "improve": keep a candidate only if it beats the current score by more than min_delta;
#: "no_drop": keep it unless it scores below the current score plus min_delta.
ACCEPT_RULES: tuple[Accept, ...] = ("improve", "no_drop")


@dataclasses.dataclass
class LoopState:
    """What the steps of one run share. ``current`` is the score to beat on the valset and
    ``current_failing`` the valset examples that raise under the current prompts (None when
    unknown); ``accept``/``min_delta`` are the gate (see :func:`decide`)."""

    run_id: str
    runner: Runner
    scorer: Scorer
    trainset: list[Example]
    valset: list[Example]
    backward_engine: Any
    mode: Mode
    constraints: Sequence[str]
    originals: dict[str, str]
    current: float | None = None
    accept: Accept = "improve"
    min_delta: float = 0.0
    current_failing: frozenset[int] | None = None
    #: prompts captured but not writable (no live binding), by name, first seen first
    unbound: dict[str, None] = dataclasses.field(default_factory=dict)
    #: scored trainset runs under the live prompts, reused instead of run again
    runs: RunMemo = dataclasses.field(default_factory=RunMemo)
    #: proposals per step (1: TextGrad's single proposal) and the run's seed (their sampling)
    candidates: int = 1
    seed: int = 0
    #: strategy="pareto": the pool (a ParetoPool) and, during a step, the parent entry
    pool: Any = None
    parent: Any = None

    def descent(self) -> Descent:
        """Backward and proposal for this run's steps (shared with offline optimization)."""
        return Descent(self.backward_engine, self.mode, tuple(self.constraints))


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
        trials = await forward_pass(state.runner, state.scorer, state.trainset, planned.batch,
                                    state.runs, label=label)
        pool: dict[str, Variable] = {}
        roots = await _losses(state, trials, pool)
    _remember_originals(state)
    # without a valset the batch is scored under the current prompts here, then re-run
    # under the candidate: the same examples, both ways
    before = mean([t.score for t in trials]) if not state.valset else state.current
    params = [v for v in pool.values() if v.requires_grad and v.binding is not None]
    state.unbound.update((v.role or v.name, None) for v in pool.values() if v.requires_grad and v.binding is None)

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
        unbound = f" (found but not writable: {list(state.unbound)})" if state.unbound else ""
        return outcome("no writable prompt was found in the captured runs" + unbound)
    descent = state.descent()
    try:
        with usage(meters["backward"]):
            gradients = await descent.backward(roots, params)
    except OptimizerOutputError as exc:  # e.g. an unparseable fused answer: skip this step
        log.info("%s: backward failed (%s)", label, exc)
        return outcome(f"backward failed: {exc}")
    if not any(gradients.values()):
        return outcome("no feedback reached a prompt", gradients=gradients)
    guard = guard_data([t.example for t in trials], [t.output_text for t in trials],
                       labels_of=state.trainset)

    async def propose(**kwargs: Any) -> Any:
        return await descent.propose(params, untrusted_texts=guard["untrusted_texts"],
                                     labels=guard["labels"], **kwargs)

    searched = None
    if state.candidates > 1 or state.pool is not None:
        searched, why = await _search(state, planned, meters, propose, trials, label)
        if why:
            return outcome(why, searched.patch if searched else None, gradients=gradients)
        candidate = searched.patch
    else:
        try:
            with usage(meters["update"]):
                candidate = await propose()
        except (OptimizerOutputError, PatchError) as exc:
            log.info("%s: no candidate (%s)", label, exc)
            return outcome(f"proposal rejected: {exc}", gradients=gradients)
    refused = refusal(candidate)
    if not list(candidate.changes):
        reason = refused or "the optimizer proposed no change"
        return outcome(reason, candidate, gradients=gradients)
    try:
        candidate.apply()  # the optimizer's patch keeps its live targets in memory
    except PatchError as exc:
        log.info("%s: candidate not applied (%s)", label, exc)
        return outcome(f"the candidate could not be written into the app: {exc}", candidate,
                       gradients=gradients)
    try:
        with usage(meters["eval"]):
            if state.valset:
                score, checked = await evaluate(state.runner, state.scorer, state.valset,
                                                label=label + " val")
            elif searched is not None:  # scored on this very batch by the search already
                score, checked = searched.score, list(searched.trials or ())
            else:
                score, checked = await evaluate(state.runner, state.scorer, state.trainset,
                                                indices=planned.batch, label=label + " check")
    except BaseException:
        # Scoring failed (engine error, broken metric, cancellation): an unvalidated
        # candidate must not stay live in the app.
        candidate.revert()
        raise
    passed_before = (failing(trials) if not state.valset else state.current_failing)
    accepted, reason = decide(score, before, checked, passed_before, state.accept,
                              state.min_delta)
    if state.pool is not None and state.valset:
        reason += "; " + _pool_add(state, planned, candidate, checked)
    if accepted:
        if state.valset:
            state.current = score
            state.current_failing = failing(checked)
        else:  # runs under the prompts now live: the final check need not repeat them
            state.runs.offer(checked)
    else:
        candidate.revert()
    if refused:  # some prompts' proposals never made it into the candidate: say so too
        reason = f"{reason}; {refused}"
    log.info("%s: candidate score %.4g vs %s -> %s (%s)", label, score, before,
             "kept" if accepted else "reverted", reason)
    return outcome(reason, candidate, score, accepted, gradients)


async def _search(state: LoopState, planned: PlannedStep, meters: dict[str, Usage],
                  propose: Any, trials: Sequence[Trial], label: str) -> tuple[Any, str]:
    """Propose ``state.candidates`` diverse candidates, score each on the batch; returns
    ``(best, "")`` (a :class:`~tg_bridge.loop.candidates.Proposal` whose Patch carries the
    search summary) or ``(best or None, why not to validate it)``. A best that scores below
    the current prompts on the batch is not worth validating."""
    from .candidates import best_of, diverse_settings, propose_candidates, score_candidates, summary

    settings = diverse_settings(state.candidates, seed=state.seed * 100_003 + planned.number)
    with usage(meters["update"]):
        proposals = await propose_candidates(
            settings, lambda s: propose(**s.optimizer_kwargs()))

    async def run_batch() -> tuple[float, list[Trial]]:
        return await evaluate(state.runner, state.scorer, state.trainset, indices=planned.batch,
                              label=label + " candidate")

    with usage(meters["eval"]):
        await score_candidates(proposals, run_batch)
    best = best_of(proposals)
    log.info("%s: candidates %s", label, [(p.setting.index, p.score) for p in proposals])
    if best is None:
        problems = [p.error or (refusal(p.patch) if p.patch is not None else "")
                    for p in proposals]
        refused = "; ".join(dict.fromkeys(filter(None, problems)))
        return None, (f"none of {len(proposals)} candidates proposed a usable change"
                      + (f": {refused}" if refused else ""))
    best.patch.metadata.update(summary(proposals, best))
    current = mean([t.score for t in trials])
    if state.pool is not None:  # GEPA's rule: only a child better than its parent is validated
        if best.score is not None and best.score <= current + _TOLERANCE:
            return best, (f"the best of {len(proposals)} candidates (#{best.setting.index})"
                          f" scored {best.score:.4g} on the batch, not above its parent's"
                          f" {current:.4g}")
    elif best.score is not None and best.score < current - _TOLERANCE:
        return best, (f"the best of {len(proposals)} candidates (#{best.setting.index}) scored"
                      f" {best.score:.4g} on the batch, below the current prompts'"
                      f" {current:.4g}")
    return best, ""


def _pool_add(state: LoopState, planned: PlannedStep, candidate: Any,
              checked: Sequence[Trial]) -> str:
    """Offer the live candidate (validated on ``checked``) to the Pareto pool; says what
    happened. A candidate under which an example raises that did not under its parent is
    not added."""
    from .pareto import entry_from

    entry = entry_from(_values(state), checked, planned.number)
    parent = state.parent
    new_failures = entry.failing - (parent.failing if parent is not None else frozenset())
    if new_failures:
        kept = False
    else:
        kept = state.pool.add(entry)
    candidate.metadata["in_pool"] = kept
    return (f"added to the pool ({len(state.pool)} entries)" if kept
            else "not added to the pool (it wins no validation example)")


def failing(trials: Sequence[Trial]) -> frozenset[int]:
    """The indices of the trials whose example raised."""
    return frozenset(t.index for t in trials if t.error is not None)


def decide(
    score: float,
    before: float | None,
    checked: Sequence[Trial],
    failing_before: frozenset[int] | None,
    accept: Accept = "improve",
    min_delta: float = 0.0,
) -> tuple[bool, str]:
    """The gate: (keep?, why in plain words).

    An example that raises under the candidate but did not under the current prompts
    rejects the candidate whatever the mean (``failing_before`` None: no example may raise).
    Then ``"improve"`` keeps it only if ``score > before + min_delta``; ``"no_drop"`` if
    ``score >= before + min_delta`` (float noise of 1e-9 never decides).
    """
    known = failing_before if failing_before is not None else frozenset()
    new_failures = [(t.index, t.error) for t in checked
                    if t.error is not None and t.index not in known]
    if new_failures:
        shown = "; ".join(f"#{i} {_error_text(error)}" for i, error in new_failures[:3])
        more = f" (and {len(new_failures) - 3} more)" if len(new_failures) > 3 else ""
        count = len(new_failures)
        return False, (f"{count} example{'s' if count != 1 else ''} failed under the candidate"
                       f" that passed before: {shown}{more}")
    if before is None:
        return True, f"first score {score:.4g}"
    change = f"({before:.4g} -> {score:.4g})"
    if accept == "improve" and score - before > min_delta + _TOLERANCE:
        return True, f"score improved {change}"
    if accept == "no_drop" and score - before >= min_delta - _TOLERANCE:
        return True, f"score did not drop {change}"
    if score < before - _TOLERANCE:
        return False, f"score dropped {change}"
    if min_delta:
        return False, f"score did not improve by more than {min_delta:.4g} {change}"
    return False, f"score did not improve {change}"


def _error_text(error: BaseException) -> str:
    # the app's exception text is hostile data: one short line, no control characters
    text = " ".join(f"{type(error).__name__}: {error}".split())
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= 100 else text[:97] + "..."


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
        output_var = pick_output(graph.outputs, trial.output_text)
        if output_var is None:
            continue
        # the metric's (or the judge's) score and feedback seed the loss: no extra LLM call
        result = (trial.score, trial.feedback) if trial.feedback else trial.score
        name = "metric" if state.scorer.metric is not None else "judge"
        roots.append(MetricLoss(lambda *_a, _r=result: _r, name=name)(output_var, trial.example))
    return roots


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
