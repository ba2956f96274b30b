"""Grouping span records by trace with bounded memory: open traces spill to a temporary SQLite file.

Spans of one trace may be spread over a whole file (the collector writes batches as they
come), so a trace is complete only when the file ends. :class:`TraceGrouper` keeps at most
``max_open_spans`` records, and at most ``max_open_bytes`` (estimated from the attribute
texts, see :func:`estimated_bytes`), in memory; past either bound it moves whole traces,
least recently extended first, to a SQLite database in a private temporary file, and later spans of a moved
trace go straight there. Traces come out in order of first appearance with their spans in
input order, exactly what grouping everything in a dict gives, whatever was spilled.

Why SQLite: it is in the standard library, indexes by (trace, arrival) on disk, and
streams rows back in order with a bounded page cache. Records are stored with :mod:`marshal`
(builtin types only — str, int, float, bool, None, tuple, list, dict — so tuples stay tuples and
NaN stays NaN; reading it back builds data, never calls a constructor or runs code, unlike
pickle), or as JSON (:func:`tg_bridge.spans.spans_to_json_bytes`) for a record holding anything
else; the file is created by this process with owner-only permissions and deleted on
:meth:`close`. Why marshal: the JSON codec walked every value in Python and was ~40% of the
time of a 1M-span read that spills.

Not thread-safe (one reader at a time); blocking disk I/O once spilling starts.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import sqlite3
import tempfile
from collections import OrderedDict
from collections.abc import Iterable, Iterator

from ..spans import SpanRecord, spans_from_json_bytes, spans_to_json_bytes
from . import otlp_json

__all__ = ["DEFAULT_MAX_OPEN_BYTES", "DEFAULT_MAX_OPEN_SPANS", "TraceGrouper", "estimated_bytes"]

DEFAULT_MAX_OPEN_SPANS = 200_000
#: What the open traces may hold in memory before spilling (with the reader's own buffers
#: and the interpreter, a 1M-span file stays well within 500 MB peak RSS).
DEFAULT_MAX_OPEN_BYTES = 256 << 20
_SPILL_ROWS = 512  # spilled traces per INSERT statement
_BLOOM_BITS = 1 << 24  # 2 MiB: ~3% false "maybe spilled" at 2M spilled traces


def estimated_bytes(span: SpanRecord) -> int:
    """A cheap estimate of a record's memory: a fixed part, a per-attribute part (dict entry,
    key, boxed value) and the length of every text value (most of a span's weight)."""
    attrs = span.attributes
    size = 600 + 100 * len(attrs) + 300 * len(span.events)
    fast = otlp_json._fast  # read at each call: tests switch the C code off
    if fast is not None and type(attrs) is dict:
        return size + fast.text_length(attrs)  # the same sum, in C (once per span of a file)
    for value in attrs.values():
        if type(value) is str:
            size += len(value)
    return size



class TraceGrouper:
    """Collect spans with :meth:`add`, then read whole traces from :meth:`traces`.

    Memory: at most ``max_open_spans`` records (plus one trace being yielded). Use as a
    context manager or call :meth:`close` to delete the spill file.
    """

    def __init__(self, max_open_spans: int = DEFAULT_MAX_OPEN_SPANS, *, spill_dir: str | None = None,
                 max_open_bytes: int = DEFAULT_MAX_OPEN_BYTES) -> None:  # fmt: skip
        self.max_open_spans = max(1, max_open_spans)
        self.max_open_bytes = max(1, max_open_bytes)
        self.spill_dir = spill_dir
        self.spilled_spans = 0  # how many records went to disk (for tests and reports)
        self._open: OrderedDict[str, tuple[int, list[SpanRecord]]] = OrderedDict()
        self._open_count = 0
        self._open_bytes = 0
        self._trace_bytes: dict[str, int] = {}
        self._next_trace = 0
        self._arrival = 0
        self._db: sqlite3.Connection | None = None
        self._path: str | None = None
        self._maybe_spilled = bytearray(_BLOOM_BITS // 8)  # see _mark_spilled

    def __enter__(self) -> TraceGrouper:  # noqa: PYI034 - Self needs Python 3.11
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, span: SpanRecord) -> None:
        """File ``span`` under its trace (spilling the stalest open traces when over the bound)."""
        self._arrival += 1
        entry = self._open.get(span.trace_id)
        if entry is not None:
            entry[1].append(span)
            self._open.move_to_end(span.trace_id)
        else:
            seq = self._spilled_seq(span.trace_id)
            if seq is not None:  # the trace already lives on disk: keep it whole there
                self._write(seq, self._arrival, [span])
                return
            self._open[span.trace_id] = (self._next_trace, [span])
            self._next_trace += 1
        size = estimated_bytes(span)
        self._trace_bytes[span.trace_id] = self._trace_bytes.get(span.trace_id, 0) + size
        self._open_count += 1
        self._open_bytes += size
        if self._open_count > self.max_open_spans or self._open_bytes > self.max_open_bytes:
            self._spill(self.max_open_spans // 2, self.max_open_bytes // 2)

    def add_all(self, spans: Iterable[SpanRecord]) -> None:
        """:meth:`add` each span. Inlines the common case (the span's trace is open in
        memory, within the bounds) since this runs once per span of a file."""
        open_traces = self._open
        trace_bytes = self._trace_bytes
        for span in spans:
            trace_id = span.trace_id
            entry = open_traces.get(trace_id)
            if entry is None:
                self.add(span)
                continue
            self._arrival += 1
            entry[1].append(span)
            open_traces.move_to_end(trace_id)
            size = estimated_bytes(span)
            trace_bytes[trace_id] += size
            self._open_count += 1
            self._open_bytes += size
            if self._open_count > self.max_open_spans or self._open_bytes > self.max_open_bytes:
                self._spill(self.max_open_spans // 2, self.max_open_bytes // 2)

    def traces(self) -> Iterator[list[SpanRecord]]:
        """Every trace (its span list), in order of first appearance; each handed out once."""
        # Newest first, so that pop() hands them out oldest first and drops each reference
        # as it goes: a trace the caller is done with is freed before the file's end.
        in_memory = sorted(self._open.values(), key=lambda entry: entry[0], reverse=True)
        self._open = OrderedDict()
        self._open_count = self._open_bytes = 0
        self._trace_bytes = {}
        pending = in_memory.pop() if in_memory else None
        for seq, spans in self._spilled_traces():
            while pending is not None and pending[0] < seq:
                yield pending[1]
                pending = in_memory.pop() if in_memory else None
            yield spans
        while pending is not None:
            yield pending[1]
            pending = in_memory.pop() if in_memory else None

    def close(self) -> None:
        """Drop everything and delete the spill file (idempotent)."""
        self._open.clear()
        self._trace_bytes.clear()
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._path)
            self._path = None

    # -- the spill file ---------------------------------------------------------------------
    def _spill(self, keep: int, keep_bytes: int) -> None:
        """Move the least recently extended traces to disk until at most ``keep`` records
        and ``keep_bytes`` stay (half the bounds: spilling happens in batches)."""
        db = self._connect()
        traces: list[tuple[str, int]] = []
        rows: list[tuple[int, int, bytes]] = []
        while (self._open_count > keep or self._open_bytes > keep_bytes) and self._open:
            trace_id, (seq, spans) = self._open.popitem(last=False)
            traces.append((trace_id, seq))
            self._mark_spilled(trace_id)
            rows.append((seq, self._arrival - self._open_count, _encode(spans)))  # earlier than any later row
            self.spilled_spans += len(spans)
            self._open_count -= len(spans)
            self._open_bytes -= self._trace_bytes.pop(trace_id, 0)
            if len(rows) >= _SPILL_ROWS:
                self._insert(db, traces, rows)
        self._insert(db, traces, rows)

    @staticmethod
    def _insert(db: sqlite3.Connection, traces: list[tuple[str, int]], rows: list[tuple[int, int, bytes]]) -> None:
        """One statement per table for a run of spilled traces (a statement per trace cost
        ~8 us each), in runs of :data:`_SPILL_ROWS` so the encoded rows waiting for it stay
        small (all of a spill at once raised the 1M-span peak RSS by ~40 MB)."""
        db.executemany("INSERT INTO traces (id, seq) VALUES (?, ?)", traces)
        db.executemany("INSERT INTO spans (seq, arrival, data) VALUES (?, ?, ?)", rows)
        traces.clear()
        rows.clear()

    def _bloom_bits(self, trace_id: str) -> tuple[int, int, int]:
        h = hash(trace_id)  # SipHash, keyed per process: a file cannot aim at collisions
        mask = _BLOOM_BITS - 1
        return h & mask, (h >> 24) & mask, (h >> 48) & mask

    def _mark_spilled(self, trace_id: str) -> None:
        bits = self._maybe_spilled
        for b in self._bloom_bits(trace_id):
            bits[b >> 3] |= 1 << (b & 7)

    def _maybe_on_disk(self, trace_id: str) -> bool:
        """False only for a trace never spilled (a Bloom filter over the spilled ids): a new
        trace needs no SQLite lookup; a false "maybe" only costs that lookup."""
        bits = self._maybe_spilled
        return all(bits[b >> 3] & (1 << (b & 7)) for b in self._bloom_bits(trace_id))

    def _write(self, seq: int, arrival: int, spans: list[SpanRecord]) -> None:
        """One row per spilled batch of a trace (its spans in order, encoded together): far fewer
        rows and encode calls than spans."""
        db = self._connect()
        db.execute("INSERT INTO spans (seq, arrival, data) VALUES (?, ?, ?)",
                   (seq, arrival, _encode(spans)))
        self.spilled_spans += len(spans)

    def _spilled_seq(self, trace_id: str) -> int | None:
        if self._db is None or not self._maybe_on_disk(trace_id):
            return None
        row = self._db.execute("SELECT seq FROM traces WHERE id = ?", (trace_id,)).fetchone()
        return None if row is None else int(row[0])

    def _spilled_traces(self) -> Iterator[tuple[int, list[SpanRecord]]]:
        """Each spilled trace (its order number and spans), in order: ONE query walking the
        (seq, arrival) primary key, rows grouped as they come (a query per trace was a
        third of a spilling read)."""
        if self._db is None:
            return
        current: int | None = None
        spans: list[SpanRecord] = []
        for seq, data in self._db.execute("SELECT seq, data FROM spans ORDER BY seq, arrival"):
            if seq != current:
                if current is not None:
                    yield current, spans
                current, spans = seq, []
            spans.extend(_decode(data))
        if current is not None:
            yield current, spans

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            fd, self._path = tempfile.mkstemp(prefix="tg_bridge-traces-", suffix=".sqlite",
                                              dir=self.spill_dir)  # fmt: skip
            os.close(fd)  # mkstemp: owner-only permissions
            db = sqlite3.connect(self._path)
            db.executescript(
                "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -16000;"
                "CREATE TABLE traces (id TEXT PRIMARY KEY, seq INTEGER NOT NULL);"
                "CREATE INDEX traces_seq ON traces (seq);"
                "CREATE TABLE spans (seq INTEGER NOT NULL, arrival INTEGER NOT NULL, data BLOB NOT NULL,"
                " PRIMARY KEY (seq, arrival)) WITHOUT ROWID;"
            )
            self._db = db
        return self._db


_MARSHAL, _JSON = b"M", b"J"


def _encode(spans: list[SpanRecord]) -> bytes:
    """Records as bytes :func:`_decode` turns back into EQUAL records (same value types)."""
    rows = [(s.trace_id, s.span_id, s.parent_id, s.name, s.start_ns, s.end_ns, s.attributes, s.status, s.events,
             s.resource) for s in spans]  # fmt: skip
    try:
        return _MARSHAL + marshal.dumps(rows)
    except ValueError:  # a value of another type (a Mapping that is not a dict, a tuple subclass)
        return _JSON + spans_to_json_bytes(spans)


def _decode(data: bytes) -> list[SpanRecord]:
    if data[:1] == _MARSHAL:
        make = otlp_json._make_record  # the readers' constructor: same record, no frozen __init__
        return [make(*row) for row in marshal.loads(data[1:])]
    return spans_from_json_bytes(data[1:])
