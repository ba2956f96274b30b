"""Progress display for the slow parts of optimize(): the baseline and final evaluations
(one tick per example) and the steps (step, current score, calls, tokens).

The bar class is chosen here rather than by ``tqdm.auto``: ``tqdm.auto`` warns ("IProgress
not found. Please update jupyter and ipywidgets") in a notebook without ipywidgets. We use
the widget bar only inside a Jupyter kernel where ipywidgets imports, and otherwise the plain
text bar, silently. ``Progress(enabled=False)`` prints nothing. Display failures (no terminal,
a closed stream, a broken widget) are logged at debug level, never raised: progress must not
break a run.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from typing import Any

__all__ = ["Progress", "bar_class", "in_notebook"]

log = logging.getLogger(__name__)


def in_notebook() -> bool:
    """True inside a Jupyter kernel (or JupyterLite) that can show widgets: the same test
    tqdm uses (the kernel's shell module is loaded; Qt console and Spyder excluded). Never
    imports IPython itself."""
    if "ipykernel.zmqshell" not in sys.modules and "IPython.utils._process_emscripten" not in sys.modules:
        return False
    if any(name == "QT_API" or name.startswith("SPYDER") for name in os.environ):
        return False
    try:
        shell = sys.modules["IPython"].get_ipython()
    except Exception:
        return False
    kind = type(shell).__name__.lower()
    return shell is not None and "qt" not in kind and "spyder" not in kind


def bar_class() -> Any:
    """The tqdm class to use: the widget bar in a notebook that has ipywidgets, else the
    text bar. Raises ImportError only when tqdm itself is missing."""
    if in_notebook() and importlib.util.find_spec("ipywidgets") is not None:
        try:
            from tqdm import notebook

            if getattr(notebook, "IProgress", None) is not None:
                return notebook.tqdm
        except Exception:  # a broken widget stack: the text bar still works
            log.debug("notebook progress bar unavailable", exc_info=True)
    from tqdm.std import tqdm

    return tqdm


class Progress:
    """A counter with a postfix. Not thread-safe (the loop updates it from one task).

    ``unit`` names what is counted ("step", "example"); ``desc`` is the bar's label. Usable
    as a context manager (closes on exit).
    """

    def __init__(self, total: int, *, enabled: bool = True, initial: int = 0,
                 desc: str = "tg_bridge optimize", unit: str = "step") -> None:
        self._bar: Any = None
        self.calls = 0
        self.tokens = 0
        self.failed = 0
        if not enabled:
            return
        try:
            cls = bar_class()
        except Exception:  # tqdm missing: run without a bar
            log.debug("progress bar unavailable", exc_info=True)
            return
        self._bar = self._make(cls, total=total, initial=initial, desc=desc, unit=unit, leave=True)
        if self._bar is None and cls.__module__ != "tqdm.std":  # widget failed: text bar
            from tqdm.std import tqdm

            self._bar = self._make(tqdm, total=total, initial=initial, desc=desc, unit=unit,
                                   leave=True)

    @staticmethod
    def _make(bar_type: Any, **kwargs: Any) -> Any:
        try:
            return bar_type(**kwargs)
        except Exception:
            log.debug("progress bar could not start", exc_info=True)
            return None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_usage(self, counters: dict[str, dict[str, int]]) -> None:
        for phase in counters.values():
            self.calls += int(phase.get("calls", 0))
            self.tokens += int(phase.get("prompt_tokens", 0)) + int(phase.get("completion_tokens", 0))

    def advance(self, n: int = 1, **postfix: Any) -> None:
        """Count ``n`` more done; ``postfix`` (e.g. ``failed=1``) is shown after the bar."""
        if self._bar is None:
            return
        try:
            if postfix:
                self._bar.set_postfix(refresh=False, **postfix)
            self._bar.update(n)
        except Exception:
            log.debug("progress update failed", exc_info=True)

    def example_done(self, trial: Any = None) -> None:
        """Count one evaluated example; one whose run raised (``trial.error``) is also
        counted as failed, shown as ``failed=N`` after the bar."""
        if getattr(trial, "error", None) is not None:
            self.failed += 1
        self.advance(**({"failed": self.failed} if self.failed else {}))

    def update(self, step: int, score: float | None, *, advance: int = 1, **extra: Any) -> None:
        """One step done; ``extra`` postfix entries (e.g. a budget) are shown too."""
        self.advance(advance, step=step, score="-" if score is None else f"{score:.3g}",
                     calls=self.calls, tokens=self.tokens, **extra)

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
