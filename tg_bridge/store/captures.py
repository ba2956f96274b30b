"""Production captures recorded by ``@optimizable`` and the feedback attached to them."""

from __future__ import annotations

import contextlib
import reprlib
import sqlite3
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..exceptions import StoreError
from ..spans import SpanRecord
from . import _schema as S
from .records import CaptureRecord, FeedbackRecord


class CaptureMixin:
    """Capture/feedback methods of :class:`~tg_bridge.store.RunStore` (same thread-safety)."""

    path: str

    if TYPE_CHECKING:  # provided by RunStore
        def _tx(self) -> contextlib.AbstractContextManager[sqlite3.Connection]: ...
        def _query(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]: ...

    def add_capture(
        self,
        *,
        source: str,
        inputs: object = None,
        output: str | None = None,
        spans: Sequence[SpanRecord] = (),
        bindings: Sequence[str] = (),
        error: str | None = None,
        capture_id: str | None = None,
        inputs_json: str | None = None,
        created: float | None = None,
    ) -> str:
        """Store one recorded production call; returns its id.

        ``inputs_json`` (the inputs already encoded with the store's JSON encoding) replaces
        ``inputs``: the background writer gets inputs snapshotted at call time, not host
        objects the app may have mutated since. ``created`` defaults to now."""
        capture_id = capture_id or uuid.uuid4().hex
        encoded = inputs_json if inputs_json is not None else S.dumps(inputs)
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO captures(id, source, created, inputs, output, error, bindings, spans)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (capture_id, source, created if created is not None else time.time(), encoded,
                 output, error,
                 S.dumps(list(bindings)), S.spans_to_json(spans)),
            )
        return capture_id

    def add_feedback(
        self, capture_id: str, *, score: float | None = None, text: str | None = None
    ) -> None:
        """Attach feedback to a stored capture (StoreError when the capture is unknown)."""
        if not self._query("SELECT 1 FROM captures WHERE id = ?", (capture_id,)):
            # the id may come from an end user's request: cut, not repeated whole
            raise StoreError(f"no recorded run {reprlib.repr(capture_id)} in {self.path}")
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO feedback(capture_id, score, text, created) VALUES (?, ?, ?, ?)",
                (capture_id, score, text, time.time()),
            )

    def captures(
        self, source: str | None = None, *, with_feedback: bool = False, limit: int | None = None
    ) -> list[CaptureRecord]:
        """Recorded calls (oldest first), optionally only those that received feedback."""
        sql, params = "SELECT * FROM captures", []
        clauses = []
        if source is not None:
            clauses.append("source = ?")
            params.append(source)
        if with_feedback:
            clauses.append("id IN (SELECT capture_id FROM feedback)")
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY created, id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        feedback: dict[str, list[FeedbackRecord]] = {}
        for row in self._query("SELECT * FROM feedback ORDER BY id"):
            feedback.setdefault(row["capture_id"], []).append(
                FeedbackRecord(row["capture_id"], row["score"], row["text"], row["created"])
            )
        return [
            CaptureRecord(
                id=row["id"],
                source=row["source"],
                created=row["created"],
                inputs=S.loads(row["inputs"]),
                output=row["output"],
                error=row["error"],
                bindings=tuple(S.loads(row["bindings"], [])),
                spans=tuple(S.spans_from_json(row["spans"])),
                feedback=tuple(feedback.get(row["id"], ())),
            )
            for row in self._query(sql, params)
        ]

