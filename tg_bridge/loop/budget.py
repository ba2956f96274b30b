"""Call and token budgets of a run (``optimize(max_calls=, max_tokens=)``).

Spending is what the engine usage meters counted into the store for this run (every phase,
the baseline included; a cache hit counts as a call but costs no tokens). Before each step
the loop asks :meth:`Budget.stop_reason` with an estimate of the next step's cost (the most
expensive step so far, or the baseline evaluation before the first step: a step runs at
least as many calls as one evaluation), and stops cleanly — the step not started, the
result built from what was committed — when that step could exceed a limit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["Budget", "Cost", "cost_of"]


@dataclasses.dataclass(frozen=True)
class Cost:
    """Calls and tokens (prompt + completion)."""

    calls: int = 0
    tokens: int = 0

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.calls + other.calls, self.tokens + other.tokens)


def cost_of(usage: Mapping[str, Mapping[str, int]]) -> Cost:
    """The total cost of per-phase counters (a step record's ``usage`` or the store's)."""
    calls = tokens = 0
    for counters in usage.values():
        calls += int(counters.get("calls", 0))
        tokens += int(counters.get("prompt_tokens", 0)) + int(counters.get("completion_tokens", 0))
    return Cost(calls, tokens)


@dataclasses.dataclass(frozen=True)
class Budget:
    """Limits (None: unlimited)."""

    max_calls: int | None = None
    max_tokens: int | None = None

    @property
    def limited(self) -> bool:
        return self.max_calls is not None or self.max_tokens is not None

    def stop_reason(self, spent: Cost, next_step: Cost) -> str:
        """Why the next step must not start (``spent`` so far plus its estimate would pass a
        limit), or ""."""
        for name, limit, used, more in (("max_calls", self.max_calls, spent.calls, next_step.calls),
                                        ("max_tokens", self.max_tokens, spent.tokens,
                                         next_step.tokens)):
            if limit is not None and used + more > limit:
                unit = name.removeprefix("max_")
                return (f"budget: {used} {unit} spent and the next step may take about {more}"
                        f" more, over {name}={limit}; stopped before it")
        return ""

    def show(self, spent: Cost) -> dict[str, Any]:
        """Progress postfix entries, e.g. ``{"budget": "calls 40/100"}``."""
        parts = [f"calls {spent.calls}/{self.max_calls}" if self.max_calls is not None else "",
                 f"tokens {spent.tokens}/{self.max_tokens}" if self.max_tokens is not None else ""]
        return {"budget": ", ".join(p for p in parts if p)} if self.limited else {}

    @staticmethod
    def estimate(step_costs: Iterable[Cost], baseline: Cost) -> Cost:
        """The next step's expected cost: the largest step so far, else the baseline's."""
        costs = list(step_costs)
        if not costs:
            return baseline
        return Cost(max(c.calls for c in costs), max(c.tokens for c in costs))
