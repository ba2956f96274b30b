"""BackwardReport: what one backward pass did (calls, gradients, per-level statistics)."""

from __future__ import annotations

import dataclasses
from typing import Literal, TypeGuard, get_args

__all__ = ["BackwardMode", "BackwardReport", "LevelStats", "is_backward_mode"]

#: How backward batches its calls: one per edge, or one per root for its whole graph.
BackwardMode = Literal["edge", "fused"]


def is_backward_mode(value: object) -> TypeGuard[BackwardMode]:
    """Whether ``value`` is one of :data:`BackwardMode` (the one list of modes)."""
    return value in get_args(BackwardMode)


@dataclasses.dataclass
class LevelStats:
    """One reverse-topological level: how many variables ran a rule, calls made, gradients."""

    level: int
    nodes: int = 0
    calls: int = 0
    gradients: int = 0


@dataclasses.dataclass
class BackwardReport:
    """Returned by :func:`tg_bridge.autograd.backward`.

    ``calls``: LLM calls made (feedback, loss seeding, summaries, fused); ``summaries``: how
    many of those were summaries; ``gradients``: gradients added to variables; ``parameters``:
    how many parameters received feedback; ``levels``: per-level stats (edge mode);
    ``disconnected``: keys of given parameters that cannot reach any root; ``seconds``.
    """

    mode: BackwardMode
    roots: int
    calls: int = 0
    summaries: int = 0
    gradients: int = 0
    parameters: int = 0
    levels: list[LevelStats] = dataclasses.field(default_factory=list)
    disconnected: list[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    def __str__(self) -> str:
        return (
            f"backward ({self.mode}): {self.roots} root(s), {self.calls} call(s)"
            f" ({self.summaries} summaries), {self.gradients} gradient(s) on"
            f" {self.parameters} parameter(s), {self.seconds:.2f}s"
        )
