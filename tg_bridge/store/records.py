"""Plain records read from and written to the run store (frozen dataclasses)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ..spans import SpanRecord

__all__ = ["CaptureRecord", "FeedbackRecord", "RunInfo", "RunStatus", "StepRecord"]

#: A run's lifecycle: ``running`` from create_run (and after a crash), then finished or failed.
RunStatus = Literal["running", "finished", "failed"]


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """One optimization run.

    ``status``: ``running`` (also after a crash), ``finished`` or ``failed``. ``originals``
    maps binding key -> prompt text before the run (what every stored version is a patch from).
    ``steps_done`` is the highest committed step number (0 when none).
    """

    id: str
    name: str
    status: RunStatus
    created: float
    finished: float | None
    config: Mapping[str, Any]
    originals: Mapping[str, str]
    baseline_score: float | None
    final_score: float | None
    error: str | None
    steps_done: int = 0
    best_score: float | None = None


@dataclasses.dataclass(frozen=True)
class StepRecord:
    """One committed optimization step.

    ``step`` is 1-based and global over epochs. ``batch`` holds trainset indices. ``candidate``
    is the proposed Patch as JSON (None when nothing was proposed), ``score`` its validation
    score, ``before`` the score it had to match. ``values`` maps binding key -> prompt text
    after the accept/revert decision. ``gradients`` maps parameter key -> feedback texts;
    ``usage`` maps phase -> counters. ``reason`` says why a candidate was not kept.
    ``pool``: with ``strategy="pareto"``, the pool after this step
    (:meth:`tg_bridge.loop.pareto.ParetoPool.snapshot`), else None.
    """

    run_id: str
    step: int
    epoch: int
    batch: tuple[int, ...]
    candidate: str | None
    score: float | None
    before: float | None
    accepted: bool
    values: Mapping[str, str]
    gradients: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    usage: Mapping[str, Mapping[str, int]] = dataclasses.field(default_factory=dict)
    reason: str = ""
    created: float = 0.0
    pool: Sequence[Mapping[str, Any]] | None = None


@dataclasses.dataclass(frozen=True)
class CaptureRecord:
    """A production call recorded by ``@optimizable``: inputs, output, spans, binding keys."""

    id: str
    source: str
    created: float
    inputs: Any  # the call's inputs as JSON gave them back: the app's own shape
    output: str | None
    error: str | None
    bindings: tuple[str, ...]
    spans: tuple[SpanRecord, ...] = ()
    feedback: tuple[FeedbackRecord, ...] = ()


@dataclasses.dataclass(frozen=True)
class FeedbackRecord:
    """User feedback on a capture: a score, a text, or both."""

    capture_id: str
    score: float | None
    text: str | None
    created: float
