"""Run callbacks: ``optimize(..., callbacks=[...])`` tells observers about each step as it is
committed and about the result at the end (e.g. ``tg_bridge_mlflow.MlflowTracker`` logs them
to MLflow while the run goes on).

A callback is any object with some of the methods of :class:`Callback`; missing methods are
skipped. Callbacks observe, they never steer: what they raise is logged on the ``tg_bridge``
logger and the run carries on (an observer's outage must not cost an optimization run).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal, Protocol

__all__ = ["Callback", "Event", "check_callbacks", "notify"]

log = logging.getLogger(__name__)

Event = Literal["on_step", "on_end"]
EVENTS: tuple[Event, ...] = ("on_step", "on_end")


class Callback(Protocol):
    """What a callback may implement (each method optional)."""

    def on_step(self, step: Any, *, run_id: str, current: float | None) -> None:
        """A step was committed: ``step`` is its StepResult (also the final check, epoch
        -1); ``current`` the valset score the run holds after the decision (None without a
        valset, where each step is judged on its own batch; the final check's is the run's
        final score)."""

    def on_end(self, result: Any) -> None:
        """The run finished: ``result`` is the OptimizationResult ``optimize`` returns."""


def check_callbacks(callbacks: Any) -> tuple[Any, ...]:
    """``callbacks`` as a tuple; UsageError for anything that implements no event."""
    from ..exceptions import UsageError

    if callbacks is None:
        return ()
    if isinstance(callbacks, (str, bytes)) or not isinstance(callbacks, Sequence):
        callbacks = (callbacks,)
    for cb in callbacks:
        if not any(callable(getattr(cb, name, None)) for name in EVENTS):
            raise UsageError(f"a callback must define one of {EVENTS}, got {type(cb).__name__}")
    return tuple(callbacks)


def notify(callbacks: Sequence[Any], event: Event, *args: Any, **kwargs: Any) -> None:
    """Call ``event`` on every callback that has it, in order; never raises (logged)."""
    for cb in callbacks:
        method = getattr(cb, event, None)
        if not callable(method):
            continue
        try:
            method(*args, **kwargs)
        except Exception:  # an observer must not break the run: logged with its traceback
            log.exception("callback %s.%s failed; the run carries on", type(cb).__name__, event)
