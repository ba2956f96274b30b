"""Test-time refinement: improve one ANSWER of an app (not its prompts) with textual feedback.

The paper's test-time experiment (GPQA 51.0 -> 55.0 with majority voting) on our core::

    result = tg_bridge.refine(chain, {"question": "..."}, steps=3, vote=3)
    result.final  # the refined answer; result.history keeps every step

:func:`refine` runs ``target`` once (a LangChain runnable or a LlamaIndex query engine through
its adapter's ``ainvoke``, or a plain Python callable, sync or async), makes the answer a
trainable Variable and improves it for ``steps`` steps against an LLM judge
(:class:`~tg_bridge.losses.TextLoss`, the default) or a metric. ``vote=k`` runs k refinements
of that answer concurrently and majority-votes the final answer (normalized; ties go to the
earliest). The app itself is never changed.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import html
import inspect
import string
from collections.abc import Callable, Mapping
from typing import Any

from .adapters import adapter_for
from .applications import prompts
from .applications.loop import Step, ValueOptimization, aoptimize_value
from .engines import resolve_engine
from .engines.sync import blocking
from .engines.usage import Usage, usage
from .exceptions import TgBridgeError, UsageError
from .losses import MetricLoss, TextLoss
from .run_config import takes_config
from .safety import delimit, mask_secrets
from .variable import Variable

__all__ = ["Refinement", "arefine", "normalize_answer", "refine"]

_PUNCT_EDGES = string.punctuation + " \t\n"


@dataclasses.dataclass(frozen=True)
class Refinement:
    """The outcome of :func:`refine`.

    ``initial``: the app's own answer. ``final``: the answer to use (majority vote over the
    runs when ``vote > 1``). ``best``: the highest-scoring answer when a metric gave scores,
    else ``final``. ``history``: every evaluated answer of every run (``Step.run``), with its
    score and the judge's verdict or the metric's feedback. ``votes``: normalized answer ->
    count, in first-seen order. ``runs``: each run's own result. ``usage``: LLM calls/tokens.
    """

    initial: str
    final: str
    best: str
    history: tuple[Step, ...]
    votes: Mapping[str, int]
    runs: tuple[ValueOptimization, ...]
    usage: Usage

    @property
    def verdicts(self) -> tuple[str, ...]:
        """The judge's (or metric's) feedback on each evaluated answer, in history order."""
        return tuple(s.feedback for s in self.history)

    def __str__(self) -> str:
        lines = [
            f"initial: {_short(self.initial)}",
            f"final:   {_short(self.final)}",
        ]
        if self.best != self.final:
            lines.append(f"best:    {_short(self.best)}")
        if len(self.runs) > 1:
            lines.append("votes:   " + ", ".join(f"{k!r}: {v}" for k, v in self.votes.items()))
        for s in self.history:
            score = "" if s.score is None else f" score {s.score:.3f}"
            lines.append(f"  run {s.run} step {s.index}{score}: {_short(s.value, 60)}")
        lines.append(f"usage: {self.usage}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        votes = "".join(f"<li>{html.escape(k)}: {v}</li>" for k, v in self.votes.items())
        rows = "".join(
            f"<tr><td>{s.run}</td><td>{s.index}</td><td>{'' if s.score is None else f'{s.score:.3f}'}</td>"
            f"<td>{html.escape(s.value[:1500])}</td><td>{html.escape(s.feedback[:1500])}</td></tr>"
            for s in self.history
        )
        return (
            f"<div><p><b>initial</b>: {html.escape(self.initial[:1500])}</p>"
            f"<p><b>final</b>: {html.escape(self.final[:1500])}</p>"
            f"<p><b>best</b>: {html.escape(self.best[:1500])}</p><ul>{votes}</ul>"
            "<table><tr><th>run</th><th>step</th><th>score</th><th>answer</th><th>feedback</th></tr>"
            f"{rows}</table><small>{html.escape(str(self.usage))}</small></div>"
        )


def _short(text: str, limit: int = 100) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def normalize_answer(text: str) -> str:
    """Vote key: case-folded, whitespace collapsed, punctuation/quotes trimmed at the edges."""
    return " ".join(text.split()).casefold().strip(_PUNCT_EDGES)


async def arefine(
    target: Any,
    inputs: Any,
    *,
    loss: Any = None,
    judge: Any = None,
    steps: int = 3,
    engine: Any = None,
    vote: int = 1,
    normalize: Callable[[str], str] | None = None,
    constraints: tuple[str, ...] = (),
    config: Mapping[str, Any] | None = None,
) -> Refinement:
    """Run ``target`` on ``inputs`` once, then refine its answer (see the module docstring).
    ``config``: the host's run config for that call (a LangChain ``RunnableConfig``).

    ``loss``: a metric ``fn(inputs, answer) -> score | (score, feedback)`` (example first, as
    everywhere in tg_bridge) or any loss object
    with ``acall`` (a MetricLoss, TextLoss, UnitTestLoss, ...). ``judge``: an instruction
    string or a TextLoss; the default judge when neither is given is a critical reviewer.
    Blocking until done; raises UsageError for bad arguments (``loss`` and ``judge`` together,
    ``vote < 1``), the target's own exception wrapped in TgBridgeError when it fails, and
    EngineError when an LLM call fails.
    """
    if loss is not None and judge is not None:
        raise UsageError("give either loss= (a metric) or judge= (an LLM judge), not both")
    if not isinstance(vote, int) or vote < 1:
        raise UsageError("vote must be an integer >= 1")
    resolved = resolve_engine(engine, backward=True)
    chosen = _loss_of(loss, judge, resolved)
    key = normalize or normalize_answer
    with usage() as meter:
        answer = await _run_target(target, inputs, config)
        question = _render_inputs(inputs)
        rules = (prompts.ANSWER_CONSTRAINT.format(question=delimit(mask_secrets(question), "request")), *constraints)

        async def one(run: int) -> ValueOptimization:
            variable = Variable(answer, role=prompts.ANSWER_ROLE, requires_grad=True, kind="value", name="answer")
            result = await aoptimize_value(
                variable, chosen, steps=steps, engine=resolved, example=inputs, constraints=rules
            )
            history = tuple(dataclasses.replace(s, run=run) for s in result.history)
            return dataclasses.replace(result, history=history)

        runs = tuple(await asyncio.gather(*(one(i) for i in range(vote))))
    picks = [r.best.value for r in runs]
    final, votes = majority_vote(picks, key)
    scored = [s for r in runs for s in r.history if s.score is not None]
    best = max(scored, key=lambda s: (s.score, -s.run, -s.index)).value if scored else final
    return Refinement(
        initial=answer,
        final=final,
        best=best,
        history=tuple(s for r in runs for s in r.history),
        votes=votes,
        runs=runs,
        usage=meter,
    )


# the blocking twin keeps arefine's full signature (for type checkers and inspect.signature)
refine = blocking(arefine)


def majority_vote(answers: list[str], key: Callable[[str], str] = normalize_answer) -> tuple[str, dict[str, int]]:
    """The most frequent answer by ``key`` (ties: the one seen first) and the counts.

    Returns the first original text of the winning group, and ``{key: count}`` in first-seen
    order. Raises UsageError for an empty list.
    """
    if not answers:
        raise UsageError("majority_vote needs at least one answer")
    counts: dict[str, int] = collections.OrderedDict()
    first: dict[str, str] = {}
    for text in answers:
        k = key(text)
        counts[k] = counts.get(k, 0) + 1
        first.setdefault(k, text)
    winner = max(counts, key=lambda k: counts[k])  # max keeps the first of equal counts
    return first[winner], dict(counts)


def _loss_of(loss: Any, judge: Any, engine: Any) -> Any:
    if loss is not None:
        if hasattr(loss, "acall"):
            return loss
        if callable(loss):
            return MetricLoss(loss, name=getattr(loss, "__name__", "metric"))
        raise UsageError("loss must be a loss object (with acall) or a metric function")
    if judge is None:
        return TextLoss(prompts.JUDGE_INSTRUCTION, engine=engine)
    if isinstance(judge, str):
        return TextLoss(judge, engine=engine)
    if hasattr(judge, "acall"):
        return judge
    raise UsageError("judge must be an instruction string or a TextLoss")


async def _run_target(target: Any, inputs: Any, config: Mapping[str, Any] | None = None) -> str:
    # plain functions need no adapter, and looking one up would import the host frameworks
    plain = inspect.isfunction(target) or inspect.ismethod(target) or inspect.isbuiltin(target)
    adapter = None if plain else adapter_for(target)
    if config is not None and not isinstance(config, Mapping):
        raise UsageError(f"config must be a mapping (a RunnableConfig), got {type(config).__name__}")
    if config is not None and not takes_config(adapter.ainvoke if adapter is not None else target):
        raise UsageError("a config was given but the target cannot receive one (no `config` parameter)")
    try:
        if adapter is not None:
            mapping = inputs if isinstance(inputs, Mapping) else {"input": inputs}
            result = await (adapter.ainvoke(target, mapping) if config is None
                            else adapter.ainvoke(target, mapping, config=config))
        elif callable(target):
            result = await _call_plain(target, inputs, config)
        else:
            raise UsageError(
                f"cannot run {type(target).__qualname__}: give a callable, a LangChain runnable or a "
                "LlamaIndex query engine (with tg-bridge-langchain / tg-bridge-llamaindex installed)"
            )
    except TgBridgeError:
        raise
    except Exception as exc:  # the user's app failed: say so, keep the cause
        raise TgBridgeError(f"the target failed while producing the answer to refine: {type(exc).__name__}: {exc}") from exc
    text = result if isinstance(result, str) else _text_of(result)
    if not text.strip():
        raise UsageError("the target returned an empty answer; nothing to refine")
    return text


async def _call_plain(target: Callable[..., Any], inputs: Any, config: Any = None) -> Any:
    fn = target
    extra = {} if config is None else {"config": config}
    if isinstance(inputs, Mapping) and _accepts_keywords(target, {**inputs, **extra}):
        call = lambda: fn(**inputs, **extra)  # noqa: E731
    else:
        call = lambda: fn(inputs, **extra)  # noqa: E731
    if inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(getattr(target, "__call__", None)):  # noqa: B004
        return await call()
    result = await asyncio.to_thread(call)  # a sync app may block (its own LLM calls)
    if inspect.isawaitable(result):
        result = await result
    return result


def _accepts_keywords(fn: Callable[..., Any], inputs: Mapping[str, Any]) -> bool:
    try:
        inspect.signature(fn).bind(**{str(k): v for k, v in inputs.items()})
    except (TypeError, ValueError):
        return False
    return True


def _text_of(result: Any) -> str:
    for attr in ("content", "response", "text", "output"):
        value = getattr(result, attr, None)
        if isinstance(value, str):
            return value
    if isinstance(result, Mapping):
        for k in ("output", "answer", "response", "text", "result"):
            if isinstance(result.get(k), str):
                return result[k]
    return str(result)


def _render_inputs(inputs: Any) -> str:
    if isinstance(inputs, Mapping):
        if len(inputs) == 1:
            return str(next(iter(inputs.values())))
        return "\n".join(f"{k}: {v}" for k, v in inputs.items())
    return str(inputs)
