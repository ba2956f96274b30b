"""Progress display for optimize(): a tqdm bar (a widget in Jupyter via ``tqdm.auto``).

Shows step, current score, calls and tokens. ``Progress(enabled=False)`` prints nothing.
Display failures (no terminal, a broken widget) are logged, never raised: progress must not
break a run.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["Progress"]

log = logging.getLogger(__name__)


class Progress:
    """A step counter with a postfix. Not thread-safe (the loop updates it from one task)."""

    def __init__(self, total: int, *, enabled: bool = True, initial: int = 0,
                 desc: str = "tg_bridge optimize") -> None:
        self._bar: Any = None
        self.calls = 0
        self.tokens = 0
        if not enabled:
            return
        try:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=initial, desc=desc, unit="step", leave=True)
        except Exception:  # tqdm missing or no display: run without a bar
            log.debug("progress bar unavailable", exc_info=True)

    def add_usage(self, counters: dict[str, dict[str, int]]) -> None:
        for phase in counters.values():
            self.calls += int(phase.get("calls", 0))
            self.tokens += int(phase.get("prompt_tokens", 0)) + int(phase.get("completion_tokens", 0))

    def update(self, step: int, score: float | None, *, advance: int = 1) -> None:
        if self._bar is None:
            return
        try:
            self._bar.set_postfix(
                step=step, score="-" if score is None else f"{score:.3g}",
                calls=self.calls, tokens=self.tokens, refresh=False,
            )
            self._bar.update(advance)
        except Exception:
            log.debug("progress update failed", exc_info=True)

    def note(self, text: str) -> None:
        """Print one line above the bar (e.g. why a step's candidate was not kept), on the
        bar's stream (stderr)."""
        if self._bar is None:
            return
        try:
            import sys

            self._bar.write(text, file=sys.stderr)
        except Exception:
            log.debug("progress note failed", exc_info=True)

    def close(self) -> None:
        if self._bar is not None:
            try:
                self._bar.close()
            except Exception:
                log.debug("progress close failed", exc_info=True)
            self._bar = None
