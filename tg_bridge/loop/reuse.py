"""Runs already made under the live prompts, reused instead of repeated.

The loop runs the same examples under the same prompts more than once: the baseline pass and
the first step's forward pass (nothing was written in between), the last accepted check and
the final check on the trainset. :class:`RunMemo` keeps the scored trials of the trainset under
ONE set of prompts (the latest offered); a pass asks it for the indices it needs and runs only
the rest.

A reused trial is the same sample the caller would have drawn again (for a deterministic app,
the identical run); the loop's decisions see the same scores and outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from .batching import Example
from .evaluation import Runner, Scorer, Trial, run_examples
from .judge_cache import prompts_key

__all__ = ["RunMemo", "forward_pass", "scored_pass"]


class RunMemo:
    """Scored trainset trials under one set of prompts (a :func:`prompts_key` digest).

    A trial goes to at most ONE forward pass (:meth:`take`: each run's graph feeds one step's
    gradients, as a fresh run would), but may be read by any number of checks (:meth:`peek`).
    """

    def __init__(self) -> None:
        self.prompts = ""
        self._trials: dict[int, Trial] = {}
        self._taken: set[int] = set()

    def offer(self, trials: Iterable[Trial]) -> None:
        """Remember scored trials; trials under other prompts than those held replace them."""
        for trial in trials:
            if not trial.scored or not trial.prompts:
                continue
            if trial.prompts != self.prompts:
                self.prompts, self._trials, self._taken = trial.prompts, {}, set()
            self._trials[trial.index] = trial
            self._taken.discard(trial.index)

    def peek(self, prompts: str, indices: Iterable[int]) -> dict[int, Trial]:
        """The held trials of ``indices`` when they ran under ``prompts`` (else none)."""
        if prompts != self.prompts:
            return {}
        return {i: self._trials[i] for i in indices if i in self._trials}

    def take(self, prompts: str, indices: Iterable[int]) -> dict[int, Trial]:
        """Like :meth:`peek`, without the trials a forward pass already took."""
        found = {i: t for i, t in self.peek(prompts, indices).items() if i not in self._taken}
        self._taken.update(found)
        return found


async def scored_pass(
    runner: Runner, scorer: Scorer, examples: Sequence[Example], indices: Sequence[int],
    memo: RunMemo, *, label: str, forward: bool,
    on_done: Callable[[Trial], None] | None = None,
) -> list[Trial]:
    """Scored trials of ``indices`` under the live prompts, in ``indices`` order: those the
    memo holds (``forward``: only those no forward pass took yet), the rest run now (and
    offered to the memo)."""
    prompts = prompts_key(runner.prompt_values())
    held = memo.take(prompts, indices) if forward else memo.peek(prompts, indices)
    missing = [i for i in indices if i not in held]
    ran = await run_examples(runner, examples, missing, label=label, scorer=scorer,
                             on_done=on_done) if missing else []
    memo.offer(ran)
    if forward:
        memo.take(prompts, [t.index for t in ran])
    found = {**held, **{t.index: t for t in ran}}
    return [found[i] for i in indices]


async def forward_pass(
    runner: Runner, scorer: Scorer, examples: Sequence[Example], indices: Sequence[int],
    memo: RunMemo, *, label: str,
) -> list[Trial]:
    """A step's forward pass: scored trials of its batch (reused when the memo has them)."""
    return await scored_pass(runner, scorer, examples, indices, memo, label=label, forward=True)
