"""capture(): the ``with`` / ``async with`` block that records a Run."""

from __future__ import annotations

import contextvars
import logging
from types import TracebackType

from ..exceptions import CaptureError
from .instrumentation import instrument as _instrument
from .run import Run
from .state import context_run, reset_current, set_current

__all__ = ["Capture", "capture"]

log = logging.getLogger("tg_bridge.capture")


class Capture:
    """A capture block (returned by :func:`capture`). Single use: entering it twice raises
    :class:`CaptureError`. The Run is available as ``.run`` before, during and after the block."""

    def __init__(self, name: str | None = None, *, instrument: bool = True, max_spans: int | None = None) -> None:
        self.run = Run(name, max_spans=max_spans)
        self._instrument = instrument
        self._token: contextvars.Token[Run | None] | None = None
        self._previous: Run | None = None
        self._entered = False

    def __enter__(self) -> Run:
        if self._entered:
            raise CaptureError("a capture() block cannot be entered twice; call capture() again")
        self._entered = True
        if self._instrument:
            try:
                _instrument()
            except Exception:  # instrumenting is best effort; the block still records our spans
                log.warning("tg_bridge could not instrument adapters", exc_info=True)
        self._previous = context_run()
        self._token = set_current(self.run)
        return self.run

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            reset_current(self._token, self._previous)
            self._token = None
        try:  # a failure of ours must never replace the block's own exception
            self.run.finish()
        except Exception:
            log.warning("tg_bridge could not finish run %s", self.run.name, exc_info=True)
            self.run.count_hook_error()

    async def __aenter__(self) -> Run:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def capture(name: str | None = None, *, instrument: bool = True, max_spans: int | None = None) -> Capture:
    """Record what runs inside the block into a new :class:`Run`::

        with tg_bridge.capture("rag") as run:
            chain.invoke({"question": "..."})
        graph = run.graph()

    Also ``async with``. ``instrument=True`` installs the adapters' hooks on first use
    (:func:`tg_bridge.capturing.instrument`, idempotent). Nested blocks and concurrent blocks in
    other asyncio tasks or threads keep their Runs apart: a span goes to the innermost block of
    its context. ``max_spans`` overrides ``settings.max_spans`` for this Run. Exceptions raised
    inside the block propagate unchanged; leaving the block sets ``run.ended``.
    """
    return Capture(name, instrument=instrument, max_spans=max_spans)
