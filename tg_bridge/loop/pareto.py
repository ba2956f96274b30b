"""strategy="pareto": a pool of accepted candidates with a per-example Pareto frontier.

As in GEPA, every validated candidate is kept with its score on EACH validation example;
each step draws its parent from the candidates that are best on at least one example
(weighted by how many examples they win), so a prompt that solves examples nobody else
solves keeps being improved even when its mean is not the best. The app holds the best mean
between steps (that is what the strict gate compares against and what the result keeps).

:func:`pareto_step` wraps one ordinary step: write the parent into the app, run the step (it
proposes from the parent's failures and adds a validated candidate to the pool), then write
the best-mean entry back. The pool goes into the store with every committed step
(:meth:`ParetoPool.snapshot`, JSON) so that a resumed run continues from the same pool
(:meth:`ParetoPool.restore`), not from the best entry alone.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from ..exceptions import StoreError
from ..patching.apply import patch_between, resolve_targets

__all__ = ["Entry", "ParetoPool", "entry_from", "pareto_step", "write_values"]

log = logging.getLogger(__name__)

#: Scores closer than this are equal (float noise never makes a winner).
_TOLERANCE = 1e-9


@dataclasses.dataclass(frozen=True)
class Entry:
    """A candidate in the pool: the prompt ``values`` (binding key -> text), its ``scores``
    on the validation examples (in valset order), the step that produced it (0: the
    originals) and the valset examples that raised under it."""

    values: Mapping[str, str]
    scores: tuple[float, ...]
    step: int = 0
    failing: frozenset[int] = frozenset()

    @property
    def mean(self) -> float:
        return sum(self.scores) / len(self.scores) if self.scores else 0.0


class ParetoPool:
    """Entries that are best on at least one validation example and dominated by no other
    entry, plus the best mean.

    Deterministic: entries are kept in insertion order; ties are broken by that order.
    Not thread-safe (one loop uses it).
    """

    def __init__(self, first: Entry) -> None:
        self.entries: list[Entry] = [first]

    def __len__(self) -> int:
        return len(self.entries)

    def wins(self) -> list[int]:
        """For each entry, on how many examples it reaches the best score (ties: all of the
        tied entries win that example)."""
        width = len(self.entries[0].scores)
        counts = [0] * len(self.entries)
        for j in range(width):
            top = max(e.scores[j] for e in self.entries)
            for i, entry in enumerate(self.entries):
                if entry.scores[j] >= top - _TOLERANCE:
                    counts[i] += 1
        return counts

    def best(self) -> Entry:
        """The entry with the highest mean (the earliest on a tie)."""
        return max(self.entries, key=lambda e: e.mean)

    def add(self, entry: Entry) -> bool:
        """Add ``entry``; returns whether it stays (it wins an example or has the best mean).
        Entries left winning nothing (and not the best mean) are dropped. An entry with the
        same values as one in the pool is not added twice."""
        if any(dict(e.values) == dict(entry.values) for e in self.entries):
            return False
        if len(entry.scores) != len(self.entries[0].scores):
            raise ValueError("every entry is scored on the same validation examples")
        self.entries.append(entry)
        best = self.best()
        # as GEPA: an entry another one dominates (>= on every example, > on one) is no
        # example's reason to be drawn, even when it ties for the best on some
        self.entries = [e for e in self.entries
                        if e is best or not any(_dominates(o, e) for o in self.entries)]
        counts = self.wins()
        self.entries = [e for e, n in zip(self.entries, counts) if n or e is best]
        return any(e is entry for e in self.entries)

    def snapshot(self) -> list[dict[str, Any]]:
        """The entries as JSON-able dicts (``values``, ``scores``, ``step``, ``failing``), in
        pool order: what the store keeps with a step."""
        return [{"values": dict(e.values), "scores": list(e.scores), "step": e.step,
                 "failing": sorted(e.failing)} for e in self.entries]

    @classmethod
    def restore(cls, snapshot: Sequence[Mapping[str, Any]]) -> ParetoPool:
        """The pool :meth:`snapshot` described, entries in the same order. Raises
        StoreError when the snapshot is empty or malformed (a damaged store)."""
        try:
            entries = [Entry({str(k): str(v) for k, v in dict(item["values"]).items()},
                             tuple(float(x) for x in item["scores"]), int(item["step"]),
                             frozenset(int(i) for i in item.get("failing") or ()))
                       for item in snapshot]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StoreError(f"the stored Pareto pool cannot be read: {exc!r}") from exc
        if not entries or len({len(e.scores) for e in entries}) != 1:
            raise StoreError("the stored Pareto pool is empty or its entries were scored on"
                             " different validation sets")
        pool = cls(entries[0])
        pool.entries = entries
        return pool

    def draw(self, rng: random.Random) -> Entry:
        """A parent: an entry drawn with probability proportional to its example wins."""
        counts = self.wins()
        return rng.choices(self.entries, weights=[max(n, 0) for n in counts], k=1)[0] \
            if sum(counts) else self.entries[0]


def _dominates(a: Entry, b: Entry) -> bool:
    pairs = list(zip(a.scores, b.scores))
    return (all(x >= y - _TOLERANCE for x, y in pairs)
            and any(x > y + _TOLERANCE for x, y in pairs))


def write_values(runner: Any, values: Mapping[str, str]) -> None:
    """Write ``values`` (key -> text) into the live app; keys already equal are left alone.
    Raises PatchError when a prompt cannot be written."""
    current = {b.key: b.read() for b in runner.bindings() if b.key in values}
    patch = patch_between(current, values)
    if patch.changes:
        patch.apply(resolve_targets(runner.bindings(), patch.changes).__getitem__)


async def pareto_step(
    state: Any, planned: Any, step: Callable[[Any, Any], Awaitable[Any]],
    values_of: Callable[[Any], dict[str, str]],
) -> Any:
    """One step from a parent drawn from ``state.pool``: write the parent, run ``step``, put
    the best-mean entry back into the app (also when the step raises) and record, in the
    outcome, the values the app holds after that."""
    pool: ParetoPool = state.pool
    rng = random.Random(f"pareto:{state.seed}:{planned.number}")
    parent = pool.draw(rng)
    state.parent = parent
    write_values(state.runner, parent.values)
    try:
        outcome = await step(state, planned)
    finally:
        state.parent = None
        write_values(state.runner, pool.best().values)
    # the pool is committed with the step (one transaction): a resume continues from it
    record = dataclasses.replace(outcome.record, values=values_of(state),
                                 reason=f"{outcome.record.reason} (parent: step {parent.step})",
                                 pool=pool.snapshot())
    if outcome.candidate is not None:
        outcome.candidate.metadata["parent_step"] = parent.step
        outcome.candidate.metadata["pool"] = [
            {"step": e.step, "mean": e.mean, "wins": n} for e, n in zip(pool.entries, pool.wins())]
        record = dataclasses.replace(record, candidate=outcome.candidate.to_json())
    return dataclasses.replace(outcome, record=record)


def entry_from(values: Mapping[str, str], trials: Sequence[Any], step: int) -> Entry:
    """An entry from the valset trials of ``values`` (ordered by example index)."""
    ordered = sorted(trials, key=lambda t: t.index)
    return Entry(dict(values), tuple(float(t.score) for t in ordered), step,
                 frozenset(t.index for t in ordered if t.error is not None))
