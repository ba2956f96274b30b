"""The optimization loop: :func:`optimize` / :func:`aoptimize` and their result.

Modules: ``batching`` (examples, deterministic batches), ``evaluation`` (running a target
under capture, scoring), ``step`` (one step), ``resume`` (continuing a stored run),
``result`` (OptimizationResult), ``driver`` (the loop itself), ``reuse`` (runs already made
under the live prompts, not repeated), ``judge_cache`` (verdicts not asked twice), ``warmup``
(engine setup while the baseline waits).
"""

from __future__ import annotations

from .batching import Example
from .driver import aoptimize, optimize
from .result import OptimizationResult, StepResult

__all__ = ["Example", "OptimizationResult", "StepResult", "aoptimize", "optimize"]
