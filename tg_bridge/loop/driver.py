"""optimize() / aoptimize(): baseline, the steps, the store, the result.

Control flow, in order: validate the arguments; resolve the target (a copy when
``in_place=False``); open or resume the run in the store; score the baseline; run every
planned step not yet committed (each committed in ONE transaction after its decision); then
a final check and the result.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..engines.sync import run_sync
from ..engines.usage import usage
from ..exceptions import UsageError
from ..patching.apply import patch_between
from ..progress import Progress
from ..store import RunStore
from ..store.records import StepRecord
from .batching import as_examples, fingerprint, plan_steps
from .evaluation import Scorer, evaluate, resolve_runner
from .outcome import announce
from .preflight import check_optimizable
from .result import OptimizationResult, StepResult
from .resume import check_compatible, restore_values
from .step import PHASES, LoopState, _counters, _meters, _remember_originals, _values, run_step

__all__ = ["aoptimize", "optimize"]

log = logging.getLogger(__name__)

MODES = ("edge", "fused")


def optimize(target: Any, trainset: Iterable[Any], **kwargs: Any) -> OptimizationResult:
    """Blocking :func:`aoptimize` (works inside a running event loop, e.g. a notebook)."""
    return run_sync(aoptimize(target, trainset, **kwargs))


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
    mode: str = "edge",
    in_place: bool = True,
    store: RunStore | str | os.PathLike[str] | None = None,
    resume: str | None = None,
    progress: bool = True,
    seed: int = 0,
    constraints: Sequence[str] = (),
) -> OptimizationResult:
    """Optimize the prompts of ``target`` on ``trainset``; returns an OptimizationResult.

    Each step runs a batch concurrently (each example in its own capture), builds one graph
    per run sharing one parameter per prompt, computes the loss (``metric(example, output)``
    -> score or (score, feedback); else the LLM ``judge`` instruction), runs backward
    (``mode`` "edge" or "fused") and has TGD propose a Patch. The candidate is written into
    the live app, scored on ``valset`` (the batch when there is none), and kept only if the
    score does not drop; otherwise reverted. ``in_place=False`` optimizes an adapter copy
    (``result.target``). ``resume=RUN_ID`` continues a crashed run from ``store``.

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
    if isinstance(constraints, str):
        constraints = (constraints,)
    from ..engines import resolve_engine

    bwd = resolve_engine(backward_engine if backward_engine is not None else engine,
                         backward=True)
    scorer = Scorer(metric, judge, resolve_engine(engine) if metric is None else None)
    runner = resolve_runner(target)
    if not in_place:
        runner = runner.copy()
    check_optimizable(runner)  # before any engine call or store write
    run_store = store if isinstance(store, RunStore) else RunStore(store)
    config = {
        "trainset": fingerprint(train), "valset": fingerprint(val) if val else None,
        "batch_size": batch_size, "seed": seed, "mode": mode, "epochs": epochs,
        "scoring": "metric" if metric is not None else f"judge:{judge}",
        "target": runner.name, "n_train": len(train), "n_val": len(val),
    }
    done: list[StepRecord] = []
    if resume:
        info = run_store.get_run(resume)
        check_compatible(info.config, config, info.id)
        run_id, originals, baseline = info.id, dict(info.originals), info.baseline_score
        done = run_store.steps(run_id)
        await restore_values(runner, originals, run_store.values_at(run_id), train, run_id)
    else:
        run_id = run_store.create_run(name=runner.name, config=config)
        originals, baseline = {}, None
    state = LoopState(run_id, runner, scorer, train, val, bwd, mode, tuple(constraints), originals)
    if baseline is None:
        meters = _meters()
        with usage(meters["eval"]):
            baseline, trials = await evaluate(runner, scorer, val or train, label="baseline")
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
    accepted_scores = [s.score for s in done if s.accepted and s.score is not None]
    state.current = accepted_scores[-1] if (val and accepted_scores) else baseline
    plan = plan_steps(len(train), batch_size=batch_size, epochs=epochs, seed=seed)
    last_done = max((s.step for s in done), default=0)
    bar = Progress(len(plan), enabled=progress, initial=min(last_done, len(plan)))
    history = [_step_result(s) for s in done]
    try:
        for planned in plan:
            if planned.number <= last_done:
                continue
            outcome = await run_step(state, planned)
            run_store.commit_step(outcome.record, originals=state.originals)
            history.append(_step_result(outcome.record, outcome.candidate))
            bar.add_usage(dict(outcome.record.usage))
            bar.update(planned.number, state.current if val else outcome.record.score)
        best = await _finish(state, run_store, baseline, history)
    except BaseException as exc:
        if not isinstance(exc, Exception):  # KeyboardInterrupt/cancel: resumable, as a crash
            raise
        run_store.update_run(run_id, error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        bar.close()
    formats = {b.key: b.template_format for b in runner.bindings()}
    best_patch = patch_between(state.originals, run_store.values_at(run_id), formats=formats,
                               metadata={"run_id": run_id, "score": best})
    return announce(OptimizationResult(
        run_id=run_id, baseline_score=baseline, best_score=best, best_patch=best_patch,
        history=history, usage=run_store.usage(run_id), target=runner.target,
        store_path=run_store.path,
    ), progress)


async def _finish(
    state: LoopState, store: RunStore, baseline: float, history: list[StepResult]
) -> float:
    """The best score; without a valset, re-check the final prompts on the whole trainset
    and fall back to the originals if they score lower than the baseline."""
    if state.valset or not any(s.accepted for s in history):
        best = state.current if state.valset else baseline
        store.finish_run(state.run_id, final_score=best)
        return best
    meters = _meters()
    with usage(meters["eval"]):
        final, _ = await evaluate(state.runner, state.scorer, state.trainset, label="final")
    store.add_usage(state.run_id, -1, {p: _counters(m) for p, m in meters.items()})
    if final >= baseline:
        store.finish_run(state.run_id, final_score=final)
        return final
    log.warning("run %s: final prompts score %.4g < baseline %.4g on the trainset; restoring"
                " the originals", state.run_id, final, baseline)
    current = _values(state)
    undo = patch_between(current, state.originals)
    from ..patching.apply import resolve_targets

    undo.apply(resolver=resolve_targets(state.runner.bindings(), undo.changes).__getitem__)
    step = max(s.step for s in history) + 1
    store.commit_step(StepRecord(
        run_id=state.run_id, step=step, epoch=-1, batch=(), candidate=None, score=final,
        before=baseline, accepted=False, values=dict(state.originals),
        usage={p: {} for p in PHASES}, reason="final check below baseline: originals restored",
    ))
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
