"""Feedback to proposal: backward from the losses, then TGD's proposal under the guards.

This is the one code path that both the live loop's step (:func:`tg_bridge.loop.step.run_step`)
and offline optimization (:mod:`tg_bridge.offline`: trace files and feedback, MLflow traces,
the recorded calls of ``@optimizable``) run between "the losses are seeded" and "a Patch is
proposed". A fix to how gradients are computed or how proposals are checked (copy guard,
label-leak refusal, placeholder rule, minimal edits) therefore reaches both; neither caller
may build its own ``TGD`` or call ``abackward`` itself.

What stays with the callers: where the losses come from (a metric or judge per example live,
user feedback offline), which prompts are writable, and what happens to the Patch (applied,
validated and gated live; saved or applied by the user offline).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any, get_args

from ..autograd import abackward
from ..autograd.report import BackwardMode
from ..engines.base import Engine
from ..optim.tgd import TGD
from ..variable import Variable

__all__ = ["MODES", "Descent", "Mode", "gradients_of", "pick_output", "refused"]

Mode = BackwardMode  # one closed choice for every layer that schedules a backward pass
#: Backward modes: "edge" (one call per edge into a trainable variable), "fused" (one per root).
MODES: tuple[Mode, ...] = get_args(BackwardMode)


@dataclasses.dataclass(frozen=True)
class Descent:
    """How feedback becomes a proposal in one run.

    ``engine``: the backward engine, already resolved (an Engine object: it writes the
    gradients and the new prompts; entry points resolve it once and pass it here).
    ``mode``: the backward mode. ``constraints``: rules every new prompt must respect.
    Stateless and safe to share across concurrent proposals of one step.
    """

    engine: Engine
    mode: Mode = "edge"
    constraints: tuple[str, ...] = ()

    async def backward(self, roots: Sequence[Variable],
                       params: Iterable[Variable]) -> dict[str, tuple[str, ...]]:
        """Propagate the feedback of ``roots`` (loss Variables, or outputs holding seeded
        feedback) to every trainable variable; returns the gradient texts each of ``params``
        now holds, by key. Gradients accumulate on the variables.

        Raises OptimizerOutputError (an unreadable fused answer), GraphError, EngineError.
        """
        await abackward(list(roots), engine=self.engine, mode=self.mode)
        return gradients_of(params)

    async def propose(self, params: Sequence[Variable], *, untrusted_texts: Sequence[str] = (),
                      labels: Sequence[Any] = (), **settings: Any) -> Any:
        """TGD's proposal for ``params`` from their gradients: a Patch, not applied, whose
        ``metadata["rejected"]`` lists the proposals the checks refused.

        ``untrusted_texts``/``labels``: texts the copy guard and the label-leak check refuse
        beyond what the graph shows (a live step's example inputs, app outputs and expected
        answers; :func:`tg_bridge.optim.tgd.guard_data`). ``settings``: TGD's keyword
        arguments for one candidate of a search (style, temperature, seed, gradient_part).
        Raises OptimizerOutputError, PatchError, EngineError.
        """
        optimizer = TGD(params, engine=self.engine, constraints=self.constraints,
                        untrusted_texts=untrusted_texts, labels=labels, **settings)
        return await optimizer.apropose()


def pick_output(outputs: Sequence[Variable], text: object) -> Variable | None:
    """The output whose feedback seeds the loss: the one holding the app's answer ``text``,
    else the first (a trace's final output); None when there is none."""
    for var in outputs:
        if isinstance(text, str) and var.value == text:
            return var
    return outputs[0] if outputs else None


def gradients_of(params: Iterable[Variable]) -> dict[str, tuple[str, ...]]:
    """The gradient texts each parameter holds, by key, in arrival order."""
    return {p.key: tuple(g.text for g in p.gradients) for p in params}


def refused(candidate: Any) -> str:
    """The optimizer's refused proposals (validation failures) of a Patch in words, or ""."""
    rejected = [r for r in candidate.metadata.get("rejected") or () if isinstance(r, dict)]
    if not rejected:
        return ""
    return "the optimizer's proposal was refused: " + "; ".join(
        str(r.get("message") or f"{r.get('target')}: {r.get('reason')}") for r in rejected)
