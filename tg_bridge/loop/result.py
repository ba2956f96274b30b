"""OptimizationResult: scores, the best Patch, the step history and usage per phase."""

from __future__ import annotations

import dataclasses
import html
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
    with :func:`tg_bridge.apply_patch`); ``target`` is the optimized object (the original
    when ``in_place=True``, else the patched copy); ``usage`` maps phase (forward, backward,
    update, eval) -> calls, cached_calls, prompt_tokens, completion_tokens.
    """

    run_id: str
    baseline_score: float | None
    best_score: float | None
    best_patch: Any
    history: list[StepResult]
    usage: dict[str, dict[str, int]]
    target: Any = None
    store_path: str = ""

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
        esc = html.escape
        rows = []
        for s in self.history:
            colour = "#2e7d32" if s.accepted else "#c62828"
            decision = "kept" if s.accepted else ("reverted" if s.score is not None else "skipped")
            calls = sum(int(c.get("calls", 0)) for c in s.usage.values())
            rows.append(
                f"<tr><td>{s.step}</td><td>{s.epoch}</td><td>{_fmt(s.before)}</td>"
                f"<td>{_fmt(s.score)}</td><td style='color:{colour}'>{decision}</td>"
                f"<td>{calls}</td><td>{esc(s.reason)}</td></tr>"
            )
        usage_rows = "".join(
            f"<tr><td>{esc(p)}</td><td>{c.get('calls', 0)}</td><td>{c.get('cached_calls', 0)}</td>"
            f"<td>{c.get('prompt_tokens', 0) + c.get('completion_tokens', 0)}</td></tr>"
            for p, c in self.usage.items()
        )
        return (
            f"<div class='tg-bridge-result'><b>Optimization run {esc(self.run_id)}</b>: "
            f"{_fmt(self.baseline_score)} &rarr; {_fmt(self.best_score)}"
            f"{score_curve_svg(self)}"
            "<table><tr><th>step</th><th>epoch</th><th>before</th><th>candidate</th>"
            f"<th>decision</th><th>calls</th><th>note</th></tr>{''.join(rows)}</table>"
            "<table><tr><th>phase</th><th>calls</th><th>cached</th><th>tokens</th></tr>"
            f"{usage_rows}</table></div>"
        )

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


def score_curve_svg(result: OptimizationResult, width: int = 360, height: int = 120) -> str:
    """An inline SVG: the accepted score over steps (line) and every candidate (dots)."""
    points: list[tuple[int, float, str]] = []
    if result.baseline_score is not None:
        points.append((0, result.baseline_score, "#555"))
    for s in result.history:
        if s.score is not None:
            points.append((s.step, s.score, "#2e7d32" if s.accepted else "#c62828"))
    if not points:
        return "<svg width='0' height='0'></svg>"
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    lo, hi = min(ys), max(ys)
    span_y = (hi - lo) or 1.0
    span_x = (max(xs) - min(xs)) or 1
    pad = 10

    def sx(x: float) -> float:
        return pad + (x - min(xs)) / span_x * (width - 2 * pad)

    def sy(y: float) -> float:
        return height - pad - (y - lo) / span_y * (height - 2 * pad)

    current = result.baseline_score
    line = []
    if current is not None:
        line.append(f"{sx(0):.1f},{sy(current):.1f}")
    for s in result.history:
        if s.accepted and s.score is not None:
            current = s.score
        if current is not None:
            line.append(f"{sx(s.step):.1f},{sy(current):.1f}")
    dots = "".join(
        f"<circle cx='{sx(x):.1f}' cy='{sy(y):.1f}' r='3' fill='{c}'/>" for x, y, c in points
    )
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"class='tg-bridge-score-curve'><polyline fill='none' stroke='#1565c0' stroke-width='2' "
        f"points='{' '.join(line)}'/>{dots}</svg>"
    )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
