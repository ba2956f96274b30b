"""The one line every optimization run ends with: what changed, or why nothing did.

:func:`outcome_line` is pure (a result in, a sentence out); :func:`announce` logs it on
``tg_bridge.loop`` and, when progress output is on, writes it under the progress bar (to
stderr, like the bar) so a script that prints nothing else still tells its user the outcome.
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from typing import Any

__all__ = ["announce", "outcome_line"]

log = logging.getLogger("tg_bridge.loop")


def outcome_line(result: Any) -> str:
    """``tg_bridge: 1 prompt changed (score 0.5 -> 1) ...`` or ``tg_bridge: nothing changed
    (score stays 1): <why>``. One line, no trailing newline."""
    changes = list(getattr(result.best_patch, "changes", ()) or ())
    scores = f"{_fmt(result.baseline_score)} -> {_fmt(result.best_score)}"
    if changes:
        targets = ", ".join(c.target for c in changes[:3]) + (" ..." if len(changes) > 3 else "")
        return (f"tg_bridge: {len(changes)} prompt(s) changed (score {scores}): {targets};"
                f" run {result.run_id}, see result.best_patch.diff()")
    return (f"tg_bridge: nothing changed (score stays {_fmt(result.baseline_score)}):"
            f" {_why_nothing(result.history)}; run {result.run_id}")


def _why_nothing(history: list[Any]) -> str:
    if not history:
        return "no step ran"
    if any(s.accepted for s in history):
        return "the accepted steps were undone by the final check"
    reasons = Counter(_short(s.reason) or ("no candidate proposed" if s.score is None else
                                           "candidate not better than the current prompts")
                      for s in history)
    parts = [f"{reason} ({n}x)" if n > 1 else reason for reason, n in reasons.most_common(3)]
    more = len(reasons) - 3
    tail = f" and {more} other reason(s)" if more > 0 else ""
    return f"{len(history)} step(s), none kept: " + "; ".join(parts) + tail


def _short(text: str | None) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= 120 else line[:117] + "..."


def announce(result: Any, progress: bool) -> Any:
    """Log :func:`outcome_line` (and write it to stderr when ``progress``); returns
    ``result``. Never raises: a closed stderr must not lose the result."""
    try:
        line = outcome_line(result)
        log.info("%s", line)
        if progress:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
    except Exception:
        log.debug("could not report the outcome line", exc_info=True)
    return result


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
