"""The loop shared by the applications: evaluate a value, feed back, update, keep the history.

:func:`aoptimize_value` improves ONE trainable Variable (code, a SMILES string, an answer)
against a loss for a number of steps with the core pieces only: ``loss.acall(variable)`` ->
:func:`tg_bridge.autograd.abackward` -> :class:`tg_bridge.optim.tgd.TGD` ``apropose()`` ->
``Patch.apply()``. Every evaluated version is kept as a :class:`Step`; the best one is chosen
by score (ties: the earliest), or is the last one when the loss gives no score.
"""

from __future__ import annotations

import dataclasses
import html
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ..engines import as_engine
from ..engines.usage import Usage, usage
from ..exceptions import OptimizerOutputError, PatchValidationError, UsageError
from ..variable import Variable

if TYPE_CHECKING:
    from ..optim.tgd import TGD


class ValueLoss(Protocol):
    """What :func:`aoptimize_value` needs of a loss (TextLoss, MetricLoss, UnitTestLoss,
    MoleculeLoss all have it): the loss Variable of ``variable`` on ``example``."""

    async def acall(self, variable: Variable, example: Any = None) -> Variable: ...

__all__ = ["Step", "ValueOptimization", "aoptimize_value"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Step:
    """One evaluated version. ``index`` 0 is the starting value; ``feedback`` is the loss's
    evaluation (test report, RDKit properties or parse error, the judge's verdict);
    ``error`` says why the update made after this evaluation was not used, if it was not;
    ``run`` numbers parallel refinements (``refine(vote=k)``), 0 otherwise."""

    index: int
    value: str
    score: float | None
    feedback: str
    error: str = ""
    run: int = 0


@dataclasses.dataclass(frozen=True)
class ValueOptimization:
    """The result of :func:`aoptimize_value`: the ``history`` (every evaluated version, in
    order) and the ``usage`` (LLM calls and tokens) of the whole loop."""

    history: tuple[Step, ...]
    usage: Usage = dataclasses.field(default_factory=Usage)

    @property
    def initial(self) -> Step:
        return self.history[0]

    @property
    def final(self) -> Step:
        return self.history[-1]

    @property
    def best(self) -> Step:
        """Highest score (earliest on ties); the last step when nothing was scored."""
        scored = [s for s in self.history if s.score is not None]
        if not scored:
            return self.final
        return max(scored, key=lambda s: (s.score, -s.index))

    @property
    def improved(self) -> bool:
        first, best = self.initial.score, self.best.score
        return first is not None and best is not None and best > first

    def __str__(self) -> str:
        lines = [f"{len(self.history) - 1} update step(s); best: step {self.best.index} (score {_fmt(self.best.score)})"]
        for s in self.history:
            flag = f"  [update not used: {s.error}]" if s.error else ""
            lines.append(f"  step {s.index}: score {_fmt(s.score)}{flag}")
        lines.append(f"usage: {self.usage}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{s.index}</td><td>{_fmt(s.score)}</td><td><pre>{html.escape(s.value[:2000])}</pre></td>"
            f"<td><pre>{html.escape(s.feedback[:2000])}</pre></td><td>{html.escape(s.error)}</td></tr>"
            for s in self.history
        )
        return (
            f"<div><b>best: step {self.best.index}, score {_fmt(self.best.score)}</b>"
            "<table><tr><th>step</th><th>score</th><th>value</th><th>feedback</th><th>note</th></tr>"
            f"{rows}</table><small>{html.escape(str(self.usage))}</small></div>"
        )


def _fmt(score: float | None) -> str:
    return "-" if score is None else f"{score:.3f}"


async def aoptimize_value(
    variable: Variable,
    loss: ValueLoss,
    *,
    steps: int = 3,
    engine: object = None,
    example: object = None,
    constraints: Sequence[str] = (),
    stop_score: float | None = None,
    postprocess: Callable[[str], str] | None = None,
    optimizer_kwargs: dict[str, Any] | None = None,
) -> ValueOptimization:
    """Improve ``variable`` (``requires_grad=True``) for ``steps`` update steps.

    ``loss`` has ``async acall(variable, example) -> loss Variable`` (TextLoss, MetricLoss,
    UnitTestLoss, MoleculeLoss). The loop evaluates ``steps + 1`` times at most and stops early
    once a score reaches ``stop_score``. ``postprocess`` cleans each new value (e.g. strip
    Markdown fences) before it is evaluated. An unusable optimizer answer or a rejected patch
    is recorded on the step (``error``) and the value is kept; engine failures raise
    :class:`~tg_bridge.exceptions.EngineError`. The variable ends holding the LAST value.
    """
    from ..autograd import abackward
    from ..optim.tgd import TGD

    if not isinstance(variable, Variable) or not variable.requires_grad:
        raise UsageError("aoptimize_value needs a Variable with requires_grad=True")
    if not isinstance(steps, int) or steps < 0:
        raise UsageError("steps must be an integer >= 0")
    resolved = as_engine(engine, backward=True)  # refine() passes its resolved engine
    history: list[Step] = []
    with usage() as meter:
        optimizer = TGD([variable], engine=resolved, constraints=tuple(constraints), **(optimizer_kwargs or {}))
        for index in range(steps + 1):
            loss_var = await loss.acall(variable, example)
            score = _score_of(loss_var)
            history.append(Step(index, variable.value, score, loss_var.value))
            if index == steps or (stop_score is not None and score is not None and score >= stop_score):
                break
            optimizer.zero_grad()
            await abackward(loss_var, engine=resolved)
            error = await _update(optimizer, variable, postprocess)
            if error:
                history[-1] = dataclasses.replace(history[-1], error=error)
                log.info("update after step %d not used: %s", index, error)
    return ValueOptimization(history=tuple(history), usage=meter)


async def _update(optimizer: TGD, variable: Variable, postprocess: Callable[[str], str] | None) -> str:
    """Propose and apply one update; returns why it was not used ("" when it was)."""
    try:
        patch = await optimizer.apropose()
    except (OptimizerOutputError, PatchValidationError) as exc:
        return f"{type(exc).__name__}: {exc}"
    if not patch.changes:
        rejected = (patch.metadata or {}).get("rejected") or []
        reasons = "; ".join(f"{r.get('reason', '')}: {r.get('message', '')}" for r in rejected)
        return f"proposal rejected ({reasons})" if reasons else "no change proposed"
    try:
        patch.apply()
    except PatchValidationError as exc:
        return f"{type(exc).__name__}: {exc}"
    if postprocess is not None:
        cleaned = postprocess(variable.value)
        if cleaned != variable.value:
            variable.set_value(cleaned)
    return ""


def _score_of(loss_var: Variable) -> float | None:
    score = loss_var.metadata.get("score")
    if score is None and loss_var.op is not None:
        score = loss_var.op.attrs.get("score")
    try:
        return None if score is None else float(score)
    except (TypeError, ValueError):
        return None
