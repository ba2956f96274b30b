"""optimize() / aoptimize(): baseline, the steps, the store, the result.

Control flow, in order: validate the arguments; resolve the target (a copy when
``in_place=False``); open or resume the run in the store; score the baseline; run every
planned step not yet committed (each committed in ONE transaction after its decision); then
a final check and the result.

Nothing is run twice under the same prompts: the baseline's runs are the first step's forward
pass, and the final check runs only the examples no step ran under the kept prompts (see
:mod:`.reuse`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

from ..engines.sync import blocking
from ..engines.usage import usage
from ..exceptions import PatchError, UsageError
from ..patching.apply import patch_between, resolve_targets
from ..progress import Progress
from ..store import RunStore
from ..store.records import StepRecord
from .batching import as_examples, fingerprint, plan_steps
from .budget import Budget, Cost, cost_of
from .callbacks import check_callbacks, notify
from .descent import MODES, Mode
from .evaluation import Scorer, evaluate, mean, resolve_runner
from .judge_cache import prompts_key
from .outcome import announce
from .pareto import ParetoPool, entry_from, pareto_step
from .preflight import check_optimizable
from .result import OptimizationResult, StepResult
from .resume import check_compatible, restore_values
from .reuse import scored_pass
from .step import (
    ACCEPT_RULES,
    PHASES,
    Accept,
    LoopState,
    _counters,
    _meters,
    _remember_originals,
    _values,
    decide,
    failing,
    run_step,
)
from .warmup import preload_modules, prepare_engines

__all__ = ["aoptimize", "optimize"]

log = logging.getLogger(__name__)

Strategy = Literal["greedy", "pareto"]
STRATEGIES: tuple[Strategy, ...] = ("greedy", "pareto")


async def aoptimize(
    target: Any,
    trainset: Iterable[Any],
    *,
    metric: Callable[..., Any] | None = None,
    judge: str | None = None,
    valset: Iterable[Any] | None = None,
    epochs: int = 1,
    batch_size: int = 4,
    engine: Any = None,
    backward_engine: Any = None,
    mode: Mode = "edge",
    in_place: bool = True,
    store: RunStore | str | os.PathLike[str] | None = None,
    resume: str | None = None,
    progress: bool = True,
    seed: int = 0,
    constraints: Sequence[str] = (),
    accept: Accept = "improve",
    min_delta: float = 0.0,
    config: Any = None,
    tool_descriptions: bool = False,
    callbacks: Sequence[Any] = (),
    candidates: int = 1,
    strategy: Strategy = "greedy",
    max_calls: int | None = None,
    max_tokens: int | None = None,
) -> OptimizationResult:
    """Optimize the prompts of ``target`` on ``trainset``; returns an OptimizationResult.

    Each step runs a batch concurrently (each example in its own capture), builds one graph
    per run sharing one parameter per prompt, computes the loss (``metric(example, output)``
    -> score or (score, feedback); else the LLM ``judge`` instruction), runs backward
    (``mode`` "edge" or "fused") and has TGD propose a Patch. The candidate is written into
    the live app (all targets or none), scored on ``valset`` (the batch when there is none)
    and kept only if it passes the gate, else reverted: with ``accept="improve"`` (default)
    its score must beat the current one by more than ``min_delta`` (0: strictly greater);
    ``accept="no_drop"`` keeps it unless it scores below current + ``min_delta``. An example
    that raises under the candidate but not under the current prompts rejects it, whatever
    the mean. Each step's ``reason`` says why, in words (also on the progress output).
    Without a valset, the kept prompts are re-checked on the whole trainset at the end and
    the originals restored unless they pass the same gate against the baseline.

    ``in_place=True`` (default): the app keeps the best prompts, ``result.best_patch`` is
    the live patch and ``result.revert()`` restores the originals byte for byte.
    ``in_place=False`` optimizes an adapter copy (``result.target``); the original app is
    never written and ``result.best_patch`` is unapplied. ``resume=RUN_ID`` continues a
    crashed run from ``store``. ``config``: the host's run config for every call (a LangChain
    ``RunnableConfig`` such as ``{"configurable": {"session_id": "s1"}}``) or
    ``callable(example) -> config``; an example's own ``"config"`` is merged over it.
    ``tool_descriptions=True``: the descriptions of the agent's tools are parameters too
    (default off). ``callbacks``: observers told about each committed step and the result
    (:mod:`tg_bridge.loop.callbacks`; what they raise is logged, never stops the run).

    ``candidates=k``: each step proposes k diverse candidates (temperature, feedback subsets,
    full rewrite or minimal edits; :mod:`tg_bridge.loop.candidates`), scores each on the
    step's batch and validates the best under the gate (1: TextGrad's single proposal).
    ``strategy="pareto"`` (needs a valset): keep every validated candidate with its
    per-example validation scores and draw each step's parent from the per-example Pareto
    frontier (:mod:`tg_bridge.loop.pareto`); the app keeps the best mean. ``max_calls`` /
    ``max_tokens``: stop before a step that could pass the budget (engine usage meters,
    baseline included; shown on the progress bar).

    Engines: ``backward_engine`` (else ``engine``, else the configured ``backward_engine``
    or ``engine``, else the app's own host model, else the embedded backward model; see
    :mod:`tg_bridge.engines.host`) writes the feedback, the new prompts and, without a
    metric, the judge's ratings — the judge is a critic like :class:`~tg_bridge.losses.TextLoss`,
    whose default is the backward engine too. It is resolved once per call and passed down.

    Raises UsageError (bad arguments, broken metric), EngineError, StoreError. A step's
    optimizer/patch failure is recorded as a rejected step, not raised.
    """
    train = as_examples(trainset, name="trainset")
    val = as_examples(valset, name="valset")
    if not train:
        raise UsageError("trainset is empty")
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"{name} must be an integer >= 1, got {value!r}")
    if mode not in MODES:
        raise UsageError(f"mode must be one of {MODES}, got {mode!r}")
    if accept not in ACCEPT_RULES:
        raise UsageError(f"accept must be one of {ACCEPT_RULES}, got {accept!r}")
    if (isinstance(min_delta, bool) or not isinstance(min_delta, (int, float))
            or not math.isfinite(min_delta) or min_delta < 0):
        raise UsageError(f"min_delta must be a finite number >= 0, got {min_delta!r}")
    if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1:
        raise UsageError(f"candidates must be an integer >= 1, got {candidates!r}")
    if strategy not in STRATEGIES:
        raise UsageError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if strategy == "pareto" and not val:
        raise UsageError("strategy='pareto' needs a valset (candidates are compared per"
                         " validation example)")
    for name, limit in (("max_calls", max_calls), ("max_tokens", max_tokens)):
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                  or limit < 1):
            raise UsageError(f"{name} must be an integer >= 1 or None, got {limit!r}")
    budget = Budget(max_calls, max_tokens)
    if isinstance(constraints, str):
        constraints = (constraints,)
    from ..engines.host import choose_backward_engine

    # resolved once for the whole run; every layer below gets these Engine objects
    feedback = choose_backward_engine(target, engine=engine, backward_engine=backward_engine)
    bwd = feedback.engine
    # the judge is a critic like the gradients' writer (and TextLoss): the backward engine
    scorer = Scorer(metric, judge, bwd if metric is None else None)
    runner = resolve_runner(target)
    if not in_place:
        runner = runner.copy()
    runner.run_config = config
    runner.tool_descriptions = bool(tool_descriptions)
    check_optimizable(runner)  # before any engine call or store write
    callbacks = check_callbacks(callbacks)
    run_store = store if isinstance(store, RunStore) else RunStore(store)
    config = {
        "trainset": fingerprint(train), "valset": fingerprint(val) if val else None,
        "batch_size": batch_size, "seed": seed, "mode": mode, "epochs": epochs,
        "scoring": "metric" if metric is not None else f"judge:{judge}",
        "target": runner.name, "n_train": len(train), "n_val": len(val),
        "accept": accept, "min_delta": float(min_delta),
        "candidates": candidates, "strategy": strategy,
    }
    done: list[StepRecord] = []
    if resume:
        info = run_store.get_run(resume)
        check_compatible(info.config, config, info.id)
        run_id, originals, baseline = info.id, dict(info.originals), info.baseline_score
        done = run_store.steps(run_id)
        # every version in order (none when the final check restored the originals)
        versions = [] if done and done[-1].epoch == -1 else [dict(s.values) for s in done]
        await restore_values(runner, originals, versions, train, run_id)
    else:
        run_id = run_store.create_run(name=runner.name, config=config)
        originals, baseline = {}, None
    state = LoopState(run_id, runner, scorer, train, val, bwd, mode, tuple(constraints), originals,
                      accept=accept, min_delta=float(min_delta), candidates=candidates, seed=seed)
    baseline_failing: frozenset[int] | None = None
    baseline_cost = Cost()
    if baseline is None:
        meters = _meters()
        with usage(meters["eval"]), Progress(len(val or train), enabled=progress,
                                             desc="baseline", unit="example") as ebar:
            (baseline, trials), _, _ = await asyncio.gather(
                evaluate(runner, scorer, val or train, label="baseline",
                         on_done=ebar.example_done),
                prepare_engines((scorer.engine, bwd)),  # while the baseline waits
                preload_modules(),
            )
        baseline_failing = state.current_failing = failing(trials)
        if not val:  # the first step's forward pass: same prompts, same examples
            state.runs.offer(trials)
        failed = [t.error for t in trials if t.error is not None]
        if failed and len(failed) == len(trials):
            # nothing to learn from: the target cannot run these examples at all
            raise UsageError(
                f"the target failed on every baseline example; first error: "
                f"{type(failed[0]).__name__}: {failed[0]}"
            ) from failed[0]
        _remember_originals(state)
        run_store.update_run(run_id, baseline_score=baseline, originals=state.originals)
        run_store.add_usage(run_id, 0, {p: _counters(m) for p, m in meters.items()})
        baseline_cost = cost_of({p: _counters(m) for p, m in meters.items()})
        if strategy == "pareto":
            state.pool = ParetoPool(entry_from(_values(state), trials, 0))
            run_store.save_pool(run_id, 0, state.pool.snapshot())
    accepted_scores = [s.score for s in done if s.accepted and s.score is not None]
    state.current = accepted_scores[-1] if (val and accepted_scores) else baseline
    if val and state.current_failing is None:
        # resumed: which valset examples raise under the restored prompts is not stored;
        # learn it again (errors only; the stored score stands) so the gate decides as the
        # uninterrupted run would have
        _, trials = await evaluate(runner, scorer, val, label="resume check")
        state.current_failing = failing(trials)
        if strategy == "pareto":  # the stored pool; a run stored without one restarts
            stored = run_store.pool(run_id)  # from the restored (best) prompts
            state.pool = (ParetoPool.restore(stored) if stored else
                          ParetoPool(entry_from(_values(state), trials, last_accepted(done))))
    plan = plan_steps(len(train), batch_size=batch_size, epochs=epochs, seed=seed)
    last_done = max((s.step for s in done), default=0)
    bar = Progress(len(plan), enabled=progress, initial=min(last_done, len(plan)))
    history = [_step_result(s) for s in done]
    try:
        for planned in plan:
            if planned.number <= last_done:
                continue
            spent = cost_of(run_store.usage(run_id))
            why = budget.stop_reason(spent, Budget.estimate(
                (cost_of(s.usage) for s in history if s.epoch >= 0), baseline_cost))
            if why:
                log.info("run %s: %s", run_id, why)
                bar.note(why)
                break
            outcome = await (pareto_step(state, planned, run_step, _values)
                             if state.pool is not None else run_step(state, planned))
            run_store.commit_step(outcome.record, originals=state.originals)
            history.append(_step_result(outcome.record, outcome.candidate))
            bar.add_usage({k: dict(v) for k, v in outcome.record.usage.items()})
            bar.note(_decision_line(history[-1]))
            bar.update(planned.number, state.current if val else outcome.record.score,
                       **budget.show(spent + cost_of(outcome.record.usage)))
            notify(callbacks, "on_step", history[-1], run_id=run_id,
                   current=state.current if val else None)
        best = await _finish(state, run_store, baseline, history, baseline_failing, progress)
        if history and history[-1].epoch == -1:
            bar.note(_decision_line(history[-1]))
            notify(callbacks, "on_step", history[-1], run_id=run_id, current=best)
    except BaseException as exc:
        if not isinstance(exc, Exception):  # KeyboardInterrupt/cancel: resumable, as a crash
            raise
        run_store.update_run(run_id, error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        bar.close()
    formats = {b.key: b.template_format for b in runner.bindings()}
    best_patch = patch_between(state.originals, run_store.values_at(run_id), formats=formats,
                               bindings=runner.bindings(),
                               metadata={"run_id": run_id, "score": best, "in_place": in_place})
    if in_place:
        _adopt(best_patch, runner)
    return _ended(callbacks, announce(OptimizationResult(
        run_id=run_id, baseline_score=baseline, best_score=best, best_patch=best_patch,
        history=history, usage=run_store.usage(run_id), target=runner.target,
        store_path=run_store.path, in_place=in_place, unbound=tuple(state.unbound),
        unwritable=runner.unwritable(), feedback_engine=feedback.describe(),
    ), progress))



optimize = blocking(aoptimize)
"""Blocking :func:`aoptimize`, same signature (see :func:`tg_bridge.engines.sync.blocking`)."""

def _ended(callbacks: Sequence[Any], result: OptimizationResult) -> OptimizationResult:
    notify(callbacks, "on_end", result)
    return result


def last_accepted(done: Sequence[StepRecord]) -> int:
    """The step whose prompts the app holds after a resume (0: the originals)."""
    return max((s.step for s in done if s.accepted and s.epoch >= 0), default=0)


def _adopt(patch: Any, runner: Any) -> None:
    """Make ``patch`` the live patch of the app (its values are written already), so that
    ``revert()`` restores the originals."""
    try:
        patch.adopt_live(resolve_targets(runner.bindings(), patch.changes).__getitem__)
    except PatchError as exc:  # the app was changed behind our back: say so, change nothing
        log.warning("the best prompts are not what the app holds now (%s); result.best_patch"
                    " is left unapplied", exc)


def _decision_line(step: StepResult) -> str:
    if step.epoch == -1:
        return f"final check: {step.reason}"
    verdict = "kept" if step.accepted else "not kept"
    return f"step {step.step}: {verdict} - {step.reason}" if step.reason else (
        f"step {step.step}: {verdict}")


async def _finish(
    state: LoopState, store: RunStore, baseline: float, history: list[StepResult],
    baseline_failing: frozenset[int] | None, progress: bool = True,
) -> float:
    """The best score. Without a valset the kept prompts were only checked on their batches:
    re-check them on the whole trainset against the baseline with the step gate (``accept``;
    ``min_delta`` is a per-step margin and not asked again here), and restore the originals
    unless they pass (``baseline_failing`` None after a resume: examples failing at baseline
    are unknown, so any failing example counts as new)."""
    if any(s.epoch == -1 for s in history):  # resumed after the final check committed
        store.finish_run(state.run_id, final_score=baseline)
        return baseline
    if state.valset or not any(s.accepted for s in history):
        best = state.current if state.valset and state.current is not None else baseline
        store.finish_run(state.run_id, final_score=best)
        return best
    meters = _meters()
    # runs of the kept prompts made by the steps (their checks, forward passes) are not
    # repeated: only the examples never run under these prompts are run now
    everything = range(len(state.trainset))
    held = len(state.runs.peek(prompts_key(state.runner.prompt_values()), everything))
    with usage(meters["eval"]), Progress(len(state.trainset) - held,
                                         enabled=progress and held < len(state.trainset),
                                         desc="final check", unit="example") as ebar:
        trials = await scored_pass(state.runner, state.scorer, state.trainset, list(everything),
                                   state.runs, label="final", forward=False,
                                   on_done=ebar.example_done)
        final = mean([t.score for t in trials])
    store.add_usage(state.run_id, -1, {p: _counters(m) for p, m in meters.items()})
    kept, why = decide(final, baseline, trials, baseline_failing, state.accept, 0.0)
    if kept:
        store.finish_run(state.run_id, final_score=final)
        return final
    log.warning("run %s: the kept prompts fail the final check on the trainset (%s);"
                " restoring the originals", state.run_id, why)
    # restore by reverting "originals -> current": the originals are the host's own texts,
    # written back exactly, not a proposal to check against the current ones
    live = patch_between(state.originals, _values(state))
    live.adopt_live(resolve_targets(state.runner.bindings(), live.changes).__getitem__)
    live.revert()
    step = max(s.step for s in history) + 1
    reason = (f"final check on the whole trainset against the original prompts: "
              f"{why}; the original prompts were restored")
    record = StepRecord(
        run_id=state.run_id, step=step, epoch=-1, batch=(), candidate=None, score=final,
        before=baseline, accepted=False, values=dict(state.originals),
        usage={p: {} for p in PHASES}, reason=reason,
    )
    store.commit_step(record)
    history.append(_step_result(record))
    store.finish_run(state.run_id, final_score=baseline)
    return baseline


def _step_result(record: StepRecord, candidate: Any = None) -> StepResult:
    if candidate is None and record.candidate:
        from ..patching.patch import Patch

        candidate = Patch.from_json(record.candidate)
    return StepResult(
        step=record.step, epoch=record.epoch, batch=tuple(record.batch), candidate=candidate,
        score=record.score, before=record.before, accepted=record.accepted,
        gradients=dict(record.gradients), usage=dict(record.usage), reason=record.reason,
    )
