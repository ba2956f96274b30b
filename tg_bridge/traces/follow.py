"""Following the OTel Collector file exporter's rotating files (JSON lines or protobuf) from a checkpoint.

:class:`TraceFollower` reads, at each :meth:`~TraceFollower.poll`, only what was appended to
the files of a directory or glob since the last poll, and returns the traces that became
complete. :func:`follow_traces` loops over polls (bounded by ``max_polls`` or a stop event)
and saves the checkpoint after the caller has taken every trace of a poll.
:meth:`~TraceFollower.iter_poll` hands out each trace as soon as the line completing it was
read (a backlog read in one poll is never held whole); :func:`follow_polls` leaves the commit
to callers that batch traces across polls.

What it remembers per file (the checkpoint, JSON, written atomically: temporary file, fsync,
``os.replace``): the file's identity — device and inode, plus a SHA-256 of its first bytes —
its current name, its format, the byte offset just past the last complete line or frame
consumed and the bytes just before that offset (the mark: a new file on a reused inode differs
in its first bytes, or at the mark, or has no line end at that offset). Hence:

- **Rotation** (the file exporter renames ``traces.json`` to a timestamped backup and opens
  a new ``traces.json``): the inode moves with the data, so the backup is finished from the
  saved offset and the new file is read from 0. Deleted backups are forgotten.
- **Truncation or a reused inode** (copy-truncate rotation, a new file on a freed inode): the
  file is shorter than the offset, or its first bytes differ, so it is read from 0.
- **A write in progress**: a last line without its newline, or a last frame shorter than
  its length says, is not consumed; it is read once complete. A line longer than
  ``max_line_bytes`` is skipped (counted in ``stats``), never held whole. A line that is not
  OTLP JSON is skipped with a warning naming file and line (hostile or damaged input must not
  stop ingestion forever).

When a trace is complete — lines, not clocks, so that tests need no waiting:

- a trace whose root span (no parent id) has arrived is complete once ``quiet_lines`` further
  lines (of any file) brought none of its spans, or at an idle poll (one that found no new
  line: the writer is quiet, nothing more is in flight);
- a trace without a root (its root was sampled out or lives in another service) is handed
  out after ``orphan_lines`` lines or ``orphan_polls`` idle polls without a span of it;
- past ``max_open_spans`` held spans, the least recently extended traces are handed out early
  (``stats.forced``) to bound memory.

With the collector's tail sampling in front (see docs/collector.md), a trace is written in
one batch once decided, so ``quiet_lines`` is rarely the deciding rule. A span arriving for
a trace already handed out (later than the rules allowed) is dropped and counted
(``stats.late_spans``), so a trace is never yielded twice by one follower. The spans of
traces not yet complete are saved in the checkpoint, so a restart loses none; traces handed
out in a poll whose checkpoint was not saved come again after a restart (at-least-once).

**Formats**, decided per file from its first byte (:func:`.follow_frames.file_format`): the file
exporter's ``format: json`` (one request per line) and ``format: proto`` (each request after
its length as a big-endian uint32; needs ``opentelemetry-proto``). A frame counts as a line for
the completion rules below. A frame longer than ``max_frame_bytes`` or that does not parse
means the file is not (or no longer) a frame stream: it is counted (``stats.unframed``) and the
file is not read further (a rewrite from 0, a rotation, a new file are read as usual). Without
``opentelemetry-proto`` a protobuf file is counted once (``stats.no_proto``) and left unread, so
that a restart with the package installed reads it. A frame whose spans cannot be records (a
span without ids) is skipped whole like a bad line (``stats.bad_lines``).

Compressed files are not read. Blocking file I/O; not thread-safe (one follower per checkpoint).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterator
from typing import Any

from ..exceptions import TraceFormatError
from ..spans import SpanRecord
from . import fastjson
from .follow_frames import DEFAULT_MAX_FRAME, file_format, iter_frames
from .follow_state import MARK_BYTES, FileState, FollowStats, OpenTrace, read_checkpoint, write_checkpoint
from .otlp_json import _located, fill_located
from .otlp_proto import decode_request, has_protobuf, spans_from_message
from .stream import DEFAULT_MAX_LINE, gc_paused

__all__ = ["FollowStats", "TraceFollower", "follow_polls", "follow_traces"]

logger = logging.getLogger(__name__)

# How much of a file's start identifies it (with its inode): enough to reach the first span's
# random trace id, since files of one service share their resource attributes at the start.
_HEAD_BYTES = 4096
_BLOCK = 1 << 20
_RECENT = 50_000  # trace ids remembered as handed out (to drop late spans)
_BOM = b"\xef\xbb\xbf"


class TraceFollower:
    """Incremental reader of the OTLP files (JSON lines or protobuf frames) matching ``source``
    (see the module).

    ``source`` is a directory (its non-hidden regular files) or a glob pattern. ``checkpoint``
    (a file path, or None for none) is loaded now when it exists; a damaged one is a
    TraceFormatError naming it.
    """

    def __init__(
        self,
        source: str | os.PathLike[str],
        checkpoint: str | os.PathLike[str] | None = None,
        *,
        quiet_lines: int = 16,
        orphan_lines: int = 1024,
        orphan_polls: int = 5,
        max_open_spans: int = 200_000,
        max_line_bytes: int = DEFAULT_MAX_LINE,
        max_frame_bytes: int = DEFAULT_MAX_FRAME,
    ) -> None:
        self.source = os.fspath(source)
        self.checkpoint = None if checkpoint is None else os.fspath(checkpoint)
        self.quiet_lines = max(1, quiet_lines)
        self.orphan_lines = max(self.quiet_lines, orphan_lines)
        self.orphan_polls = max(1, orphan_polls)
        self.max_open_spans = max(1, max_open_spans)
        self.max_line_bytes = max_line_bytes
        self.max_frame_bytes = max_frame_bytes
        self.stats = FollowStats()
        self._files: dict[str, FileState] = {}
        self._open: OrderedDict[str, OpenTrace] = OrderedDict()  # least recently extended first
        self._open_spans = 0
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._tick = 0
        self._done: deque[list[SpanRecord]] = deque()
        self._no_proto: set[str] = set()  # files counted in stats.no_proto (once each)
        if self.checkpoint is not None and os.path.exists(self.checkpoint):
            self._load(self.checkpoint)

    # -- reading -----------------------------------------------------------------------------
    def poll(self) -> list[list[SpanRecord]]:
        """Read every complete line or frame appended since the last poll; return the traces that
        became complete (each a span list in arrival order), oldest first."""
        return list(self.iter_poll())

    def iter_poll(self) -> Iterator[list[SpanRecord]]:
        """:meth:`poll`, yielding each trace as soon as the line completing it was read, so
        that memory holds the open traces and not every trace of a large poll (a backlog
        read at start). Exhaust it before :meth:`commit`: the checkpoint of a poll consumed
        halfway would skip the traces not yet yielded."""
        self.stats.polls += 1
        lines_before = self.stats.lines
        seen: set[str] = set()
        for path, st in self._candidates():
            key = f"{st.st_dev}:{st.st_ino}"
            seen.add(key)
            state = self._files.get(key)
            if state is None or not self._same_file(path, st, state):
                if state is not None:
                    self.stats.rewound += 1
                state = self._files[key] = FileState(name=path)
            state.name = path
            if st.st_size > state.offset and not state.halted:
                yield from self._read_new(path, state, st.st_size, key)
        for key in [k for k in self._files if k not in seen]:
            del self._files[key]  # a deleted backup
        if self.stats.lines == lines_before:
            self._idle()
        yield from self._take()

    def _take(self) -> Iterator[list[SpanRecord]]:
        """Hand the traces completed so far to the caller, one at a time."""
        while self._done:
            self.stats.traces += 1
            yield self._done.popleft()

    def _candidates(self) -> list[tuple[str, os.stat_result]]:
        """The files to follow, oldest first (a rotated backup before the file that replaced it)."""
        if os.path.isdir(self.source):
            names = [os.path.join(self.source, n) for n in os.listdir(self.source) if not n.startswith(".")]
        else:
            names = glob.glob(self.source)
        found = []
        skip = {os.path.abspath(p) for p in (self.checkpoint, self._tmp_path()) if p}
        for name in names:
            if os.path.abspath(name) in skip:
                continue
            try:
                st = os.stat(name)
            except OSError:  # rotated away or deleted between listing and stat
                continue
            if os.path.isfile(name):
                found.append((name, st))
        found.sort(key=lambda item: (item[1].st_mtime_ns, item[0]))
        return found

    def _same_file(self, path: str, st: os.stat_result, state: FileState) -> bool:
        """Whether the file at ``path`` (same device and inode as ``state``) is still the one
        ``state`` describes: long enough, same first bytes, the same bytes before the offset,
        and for JSON a line end there (an inode reused by a new file fails one of these)."""
        if st.st_size < state.offset:
            return False
        if not state.head_len:
            return True
        try:
            with open(path, "rb") as handle:
                head = handle.read(state.head_len)
                if state.mark:
                    handle.seek(state.offset - len(state.mark) // 2)
                    if handle.read(len(state.mark) // 2).hex() != state.mark:
                        return False
                if state.offset and not state.skipping and state.format != "proto":
                    handle.seek(state.offset - 1)
                    if handle.read(1) != b"\n":
                        return False
        except OSError:
            return True  # unreadable now: decided at the next poll
        return hashlib.sha256(head).hexdigest() == state.head

    def _read_new(self, path: str, state: FileState, size: int, key: str) -> Iterator[list[SpanRecord]]:
        """Consume the complete lines or frames between ``state.offset`` and ``size`` (the size
        seen at this poll: what is appended meanwhile waits for the next poll, so a poll is
        bounded)."""
        try:
            handle = open(path, "rb")
        except OSError as exc:
            logger.warning("cannot read %s: %s", path, exc)
            return
        with handle:
            if state.head_len < _HEAD_BYTES or not state.format:  # no format: an empty file, an old checkpoint
                head = handle.read(_HEAD_BYTES)
                if state.head_len < _HEAD_BYTES:
                    state.head, state.head_len = hashlib.sha256(head).hexdigest(), len(head)
                state.format = state.format or file_format(head)
            try:
                if state.format == "proto":
                    yield from self._read_frames(handle, path, state, size, key)
                else:
                    yield from self._read_lines(handle, path, state, size)
            finally:  # also when the caller drops the poll halfway: the mark follows the offset
                start = max(0, state.offset - MARK_BYTES)
                with contextlib.suppress(OSError):  # unreadable now: no mark, the other checks stay
                    state.mark = ""
                    handle.seek(start)
                    state.mark = handle.read(state.offset - start).hex()

    def _read_frames(self, handle: Any, path: str, state: FileState, size: int, key: str) -> Iterator[list[SpanRecord]]:
        """The protobuf frames of ``_read_new``: only whole frames; a bad one halts the file."""
        if not has_protobuf():
            if key not in self._no_proto:
                self._no_proto.add(key)
                self.stats.no_proto += 1
                logger.warning("%s is OTLP protobuf: reading it needs `pip install opentelemetry-proto`", path)
            return
        for offset, message in iter_frames(handle, state.offset, size, self.max_frame_bytes):
            if message is None or not self._frame(message, path, state.line + 1, offset):
                state.halted = True
                self.stats.unframed += 1
                if message is None:
                    logger.warning("%s: the frame at byte %d declares more than %d bytes: not a protobuf "
                                   "frame stream from there, file left", path, offset, self.max_frame_bytes)  # fmt: skip
                return
            state.line += 1
            state.offset = offset + 4 + len(message)
            yield from self._take()

    def _frame(self, data: bytes, path: str, number: int, offset: int) -> bool:
        """Take one frame's spans; False when it does not parse (the caller halts the file)."""
        if not data:
            return True  # an empty request: like a blank line
        where = f"frame {number} (byte {offset})"
        records: list[SpanRecord] = []
        with gc_paused():
            try:
                message = decode_request(data, path, where)
            except TraceFormatError as exc:
                logger.warning("%s; file left from there", exc)
                return False
            try:
                spans_from_message(message, records, path, where)
            except TraceFormatError as exc:
                self.stats.bad_lines += 1
                logger.warning("skipped a frame: %s", exc)
                records = []  # all or nothing per frame, as per line
        self._accept(records)
        return True

    def _read_lines(self, handle: Any, path: str, state: FileState, size: int) -> Iterator[list[SpanRecord]]:
        """The JSON lines of ``_read_new``: only lines that end before ``size``."""
        handle.seek(state.offset)
        pending = b""
        left = size - state.offset
        while left > 0 and (block := handle.read(min(_BLOCK, left))):
            left -= len(block)
            data = pending + block
            start = 0
            while (end := data.find(b"\n", start)) >= 0:
                line = data[start:end]
                start = end + 1
                state.line += 1
                if state.skipping:
                    state.skipping = False  # the end of an over-long line
                elif len(line) > self.max_line_bytes:
                    self._long_line(path, state.line)
                else:
                    # a UTF-8 BOM may open a JSON file (file_format accepts one)
                    bom = len(_BOM) if state.line == 1 and line.startswith(_BOM) else 0
                    self._line(line[bom:], path, state.line)
                state.offset += len(line) + 1
                yield from self._take()
            pending = data[start:]
            if len(pending) > self.max_line_bytes:
                # An unfinished line already too long: skip it (across polls) without holding it.
                if not state.skipping:
                    self._long_line(path, state.line + 1)
                state.skipping = True
                state.offset += len(pending)
                pending = b""
        # `pending` (an unfinished last line) stays unread: offset is at its start.

    def _long_line(self, path: str, number: int) -> None:
        self.stats.long_lines += 1
        logger.warning("%s: line %d is longer than %d bytes: skipped", path, number, self.max_line_bytes)

    def _line(self, raw: bytes, path: str, number: int) -> None:
        if not raw.strip():
            return
        where = f"line {number}"
        records: list[SpanRecord] = []
        with gc_paused():
            try:
                fill_located(fastjson.loads(raw, _located(path, where)), records, path, where)
            except TraceFormatError as exc:
                self.stats.bad_lines += 1
                logger.warning("skipped a line that is not OTLP JSON: %s", exc)
                records = []  # all or nothing per line: a partial batch would split traces
        self._accept(records)

    def _accept(self, records: list[SpanRecord]) -> None:
        """One line's or frame's records (none when it was skipped): counted, one tick, added
        to their traces, and the traces it completes handed out."""
        self.stats.lines += 1
        self._tick += 1
        for span in records:
            self._add(span)
        self._complete()

    def _add(self, span: SpanRecord) -> None:
        self.stats.spans += 1
        if span.trace_id in self._recent:
            self.stats.late_spans += 1
            return
        trace = self._open.get(span.trace_id)
        if trace is None:
            trace = self._open[span.trace_id] = OpenTrace([], self._tick, False)
        else:
            self._open.move_to_end(span.trace_id)
        trace.spans.append(span)
        trace.last_tick = self._tick
        trace.idle_polls = 0
        trace.rooted = trace.rooted or span.parent_id is None
        self._open_spans += 1
        while self._open_spans > self.max_open_spans and self._open:
            trace_id = next(iter(self._open))
            self.stats.forced += 1
            self._hand_out(trace_id)

    def _complete(self) -> None:
        """Hand out the traces the line rules complete (the stalest are at the front)."""
        ready = []
        for trace_id, trace in self._open.items():
            age = self._tick - trace.last_tick
            if age < self.quiet_lines:
                break  # later ones were extended more recently still
            if trace.rooted or age >= self.orphan_lines:
                ready.append(trace_id)
        for trace_id in ready:
            self._hand_out(trace_id)

    def _idle(self) -> None:
        """A poll that found nothing new: rooted traces are complete, orphans age."""
        for trace_id, trace in list(self._open.items()):
            trace.idle_polls += 1
            if trace.rooted or trace.idle_polls >= self.orphan_polls:
                self._hand_out(trace_id)

    def _hand_out(self, trace_id: str) -> None:
        trace = self._open.pop(trace_id)
        self._open_spans -= len(trace.spans)
        self._done.append(trace.spans)
        self._recent[trace_id] = None
        if len(self._recent) > _RECENT:
            self._recent.popitem(last=False)

    # -- the checkpoint ------------------------------------------------------------------------
    def commit(self) -> None:
        """Save the checkpoint atomically (no-op without one). Call it once the traces of the
        last poll are processed: a crash before it means they are read again."""
        if self.checkpoint is not None:
            write_checkpoint(self.checkpoint, self.source, self._tick, self._files, self._open, self._recent)

    def _tmp_path(self) -> str | None:
        return None if self.checkpoint is None else self.checkpoint + ".tmp"

    def _load(self, path: str) -> None:
        self._files, self._open, self._recent, self._tick = read_checkpoint(path)
        self._open_spans = sum(len(t.spans) for t in self._open.values())


def follow_polls(
    follower: TraceFollower,
    *,
    max_polls: int | None = None,
    interval: float = 1.0,
    stop: threading.Event | None = None,
) -> Iterator[Iterator[list[SpanRecord]]]:
    """Yield one iterator per poll of ``follower`` (:meth:`TraceFollower.iter_poll`: its
    traces as they complete); the caller decides when to :meth:`~TraceFollower.commit`.

    Polls until ``max_polls`` polls were made or ``stop`` is set (checked before each poll);
    after a poll that completed no trace it waits ``interval`` seconds (on ``stop``, so
    setting it ends the wait). For callers that hold traces across polls (batching) and may
    save the checkpoint only once those are processed; :func:`follow_traces` commits after
    every poll.
    """
    polls = 0
    while max_polls is None or polls < max_polls:
        if stop is not None and stop.is_set():
            return
        before = follower.stats.traces
        polls += 1
        yield follower.iter_poll()
        if follower.stats.traces == before and (max_polls is None or polls < max_polls) and interval > 0:
            if stop is not None:
                stop.wait(interval)
            else:
                time.sleep(interval)


def follow_traces(
    source: str | os.PathLike[str],
    checkpoint: str | os.PathLike[str] | None = None,
    *,
    max_polls: int | None = None,
    interval: float = 1.0,
    stop: threading.Event | None = None,
    follower: TraceFollower | None = None,
    **options: Any,
) -> Iterator[list[SpanRecord]]:
    """Yield complete traces of the files matching ``source`` as they are written.

    Polls until ``max_polls`` polls were made or ``stop`` is set; after a poll that found
    no complete trace it waits ``interval`` seconds (on ``stop``, so setting it ends the wait).
    The checkpoint is saved after every trace of a poll was taken by the caller. ``options``
    go to :class:`TraceFollower` (or pass a ready ``follower`` to read its ``stats``).
    """
    follower = follower or TraceFollower(source, checkpoint, **options)
    for traces in follow_polls(follower, max_polls=max_polls, interval=interval, stop=stop):
        yield from traces
        follower.commit()  # every trace of the poll was taken
