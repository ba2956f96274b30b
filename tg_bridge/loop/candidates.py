"""Candidate search inside one step: k diverse proposals, each scored on the step's batch.

TextGrad proposes once per step. Here a step may propose ``k`` candidates that differ in
how they are asked for (:func:`diverse_settings`): sampling temperature and seed, which part
of the feedback they see, and whether the optimizer rewrites the prompt or answers with
minimal edits. Every candidate goes through TGD's own validation (template rules, copy
guard, label-leak guard); the valid ones are written into the app one at a time, run on the
step's batch, scored and reverted (:func:`score_candidates`), and the best on the batch is
the step's candidate for the strict validation gate. Candidates proposing the same values
are run once.

Nothing here decides what stays live: the step does, with its gate.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ..exceptions import OptimizerOutputError, PatchError
from ..optim.tgd import STYLES, Style
from .evaluation import Trial, mean

__all__ = ["CandidateSetting", "Proposal", "best_of", "diverse_settings", "propose_candidates",
           "score_candidates", "summary"]

log = logging.getLogger(__name__)

#: Sampling temperatures cycled through by the candidates after the first (which is greedy,
#: the proposal TextGrad would make).
_TEMPERATURES = (0.7, 1.0)


@dataclasses.dataclass(frozen=True)
class CandidateSetting:
    """How one candidate is asked for. ``part=(i, n)``: it sees feedback items ``j`` with
    ``j % n == i`` (None: all). ``temperature`` 0 and ``seed`` None: the engine's greedy
    default."""

    index: int
    style: Style = "rewrite"
    temperature: float | None = None
    seed: int | None = None
    part: tuple[int, int] | None = None

    def optimizer_kwargs(self) -> dict[str, Any]:
        """The TGD keyword arguments for this setting."""
        return {"style": self.style, "temperature": self.temperature, "seed": self.seed,
                "gradient_part": self.part}

    def describe(self) -> dict[str, Any]:
        return {"index": self.index, "style": self.style, "temperature": self.temperature,
                "seed": self.seed, "part": list(self.part) if self.part else None}


def diverse_settings(k: int, seed: int = 0) -> list[CandidateSetting]:
    """``k`` pairwise different settings, deterministic in (``k``, ``seed``).

    0: a greedy full rewrite on all feedback (TextGrad's proposal; ``k=1`` is exactly that).
    1: greedy minimal edits on all feedback. From 2 on: sampled (temperature cycling
    0.7, 1.0; seed ``seed * 1000 + index``), alternating rewrite/edit, each on one part of the
    feedback (halves for candidates 2-3, thirds for 4-6, ...), so no two see the same view.
    """
    settings = [CandidateSetting(0)]
    if k > 1:
        settings.append(CandidateSetting(1, style="edit"))
    for index in range(2, k):
        parts = 2 + (index - 2) // 2 if index < 4 else 3 + (index - 4) // 3
        settings.append(CandidateSetting(
            index,
            style=STYLES[index % 2],
            temperature=_TEMPERATURES[(index - 2) % len(_TEMPERATURES)],
            seed=seed * 1000 + index,
            part=(index % parts, parts),
        ))
    return settings[:k]


@dataclasses.dataclass
class Proposal:
    """One candidate: its setting, the Patch (None when the proposal failed), why it failed,
    and, once scored, its batch score and trials."""

    setting: CandidateSetting
    patch: Any = None
    error: str = ""
    score: float | None = None
    trials: list[Trial] | None = None
    same_as: int | None = None  # index of an earlier candidate proposing the same values

    @property
    def changed(self) -> bool:
        return self.patch is not None and bool(list(self.patch.changes))


async def propose_candidates(
    settings: Sequence[CandidateSetting], propose: Callable[[CandidateSetting], Awaitable[Any]],
) -> list[Proposal]:
    """Run ``propose(setting) -> Patch`` for every setting, one after another. A proposal
    that fails (unreadable answer, invalid patch) is kept as an error, not raised; engine
    errors and bugs are raised.

    Sequential on purpose: with k proposals gathered at once on the embedded model (one
    model, one call at a time) the later calls spent their whole engine deadline queued
    behind the others (measured: EngineDeadlineError after 120 s with k=3 on a loaded
    2-core machine). Each proposal's own parameters still run concurrently inside TGD."""
    proposals: list[Proposal] = []
    for setting in settings:
        try:
            proposals.append(Proposal(setting, patch=await propose(setting)))
        except (OptimizerOutputError, PatchError) as exc:
            log.info("candidate %d: no proposal (%s)", setting.index, exc)
            proposals.append(Proposal(setting, error=str(exc)))
    return proposals


async def score_candidates(
    proposals: Sequence[Proposal], run: Callable[[], Awaitable[tuple[float, list[Trial]]]],
) -> None:
    """Score every changed proposal on the step's batch: apply it, ``run()`` (the batch under
    the live prompts), revert. One at a time (they share the live app); identical values are
    scored once. Always reverts, also when ``run`` raises; a proposal that cannot be written
    is marked with its error."""
    seen: dict[tuple[tuple[str, str], ...], Proposal] = {}
    for proposal in proposals:
        if not proposal.changed:
            continue
        values = tuple((c.target, c.new) for c in proposal.patch.changes)
        twin = seen.get(values)
        if twin is not None:
            proposal.same_as, proposal.score, proposal.trials = (
                twin.setting.index, twin.score, twin.trials)
            continue
        seen[values] = proposal
        try:
            proposal.patch.apply()
        except PatchError as exc:
            proposal.error = f"could not be written into the app: {exc}"
            continue
        try:
            proposal.score, proposal.trials = await run()
        finally:
            proposal.patch.revert()


def best_of(proposals: Sequence[Proposal]) -> Proposal | None:
    """The scored proposal with the highest batch score (the lowest index on a tie: the
    greedy rewrite first), or None when none was scored. An example that raised counts as
    0, like in the gate."""
    scored = [p for p in proposals if p.score is not None and not p.error]
    if not scored:
        return None
    return max(scored, key=lambda p: (p.score, -p.setting.index))


def summary(proposals: Sequence[Proposal], winner: Proposal | None) -> dict[str, Any]:
    """What the step record keeps about the search: every candidate's setting, batch score,
    whether it changed anything, and its error; and which one won."""
    return {
        "winner": winner.setting.index if winner is not None else None,
        "candidates": [
            {**p.setting.describe(), "batch_score": p.score, "changed": p.changed,
             "failed": sum(1 for t in p.trials or () if t.error is not None),
             "same_as": p.same_as, "error": p.error[:300]}
            for p in proposals
        ],
    }


def batch_mean(trials: Sequence[Trial]) -> float:
    """The batch score of ``trials`` (raised examples count 0)."""
    return mean([t.score for t in trials])
