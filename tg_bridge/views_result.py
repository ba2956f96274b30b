"""HTML for an :class:`~tg_bridge.loop.result.OptimizationResult` in a notebook.

Contract of :func:`result_to_html`: one self-contained ``<div>`` (no scripts, nothing
fetched) with the headline, the score curve (:mod:`tg_bridge.views_curve`), the step table
whose decision cells use the same colour and glyph as the curve, the gradients grouped per
prompt in expandable ``<details>`` blocks (newest step last, long texts cut with a note),
usage per phase and the best patch's diff. Every string from the run (reasons, gradients,
prompt keys, run id) is escaped.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from .views_curve import GLYPHS, MARKS, decision, score_curve_svg

if TYPE_CHECKING:
    from .loop.result import OptimizationResult, StepResult

__all__ = ["GRADIENT_CHARS", "result_to_html"]

GRADIENT_CHARS = 4000  # per gradient shown; the full text stays in the run store
OPEN_TABLE_STEPS = 30  # longer step tables start collapsed: the curve tells the story

_STYLE = (
    "<style>.tg-bridge-result table{border-collapse:collapse;margin:6px 0}"
    ".tg-bridge-result td,.tg-bridge-result th{padding:2px 8px;border-bottom:1px solid #e5e7eb;"
    "text-align:left;vertical-align:top}"
    ".tg-bridge-result pre{white-space:pre-wrap;word-break:break-word;max-width:960px;"
    "background:#f9fafb;padding:6px;margin:4px 0}"
    ".tg-bridge-result details{margin:4px 0}"
    ".tg-bridge-result details details{margin-left:16px}</style>"
)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return html.escape(str(value))


def _decision_cell(kind: str) -> str:
    colour, _ = MARKS[kind]
    return f"<td style='color:{colour};font-weight:bold'>{GLYPHS[kind]} {kind}</td>"


def _gradients_html(history: list[StepResult]) -> str:
    per_key: dict[str, list[tuple[int, str]]] = {}
    for s in history:
        for key, texts in dict(getattr(s, "gradients", {}) or {}).items():
            for text in texts or ():
                per_key.setdefault(str(key), []).append((s.step, str(text)))
    if not per_key:
        return "<p><i>No gradients recorded.</i></p>"
    blocks = []
    for key in sorted(per_key):
        items = []
        for step, text in per_key[key]:
            shown = text if len(text) <= GRADIENT_CHARS else (
                text[:GRADIENT_CHARS] + f"\n[... {len(text) - GRADIENT_CHARS} more characters]")
            items.append(f"<div><b>step {html.escape(str(step))}</b><pre>{html.escape(shown)}</pre></div>")
        blocks.append(
            f"<details class='tg-bridge-gradients'><summary><code>{html.escape(key)}</code>: "
            f"{len(per_key[key])} gradient(s)</summary>{''.join(items)}</details>"
        )
    return "".join(blocks)


def _patch_html(patch: Any) -> str:  # result.best_patch: a Patch, or None / a loaded stand-in
    changes = list(getattr(patch, "changes", []) or [])
    if not changes:
        return "<p>Best patch: no change.</p>"
    try:
        body = patch._repr_html_()
    except Exception as exc:  # a broken patch view must not hide the rest
        body = f"<p>(patch view failed: {html.escape(type(exc).__name__)})</p>"
    return (f"<details><summary>best patch: {len(changes)} change(s)</summary>"
            f"{body}</details>")


def result_to_html(result: OptimizationResult) -> str:
    """The notebook view of ``result`` (see the module docstring)."""
    esc = html.escape
    history = list(result.history)
    rows = []
    for s in history:
        kind = decision(s)
        calls = sum(int(c.get("calls", 0)) for c in dict(s.usage).values())
        n_grad = sum(len(t or ()) for t in dict(s.gradients).values())
        rows.append(
            f"<tr><td>{esc(str(s.step))}</td><td>{esc(str(s.epoch))}</td><td>{_fmt(s.before)}</td>"
            f"<td>{_fmt(s.score)}</td>{_decision_cell(kind)}<td>{calls}</td><td>{n_grad}</td>"
            f"<td>{esc(str(s.reason or ''))}</td></tr>"
        )
    table = (
        f"<details{' open' if len(rows) <= OPEN_TABLE_STEPS else ''}><summary>{len(rows)} step{'s' if len(rows) != 1 else ''}"
        "</summary><table><tr><th>step</th><th>epoch</th>"
        "<th>before</th><th>candidate</th><th>decision</th><th>calls</th><th>gradients</th>"
        f"<th>note</th></tr>{''.join(rows)}</table></details>"
        if rows else "<p>No steps ran.</p>"
    )
    usage_rows = "".join(
        f"<tr><td>{esc(str(p))}</td><td>{int(c.get('calls', 0))}</td>"
        f"<td>{int(c.get('cached_calls', 0))}</td>"
        f"<td>{int(c.get('prompt_tokens', 0)) + int(c.get('completion_tokens', 0))}</td></tr>"
        for p, c in dict(result.usage).items()
    )
    kept = sum(1 for s in history if s.accepted)
    return (
        f"<div class='tg-bridge-result'>{_STYLE}"
        f"<p><b>Optimization run <code>{esc(str(result.run_id))}</code></b>: score "
        f"{_fmt(result.baseline_score)} &rarr; {_fmt(result.best_score)} "
        f"({kept}/{len(history)} steps kept)</p>"
        f"{score_curve_svg(result)}{table}"
        f"<details><summary>gradients per prompt</summary>{_gradients_html(history)}</details>"
        "<details><summary>usage per phase</summary><table><tr><th>phase</th><th>calls</th>"
        f"<th>cached</th><th>tokens</th></tr>{usage_rows}</table></details>"
        f"{_patch_html(result.best_patch)}</div>"
    )
