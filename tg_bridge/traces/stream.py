"""Streaming trace files: sniff the format, read spans incrementally, group them per trace.

Formats (:data:`TraceFileFormat`, decided from the first bytes by :func:`sniff_format`):

- ``"jsonl"`` — one OTLP JSON request (or flattened span, or list) per line: the OTel
  Collector file exporter's JSON format. Read line by line, each line parsed with orjson
  (falling back to ``json``); a line longer than ``max_line_bytes`` is not held whole but
  handed, with the rest of the file, to the incremental scanner.
- ``"json"`` — one JSON document of any size (pretty-printed, one line, a list of requests,
  several documents in a row): :mod:`.otlp_scan` walks it span by span.
- ``"protobuf"`` — binary OTLP (``ExportTraceServiceRequest``/``TracesData``), one message or
  the collector's length-prefixed stream: :mod:`.otlp_proto` (needs ``opentelemetry-proto``).
- ``"empty"`` — nothing but blanks.

Every format yields the same :class:`SpanRecord` objects, in file order, as the whole-file
reader in :mod:`.otlp_json` (the per-span conversion is shared). :func:`iter_traces` groups
them per trace with :class:`.grouping.TraceGrouper`: bounded memory, order of first
appearance. Errors: :class:`TraceFormatError` naming the file and ``line N`` or ``byte N``.
Blocking file I/O; each call opens its own handle (thread-safe across calls).
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import os
import re
from collections.abc import Iterator
from typing import IO, Literal

from ..exceptions import TraceFormatError
from ..spans import SpanRecord
from . import fastjson
from .grouping import DEFAULT_MAX_OPEN_BYTES, DEFAULT_MAX_OPEN_SPANS, TraceGrouper
from .otlp_json import _located, _reason, fill_located
from .otlp_scan import DEFAULT_CHUNK, DEFAULT_MAX_VALUE, scan_spans

__all__ = ["DEFAULT_MAX_LINE", "TraceFileFormat", "gc_paused", "iter_spans", "iter_traces", "sniff_format"]

TraceFileFormat = Literal["empty", "jsonl", "json", "protobuf"]
#: Longer JSON lines are scanned span by span instead of parsed whole (bounds memory).
DEFAULT_MAX_LINE = 8 << 20
_WS = b" \t\r\n"
_HEAD = 4096
_SNIFF_LINE = 1 << 20
_BATCH = 64  # records per GC pause: small, since one record can hold a large prompt


def _open(path: str | os.PathLike[str]) -> tuple[IO[bytes], str]:
    name = os.fspath(path)
    try:
        return open(name, "rb"), name
    except OSError as exc:
        raise TraceFormatError(f"cannot open trace file: {exc}", path=name) from exc


def _sniff(handle: IO[bytes], max_line: int) -> TraceFileFormat:
    """Decide the format from the first bytes and the first non-blank line (bounded reads).

    A first line longer than :data:`_SNIFF_LINE` goes to the scanner, which reads JSON lines
    too (values one after another), so the decision never holds a long line in memory.
    """
    max_line = min(max_line, _SNIFF_LINE)
    head = handle.read(_HEAD)
    handle.seek(0)
    first = head.lstrip(_WS)[:1]
    if not first:
        if len(head) < _HEAD:
            return "empty"
        while (line := handle.readline(max_line + 1)) and not line.strip(_WS):
            pass  # a long run of blanks: find the first byte that is not one
        handle.seek(0)
        first = line.lstrip(_WS)[:1]
        if not first:
            return "empty"
    if first not in b"{[" and (_CONTROL.search(head) or not _mostly_text(head)):
        return "protobuf"
    if b"\x00" in head:  # never in JSON text, and no OTLP protobuf starts with '{' or '['
        raise TraceFormatError("binary data (a NUL byte), not OTLP JSON", where=f"byte {head.index(0)}")
    for raw in iter(lambda: handle.readline(max_line + 1), b""):
        if raw.strip(_WS):
            break
    handle.seek(0)
    if len(raw) > max_line and not raw.endswith(b"\n"):
        return "json"  # a line too long to hold: scan it
    try:
        fastjson.loads(raw, TraceFormatError)
    except TraceFormatError as exc:
        # Not UTF-8 or too deep: read as lines so the error names the line, like the
        # whole-file reader; a line that is not a whole value: one multi-line document.
        reason = str(exc)
        return "jsonl" if ("UTF-8" in reason or "nested" in reason) else "json"
    return "jsonl"


#: a control byte JSON text never holds raw (whitespace aside): a small protobuf request of
#: ASCII bytes (tag 0x0A, short lengths, ids like 0x01) is still binary
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _mostly_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 4  # a character cut by the end of the head
    return True


def sniff_format(path: str | os.PathLike[str], *, max_line_bytes: int = DEFAULT_MAX_LINE) -> TraceFileFormat:
    """The format of a trace file, read from its first bytes and first line (bounded)."""
    handle, _ = _open(path)
    with handle:
        return _sniff(handle, max_line_bytes)


def iter_spans(
    path: str | os.PathLike[str],
    *,
    chunk_size: int = DEFAULT_CHUNK,
    max_line_bytes: int = DEFAULT_MAX_LINE,
    max_value_bytes: int = DEFAULT_MAX_VALUE,
) -> Iterator[SpanRecord]:
    """Yield the span records of a trace file in file order without holding the file.

    Memory is bounded by the largest line (up to ``max_line_bytes``) or the largest span
    object (up to ``max_value_bytes``; larger is a TraceFormatError), never by the file.
    """
    for batch in _span_batches(path, chunk_size, max_line_bytes, max_value_bytes):
        yield from batch


def _span_batches(path: str | os.PathLike[str], chunk_size: int, max_line_bytes: int,
                  max_value_bytes: int) -> Iterator[list[SpanRecord]]:  # fmt: skip
    """:func:`iter_spans` as lists of records (a line's, or :data:`_BATCH`): what grouping
    consumes, without a generator step per span. On a bad span the records before it come
    first, then the TraceFormatError."""
    handle, name = _open(path)
    with handle:
        try:
            fmt = _sniff(handle, max_line_bytes)
        except TraceFormatError as exc:
            raise TraceFormatError(_reason(exc), path=name, where=exc.where) from None
        records: Iterator[SpanRecord]
        if fmt == "jsonl":
            yield from _jsonl(handle, name, chunk_size, max_line_bytes, max_value_bytes)
            return
        if fmt == "json":
            records = scan_spans(handle, name, chunk_size=chunk_size, max_value_bytes=max_value_bytes)
        elif fmt == "protobuf":
            from .otlp_proto import proto_spans

            records = proto_spans(handle, name, max_message_bytes=max_value_bytes)
        else:
            return
        yield from _gc_paused_batches(records)


def _gc_paused_batches(records: Iterator[SpanRecord], size: int = _BATCH) -> Iterator[list[SpanRecord]]:
    """Pull records ``size`` at a time with the cyclic garbage collector paused, then hand
    each batch out with it running again (the caller's code never runs while it is paused).

    Why: parsing allocates millions of small acyclic objects and the collector's passes over
    them (and over the records held for grouping) cost a third of the read time of a 20k-span
    file. The pause is process-wide but short (one batch) and always undone, also on errors.
    """
    while True:
        batch: list[SpanRecord] = []
        failure: BaseException | None = None
        with gc_paused():
            try:
                batch.extend(itertools.islice(records, size))
            except Exception as exc:  # noqa: BLE001 - re-raised below, after the records read before it
                failure = exc
        if batch:
            yield batch
        if failure is not None:
            raise failure
        if len(batch) < size:
            return


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the block, then restore its state.

    Nested use is free (an inner pause finds it disabled and leaves it so). The readers'
    objects are acyclic, so reference counting frees them all; only cyclic garbage made by
    other threads meanwhile waits for the next collection.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _jsonl(handle: IO[bytes], name: str, chunk: int, max_line: int, max_value: int) -> Iterator[list[SpanRecord]]:
    """JSON lines: each line parsed and converted in one go with the cyclic GC paused (see
    :func:`_gc_paused_batches` for why; here the pause is one line, at most ``max_line``
    bytes), then its records handed out with the GC running."""
    offset = 0
    for number, raw in enumerate(iter(lambda: handle.readline(max_line + 1), b""), start=1):
        if len(raw) > max_line and not raw.endswith(b"\n"):
            # Too long to hold: scan from this line's start to the end of the file.
            yield from _gc_paused_batches(scan_spans(handle, name, start=offset, line=number, chunk_size=chunk,
                                                     max_value_bytes=max_value))  # fmt: skip
            return
        offset += len(raw)
        if raw[:1] in _WS and not raw.strip(_WS):  # (strip copies the line: only when it may be blank)
            continue
        where = f"line {number}"
        records: list[SpanRecord] = []
        failure: TraceFormatError | None = None
        with gc_paused():
            try:
                fill_located(fastjson.loads(raw, _located(name, where)), records, name, where)
            except TraceFormatError as exc:
                failure = exc  # raised after the records before it, like the other readers
        if records:
            yield records
        if failure is not None:
            raise failure


def iter_traces(
    path: str | os.PathLike[str],
    *,
    max_open_spans: int = DEFAULT_MAX_OPEN_SPANS,
    max_open_bytes: int = DEFAULT_MAX_OPEN_BYTES,
    spill_dir: str | None = None,
    chunk_size: int = DEFAULT_CHUNK,
) -> Iterator[list[SpanRecord]]:
    """Yield each trace of a file (its spans in file order), in order of first appearance.

    The whole file is read before the first trace comes out (a trace is complete only at
    the end of the file); at most ``max_open_spans`` records (and ``max_open_bytes``,
    estimated) are held meanwhile, the rest
    wait in a temporary SQLite file in ``spill_dir`` (see :mod:`.grouping`), deleted when
    the iterator ends or is closed. Raises TraceFormatError like :func:`iter_spans`.
    """
    with TraceGrouper(max_open_spans, spill_dir=spill_dir, max_open_bytes=max_open_bytes) as grouper:
        # Reading and grouping run no caller code, so the GC stays paused for the whole
        # pass: with every record held until the end of the file, its generational passes
        # over them cost ~15% of the read (and raise the page-fault count).
        with gc_paused():
            for batch in _span_batches(path, chunk_size, DEFAULT_MAX_LINE, DEFAULT_MAX_VALUE):
                grouper.add_all(batch)
        yield from grouper.traces()
