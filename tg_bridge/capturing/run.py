"""Run: everything one ``capture()`` block recorded (spans, bindings, counters).

A Run is filled from the host's request path (the span processor, adapter hooks), possibly from
several threads at once; every mutation takes the Run's lock. Reading ``spans`` while the app is
still running gives a consistent prefix (list appends are atomic).
"""

from __future__ import annotations

import html
import logging
import threading
import time
import uuid
import warnings
from typing import TYPE_CHECKING

from ..config import get_settings
from ..exceptions import DroppedDataWarning
from ..spans import SpanRecord

if TYPE_CHECKING:
    from ..patching.binding import Binding

__all__ = ["Run"]

log = logging.getLogger(__name__)

_HTML_SPAN_ROWS = 50  # a notebook preview, not a trace viewer


class Run:
    """The spans and live prompt bindings recorded by one capture block.

    Attributes:
        id: uuid4 hex; stamped on every span as ``tg_bridge.run_id``.
        name: the name given to ``capture()``, else ``"run-<first 8 hex of id>"``.
        spans: :class:`SpanRecord` list in span END order (children usually before parents).
        bindings: binding key -> live :class:`Binding`, registered by adapters.
        dropped: spans not kept because the Run already held ``max_spans``.
        dropped_attributes: attributes the per-span limits cut (summed over kept spans).
        hook_errors: failures of capture hooks or of the span processor during this Run
            (logged on the ``tg_bridge`` logger; the host app was not disturbed).
        started, ended: wall-clock timestamps (``time.time()``); ``ended`` is None while open.
        max_spans: the span cap, from ``settings.max_spans`` when the Run was created.

    Spans that end after the block was left (a stream consumed later) are still added.
    """

    def __init__(self, name: str | None = None, *, max_spans: int | None = None) -> None:
        self.id: str = uuid.uuid4().hex
        self.name: str = name or f"run-{self.id[:8]}"
        self.spans: list[SpanRecord] = []
        self.bindings: dict[str, Binding] = {}
        self.dropped = 0
        self.dropped_attributes = 0
        self.hook_errors = 0
        self.started: float = time.time()
        self.ended: float | None = None
        self.max_spans: int = max(0, int(max_spans if max_spans is not None else get_settings().max_spans))
        self._lock = threading.Lock()
        self._warned = False

    # -- filled from the request path (never raise) ---------------------------------------
    @property
    def full(self) -> bool:
        """True when the next span would be dropped (a cheap, lock-free pre-check)."""
        return len(self.spans) >= self.max_spans

    def add_span(self, record: SpanRecord, *, dropped_attributes: int = 0) -> bool:
        """Append ``record`` unless the Run is full; returns whether it was kept. Thread-safe."""
        with self._lock:
            if len(self.spans) < self.max_spans:
                self.spans.append(record)
                self.dropped_attributes += dropped_attributes
                kept = True
            else:
                self.dropped += 1
                kept = False
            warn = (not kept or dropped_attributes > 0) and not self._warned
            if warn:
                self._warned = True
        if warn:
            self._warn_dropped()
        return kept

    def count_dropped(self) -> None:
        """Count one span that was not converted because the Run is full."""
        with self._lock:
            self.dropped += 1
            warn = not self._warned
            self._warned = True
        if warn:
            self._warn_dropped()

    def add_binding(self, binding: Binding) -> None:
        """Remember a live prompt binding under its key (the latest one wins). Thread-safe."""
        with self._lock:
            self.bindings[binding.key] = binding

    def count_hook_error(self) -> int:
        """Count one hook failure; returns the new count. Thread-safe."""
        with self._lock:
            self.hook_errors += 1
            return self.hook_errors

    def finish(self) -> None:
        """Mark the Run ended (called when the capture block is left). Idempotent; never
        raises (callers on the host path guard it as well)."""
        if self.ended is None:
            try:
                self.ended = time.time()
            except Exception:  # a broken clock must not reach the host
                self.count_hook_error()

    def _warn_dropped(self) -> None:
        message = (
            f"tg_bridge run {self.name!r} is dropping data to stay bounded "
            f"(max_spans={self.max_spans}); see Run.dropped and Run.dropped_attributes"
        )
        log.warning(message)
        try:  # a host running with -W error must not see this as an exception
            warnings.warn(message, DroppedDataWarning, stacklevel=3)
        except Exception:
            log.debug("DroppedDataWarning escalated to an error; ignored", exc_info=True)

    # -- reading (explicit user calls) ----------------------------------------------------
    def snapshot(self) -> list[SpanRecord]:
        """A copy of the spans recorded so far."""
        with self._lock:
            return list(self.spans)

    def trace_ids(self) -> list[str]:
        """Trace ids in order of first appearance among the spans."""
        seen: dict[str, None] = {}
        for span in self.snapshot():
            seen.setdefault(span.trace_id, None)
        return list(seen)

    # -- display --------------------------------------------------------------------------
    def _summary(self) -> dict[str, object]:
        duration = (self.ended if self.ended is not None else time.time()) - self.started
        return {
            "spans": len(self.spans),
            "traces": len(self.trace_ids()),
            "bindings": len(self.bindings),
            "dropped": self.dropped,
            "hook_errors": self.hook_errors,
            "seconds": round(duration, 3),
            "open": self.ended is None,
        }

    def __repr__(self) -> str:
        s = self._summary()
        extra = ""
        if s["dropped"] or self.dropped_attributes:
            extra += f", dropped={s['dropped']}, dropped_attributes={self.dropped_attributes}"
        if s["hook_errors"]:
            extra += f", hook_errors={s['hook_errors']}"
        state = "open" if s["open"] else f"{s['seconds']}s"
        return (
            f"<Run {self.name!r} id={self.id[:8]} {state}: {s['spans']} spans in "
            f"{s['traces']} traces, {s['bindings']} bindings{extra}>"
        )

    def _repr_html_(self) -> str:
        s = self._summary()
        esc = html.escape
        head = (
            f"<b>tg_bridge Run</b> {esc(self.name)} <code>{esc(self.id)}</code>: "
            f"{s['spans']} spans, {s['traces']} traces, {s['bindings']} bindings, "
            f"{s['dropped']} dropped, {s['hook_errors']} hook errors"
        )
        rows = []
        for span in self.snapshot()[:_HTML_SPAN_ROWS]:
            kind = span.attributes.get("openinference.span.kind", "")
            ms = max(0, span.end_ns - span.start_ns) / 1e6
            rows.append(
                f"<tr><td>{esc(span.name)}</td><td>{esc(str(kind))}</td>"
                f"<td>{ms:.2f}</td><td>{esc(span.status)}</td></tr>"
            )
        more = len(self.spans) - _HTML_SPAN_ROWS
        tail = f"<p>... {more} more spans</p>" if more > 0 else ""
        return (
            f"<div class='tg-bridge-run'><p>{head}</p><table><thead><tr><th>span</th>"
            f"<th>kind</th><th>ms</th><th>status</th></tr></thead><tbody>{''.join(rows)}"
            f"</tbody></table>{tail}</div>"
        )
