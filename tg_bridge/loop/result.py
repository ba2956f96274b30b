"""OptimizationResult: scores, the best Patch, the step history and usage per phase."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

__all__ = ["OptimizationResult", "StepResult"]


@dataclasses.dataclass(frozen=True)
class StepResult:
    """One step: its candidate Patch (None when nothing was proposed), the candidate's
    validation ``score`` and the ``before`` score it had to match, the decision, the
    gradients each prompt received (key -> texts) and usage per phase."""

    step: int
    epoch: int
    batch: tuple[int, ...]
    candidate: Any
    score: float | None
    before: float | None
    accepted: bool
    gradients: Mapping[str, tuple[str, ...]]
    usage: Mapping[str, Mapping[str, int]]
    reason: str = ""


@dataclasses.dataclass
class OptimizationResult:
    """What :func:`tg_bridge.optimize` returns.

    ``best_patch`` turns the original prompts into the best accepted ones (apply it elsewhere
    with :func:`tg_bridge.apply_patch`). With ``in_place=True`` it is the LIVE patch of the
    optimized app (``applied`` true): ``best_patch.revert()`` or :meth:`revert` restores the
    original prompts byte for byte. With ``in_place=False`` it is unapplied: the original app
    was never written. ``target`` is the optimized object (the original when
    ``in_place=True``, else the patched copy); ``usage`` maps phase (forward, backward,
    update, eval) -> calls, cached_calls, prompt_tokens, completion_tokens. ``unbound`` names
    the prompts that were found but could not be written (never optimized silently).
    ``feedback_engine`` names the model that wrote feedback and updates, and why it was
    chosen (argument, configured, host, embedded).
    """

    run_id: str
    baseline_score: float | None
    best_score: float | None
    best_patch: Any
    history: list[StepResult]
    usage: dict[str, dict[str, int]]
    target: Any = None
    store_path: str = ""
    in_place: bool = True
    #: prompts the runs showed that tg_bridge could not write (no live binding), by name
    unbound: tuple[str, ...] = ()
    #: prompts of the target that cannot be written (named by its adapter, e.g. an agent
    #: prompt given as a function): left as they are, never silently skipped
    unwritable: list[str] = dataclasses.field(default_factory=list)
    feedback_engine: str = ""

    def revert(self) -> Any:
        """Restore the app's original prompts byte for byte; returns the reverted patch.

        Raises :class:`PatchError` when there is nothing live to revert (``in_place=False``,
        or already reverted) and :class:`PatchConflictError` (changing nothing) when a prompt
        was edited after the run.
        """
        from ..exceptions import PatchError

        patch = self.best_patch
        if not self.in_place:
            raise PatchError(
                "nothing to revert: this run used in_place=False, so the original app was never"
                " changed; the optimized prompts live only in result.target (a copy)"
            )
        if patch is None or not getattr(patch, "applied", False):
            raise PatchError("nothing to revert: the app already holds its original prompts"
                             " (the result was reverted, or no prompt changed)")
        return patch.revert()

    @property
    def accepted_steps(self) -> list[int]:
        return [s.step for s in self.history if s.accepted]

    def total_usage(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for counters in self.usage.values():
            for name, value in counters.items():
                total[name] = total.get(name, 0) + int(value)
        return total

    # -- views ----------------------------------------------------------------------------
    def __str__(self) -> str:
        lines = [
            f"Optimization run {self.run_id}: score {_fmt(self.baseline_score)} -> "
            f"{_fmt(self.best_score)} ({len(self.accepted_steps)}/{len(self.history)} steps kept)"
        ]
        for s in self.history:
            mark = "kept" if s.accepted else "reverted" if s.score is not None else "skipped"
            extra = f" - {s.reason}" if s.reason and not s.accepted else ""
            lines.append(f"  step {s.step} (epoch {s.epoch}): {_fmt(s.before)} -> "
                         f"{_fmt(s.score)} {mark}{extra}")
        total = self.total_usage()
        lines.append(f"  usage: {total.get('calls', 0)} calls ({total.get('cached_calls', 0)}"
                     f" cached), {total.get('prompt_tokens', 0) + total.get('completion_tokens', 0)}"
                     " tokens")
        changes = list(getattr(self.best_patch, "changes", []) or [])
        lines.append(f"  best patch: {len(changes)} change(s)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"<OptimizationResult run={self.run_id} baseline={_fmt(self.baseline_score)} "
                f"best={_fmt(self.best_score)} steps={len(self.history)}>")

    def _repr_html_(self) -> str:
        from ..views_result import result_to_html

        return result_to_html(self)

    # -- save / load (tg_bridge.loop.result_io) -------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> str:
        """Write the result as JSON to ``path`` atomically (scores, history, best patch;
        not the live ``target``); returns the path. UsageError when it cannot be written."""
        from ..patching.patch_io import write_text_file
        from .result_io import dump_result

        return write_text_file(path, dump_result(self))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> OptimizationResult:
        """A result saved by :meth:`save` (``target`` is None: apply ``best_patch`` to your
        app with :func:`tg_bridge.apply_patch`). UsageError naming the file and the field
        for anything unreadable or malformed."""
        from .result_io import load_result

        return load_result(path)


def score_curve_svg(result: OptimizationResult, width: int = 640, height: int = 260) -> str:
    """An inline SVG chart of the scores per step (see :mod:`tg_bridge.views_curve`)."""
    from ..views_curve import score_curve_svg as draw

    return draw(result, width, height)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
