"""The score curve of an optimization run as an inline SVG chart with real axes.

Contract of :func:`score_curve_svg`:

* x is the step (0 = baseline), y the score; both axes have ticks at "nice" values (1, 2, 5
  x 10^k), tick labels and a title. Any number of steps (1 .. thousands) and any finite
  scores (all equal, negative, above 1) are scaled so that every mark lies inside the plot
  area, which lies inside the ``viewBox``.
* Non-finite scores (NaN, inf) and unreadable step numbers are not drawn; a note under the
  chart says how many.
* Decisions differ by colour AND shape, explained by a legend: kept = green circle,
  reverted = orange triangle, skipped (no candidate scored) = grey square on the floor of the
  plot. The blue step line is the score of the prompts in force after each step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise
from typing import Literal, Protocol, TypeGuard

__all__ = ["MARKS", "Decision", "decision", "nice_ticks", "score_curve_svg"]

Decision = Literal["kept", "reverted", "skipped"]

# decision -> (colour, shape); shapes stay distinguishable without colour
MARKS: dict[str, tuple[str, str]] = {
    "baseline": ("#111827", "diamond"),
    "kept": ("#15803d", "circle"),
    "reverted": ("#ea580c", "triangle"),
    "skipped": ("#6b7280", "square"),
}
LINE_COLOUR = "#2563eb"
GLYPHS = {"kept": "\u25cf", "reverted": "\u25b2", "skipped": "\u25a1", "baseline": "\u25c6"}

LEFT, RIGHT, TOP, BOTTOM = 62, 18, 34, 46


class CurveStep(Protocol):
    """What the curve reads of a step (a :class:`~tg_bridge.loop.result.StepResult` has it).
    ``object``: a result loaded from elsewhere may carry anything; the drawing checks."""

    @property
    def step(self) -> object: ...
    @property
    def score(self) -> object: ...
    @property
    def accepted(self) -> object: ...


def decision(step: CurveStep) -> Decision:
    """kept / reverted (scored, not kept) / skipped (no score: nothing was proposed)."""
    if step.accepted:
        return "kept"
    return "reverted" if step.score is not None else "skipped"


def _finite(value: object) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def nice_ticks(lo: float, hi: float, target: int = 5, *, integer: bool = False) -> list[float]:
    """Ticks at multiples of 1, 2 or 5 x 10^k covering ``[lo, hi]`` (``lo < hi``), all
    inside it, about ``target`` of them; integers only when ``integer``."""
    span = hi - lo
    raw = span / max(1, target)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    if integer:
        step = max(1.0, float(round(step)))
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    k = 0
    while first + k * step <= hi + step * 1e-9:
        ticks.append(round(first + k * step, 12))
        k += 1
    return ticks


def _fmt_tick(value: float, step: float) -> str:
    if step >= 1 and float(value).is_integer():
        return str(int(value))
    decimals = max(0, min(8, -math.floor(math.log10(step)) + (0 if _one_digit(step) else 1)))
    return f"{value:.{decimals}f}"


def _one_digit(step: float) -> bool:
    mantissa = step / 10.0 ** math.floor(math.log10(step))
    return abs(mantissa - round(mantissa)) < 1e-9


def _marker(shape: str, x: float, y: float, r: float, colour: str, tip: str, cls: str) -> str:
    title = f"<title>{tip}</title>"
    c = f'class="{cls}" '
    if shape == "circle":
        return f'<circle {c}cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="{colour}">{title}</circle>'
    if shape == "square":
        return (f'<rect {c}x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r:.1f}" height="{2 * r:.1f}" '
                f'fill="none" stroke="{colour}" stroke-width="1.5">{title}</rect>')
    if shape == "triangle":
        pts = f"{x:.1f},{y - r:.1f} {x + r:.1f},{y + r:.1f} {x - r:.1f},{y + r:.1f}"
    else:  # diamond
        pts = f"{x:.1f},{y - r:.1f} {x + r:.1f},{y:.1f} {x:.1f},{y + r:.1f} {x - r:.1f},{y:.1f}"
    return f'<polygon {c}points="{pts}" fill="{colour}">{title}</polygon>'


def score_curve_svg(result: object, width: int = 640, height: int = 260) -> str:
    """The chart for an :class:`~tg_bridge.loop.result.OptimizationResult` (anything with
    ``baseline_score`` and ``history`` of steps with ``step``, ``score``, ``accepted``)."""
    width, height = max(480, int(width)), max(160, int(height))
    history: Sequence[CurveStep] = list(getattr(result, "history", []) or [])
    baseline = getattr(result, "baseline_score", None)
    skipped_nan = 0
    # (x, y or None, kind, tooltip)
    marks: list[tuple[float, float | None, str, str]] = []
    if baseline is not None:
        if _finite(baseline):
            marks.append((0.0, float(baseline), "baseline", f"baseline: {baseline:.4g}"))
        else:
            skipped_nan += 1
    line: list[tuple[float, float]] = []
    current = float(baseline) if _finite(baseline) else None
    if current is not None:
        line.append((0.0, current))
    for s in history:
        if not _finite(s.step):  # a loaded result may carry anything: not drawable
            skipped_nan += 1
            continue
        x = float(s.step)
        kind = decision(s)
        if kind == "skipped":
            marks.append((x, None, kind, f"step {x:g}: skipped"))
        elif _finite(s.score):
            marks.append((x, float(s.score), kind, f"step {x:g}: {s.score:.4g} {kind}"))
        else:
            skipped_nan += 1
        if kind == "kept" and _finite(s.score):
            current = float(s.score)
        if current is not None:
            line.append((x, current))

    ys = [y for _, y, _, _ in marks if y is not None]
    xs = [x for x, _, _, _ in marks] + [x for x, _ in line]
    x_lo, x_hi = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if x_hi - x_lo < 1:
        x_lo, x_hi = x_lo - 0.5, x_hi + 0.5
    if ys:
        y_lo, y_hi = min(ys), max(ys)
    else:
        y_lo, y_hi = 0.0, 1.0
    if y_hi - y_lo < 1e-12:  # all equal: a band around the value
        half = max(abs(y_lo) * 0.1, 0.05)
        y_lo, y_hi = y_lo - half, y_hi + half
    pad_y = (y_hi - y_lo) * 0.06
    y_lo, y_hi = y_lo - pad_y, y_hi + pad_y

    px0, px1 = LEFT, width - RIGHT
    py0, py1 = TOP, height - BOTTOM  # top, bottom of the plot area
    inset = 6.0  # marks keep their whole shape inside the plot area

    def sx(x: float) -> float:
        return px0 + inset + (x - x_lo) / (x_hi - x_lo) * (px1 - px0 - 2 * inset)

    def sy(y: float) -> float:
        return py1 - inset - (y - y_lo) / (y_hi - y_lo) * (py1 - py0 - 2 * inset)

    n = max(1, len(history))
    r = 4.0 if n <= 60 else 3.0 if n <= 200 else 2.2
    out = [
        (f'<svg xmlns="http://www.w3.org/2000/svg" class="tg-bridge-score-curve" width="{width}" '
         f'height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" '
         'font-size="11" role="img" aria-label="score per step">'),
        (f'<rect x="{px0}" y="{py0}" width="{px1 - px0}" height="{py1 - py0}" fill="#ffffff" '
         'stroke="#d1d5db"/>'),
    ]
    # y axis: grid, ticks, labels
    y_ticks = nice_ticks(y_lo, y_hi, 5)
    y_step = (y_ticks[1] - y_ticks[0]) if len(y_ticks) > 1 else (y_hi - y_lo)
    for t in y_ticks:
        y = sy(t)
        if not py0 <= y <= py1:
            continue
        out.append(f'<line x1="{px0}" y1="{y:.1f}" x2="{px1}" y2="{y:.1f}" stroke="#eef0f3"/>')
        out.append(f'<line x1="{px0 - 4}" y1="{y:.1f}" x2="{px0}" y2="{y:.1f}" stroke="#374151"/>')
        out.append(f'<text x="{px0 - 7}" y="{y + 4:.1f}" text-anchor="end" fill="#374151">'
                   f"{_fmt_tick(t, y_step)}</text>")
    # x axis: integer steps
    x_ticks = [t for t in nice_ticks(x_lo, x_hi, min(10, max(1, int(x_hi - x_lo))), integer=True)]
    for t in x_ticks:
        x = sx(t)
        if not px0 <= x <= px1:
            continue
        out.append(f'<line x1="{x:.1f}" y1="{py1}" x2="{x:.1f}" y2="{py1 + 4}" stroke="#374151"/>')
        out.append(f'<text x="{x:.1f}" y="{py1 + 16}" text-anchor="middle" fill="#374151">'
                   f"{int(t)}</text>")
    out.append(f'<line x1="{px0}" y1="{py1}" x2="{px1}" y2="{py1}" stroke="#374151"/>')
    out.append(f'<line x1="{px0}" y1="{py0}" x2="{px0}" y2="{py1}" stroke="#374151"/>')
    out.append(f'<text x="{(px0 + px1) / 2:.1f}" y="{height - 8}" text-anchor="middle" '
               'fill="#111827">step (0 = baseline)</text>')
    out.append(f'<text x="14" y="{(py0 + py1) / 2:.1f}" text-anchor="middle" fill="#111827" '
               f'transform="rotate(-90 14 {(py0 + py1) / 2:.1f})">score</text>')
    # the score in force: a step line
    if line:
        pts = [f"{sx(line[0][0]):.1f},{sy(line[0][1]):.1f}"]
        for (_, y0), (x1, y1) in pairwise(line):
            pts.append(f"{sx(x1):.1f},{sy(y0):.1f}")
            pts.append(f"{sx(x1):.1f},{sy(y1):.1f}")
        out.append(f'<polyline class="in-force" fill="none" stroke="{LINE_COLOUR}" '
                   f'stroke-width="2" points="{" ".join(pts)}"/>')
    floor = py1 - inset
    for mx, my, mark_kind, tip in marks:
        colour, shape = MARKS[mark_kind]
        out.append(_marker(shape, sx(mx), floor if my is None else sy(my), r, colour, tip,
                           f"mark {mark_kind}"))
    # legend along the top, each entry with its count
    counts = {k: sum(1 for m in marks if m[2] == k) for k in ("kept", "reverted", "skipped")}
    lx = float(px0)
    entries = [("in force", None), ("baseline", "baseline")] + [
        (k, k) for k in ("kept", "reverted", "skipped")]
    for _label, entry in entries:
        if entry is None:
            out.append(f'<line x1="{lx:.1f}" y1="16" x2="{lx + 16:.1f}" y2="16" '
                       f'stroke="{LINE_COLOUR}" stroke-width="2"/>')
            text = "score in force"
        else:
            colour, shape = MARKS[entry]
            out.append(_marker(shape, lx + 8, 16, 4.0, colour, entry, "legend"))
            text = "baseline" if entry == "baseline" else f"{entry} ({counts[entry]})"
        out.append(f'<text x="{lx + 22:.1f}" y="20" fill="#111827">{text}</text>')
        lx += 34 + len(text) * 6.2
    if skipped_nan:
        out.append(f'<text class="note" x="{px1:.1f}" y="{height - 8}" text-anchor="end" '
                   'fill="#b91c1c">'
                   f"{skipped_nan} non-finite value(s) not drawn</text>")
    out.append("</svg>")
    return "".join(out)
