"""What a :class:`~tg_bridge.traces.follow.TraceFollower` counts and remembers, and its checkpoint file.

The checkpoint is JSON, written atomically (temporary file, fsync, ``os.replace``, fsync of the
directory where possible): version 1, the source, the line tick, per file a :class:`FileState`
(by ``"device:inode"``), the open traces with their spans, and the ids of recently handed-out
traces. ``format``, ``mark`` and ``halted`` of a file entry came with protobuf following and
are optional when read, so that checkpoints written before still load (the version number
stays 1: an older follower ignores them and reads such files as before). Reading validates
every field (the file may be edited or damaged): anything else is a TraceFormatError naming
the file. Blocking file I/O; no state kept here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections import OrderedDict
from typing import Any, get_args

from ..exceptions import TraceFormatError
from ..spans import SpanRecord, spans_from_json_bytes, spans_to_json_bytes
from .follow_frames import FollowFormat

__all__ = ["MARK_BYTES", "FileState", "FollowStats", "OpenTrace", "read_checkpoint", "write_checkpoint"]

VERSION = 1
MARK_BYTES = 16  # bytes before the offset remembered to recognise the file at the next poll


@dataclasses.dataclass
class FollowStats:
    """Counters of one follower (since it was created, not saved in the checkpoint)."""

    polls: int = 0
    lines: int = 0  # non-blank complete lines and non-empty frames consumed
    spans: int = 0
    traces: int = 0  # handed out
    bad_lines: int = 0  # lines not OTLP JSON, frames with a span that is no record: skipped
    long_lines: int = 0  # longer than max_line_bytes: skipped
    late_spans: int = 0  # for a trace already handed out: dropped
    forced: int = 0  # traces handed out early to bound memory
    rewound: int = 0  # files read again from 0 (truncated or replaced)
    unframed: int = 0  # protobuf files with an absurd frame length or an unparsable frame: left
    no_proto: int = 0  # protobuf files seen without opentelemetry-proto installed: left unread

    def skipped(self) -> str:
        """What was skipped, in words (the end of the CLIs' summary line)."""
        text = (f"skipped {self.bad_lines} bad line(s), {self.long_lines} over-long line(s),"
                f" {self.late_spans} late span(s)")  # fmt: skip
        if self.unframed:
            text += f", {self.unframed} protobuf file(s) from a bad frame on"
        if self.no_proto:
            text += f", {self.no_proto} protobuf file(s) unread (pip install opentelemetry-proto)"
        return text


@dataclasses.dataclass
class FileState:
    """One followed file: where it was read up to and how to recognise it."""

    name: str
    offset: int = 0
    line: int = 0  # complete lines (or frames) consumed (for messages)
    head: str = ""  # sha256 hex of the first head_len bytes
    head_len: int = 0
    skipping: bool = False  # inside a line longer than max_line_bytes
    format: FollowFormat = ""  # decided from the first byte
    mark: str = ""  # hex of the (up to MARK_BYTES) bytes just before offset; "" in old checkpoints
    halted: bool = False  # a bad frame at offset: not read further


@dataclasses.dataclass
class OpenTrace:
    """A trace not yet handed out: its spans in arrival order and what completes it."""

    spans: list[SpanRecord]
    last_tick: int
    rooted: bool
    idle_polls: int = 0


def write_checkpoint(path: str, source: str, tick: int, files: dict[str, FileState],
                     opened: OrderedDict[str, OpenTrace], recent: OrderedDict[str, None]) -> None:  # fmt: skip
    """Save the follower's state to ``path`` atomically (through ``path + ".tmp"``)."""
    state = {
        "version": VERSION,
        "source": source,
        "tick": tick,
        "files": {key: dataclasses.asdict(f) for key, f in files.items()},
        "open": [{"trace_id": tid, "last_tick": t.last_tick, "rooted": t.rooted, "idle_polls": t.idle_polls,
                  "spans": json.loads(spans_to_json_bytes(t.spans))} for tid, t in opened.items()],
        "recent": list(recent),
    }  # fmt: skip
    tmp = path + ".tmp"
    # open traces may hold a lone surrogate: kept as is (json.loads of bytes reads it back)
    data = json.dumps(state, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    with contextlib.suppress(OSError):  # make the rename itself durable where possible
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read_checkpoint(path: str) -> tuple[dict[str, FileState], OrderedDict[str, OpenTrace], OrderedDict[str, None], int]:
    """``(files, open traces, recent trace ids, tick)`` from a checkpoint file;
    TraceFormatError naming it when it is unreadable, of another version or damaged."""
    try:
        with open(path, "rb") as handle:
            state = json.loads(handle.read())
        if not isinstance(state, dict) or state.get("version") != VERSION:
            raise ValueError(f"not a version {VERSION} follow checkpoint")
        files = {str(k): FileState(**_file_fields(v)) for k, v in dict(state["files"]).items()}
        opened: OrderedDict[str, OpenTrace] = OrderedDict()
        for entry in list(state["open"]):
            spans = spans_from_json_bytes(json.dumps(entry["spans"]).encode("utf-8"))
            if not spans or any(not isinstance(s.trace_id, str) for s in spans):
                raise ValueError("an open trace without valid spans")
            opened[str(entry["trace_id"])] = OpenTrace(spans, int(entry["last_tick"]), bool(entry["rooted"]),
                                                       int(entry.get("idle_polls", 0)))  # fmt: skip
        recent = OrderedDict((str(t), None) for t in list(state.get("recent", [])))
        tick = int(state["tick"])
    except (OSError, ValueError, TypeError, KeyError, RecursionError) as exc:
        raise TraceFormatError(f"unreadable follow checkpoint ({exc}); delete it to start over",
                               path=path) from None  # fmt: skip
    return files, opened, recent, tick


def _file_fields(raw: Any) -> dict[str, Any]:
    """A checkpoint's file entry, type-checked (the file may have been edited or damaged).
    ``format``, ``mark`` and ``halted`` came with protobuf following: a checkpoint written
    before has none of them, and then the format is decided again from the file's first byte."""
    if not isinstance(raw, dict):
        raise ValueError("a file entry is not an object")
    fields: dict[str, type] = {"name": str, "offset": int, "line": int, "head": str, "head_len": int,
                               "skipping": bool}  # fmt: skip
    optional: dict[str, type] = {"format": str, "mark": str, "halted": bool}
    out: dict[str, Any] = {}
    for name, kind in (*fields.items(), *optional.items()):
        if name in optional and name not in raw:
            continue
        value: Any = raw.get(name)
        valid = isinstance(value, kind)
        if kind is int:  # offsets and counts: never a bool, never negative
            valid = valid and not isinstance(value, bool) and int(value) >= 0
        elif name == "format":
            valid = value in get_args(FollowFormat)
        elif name == "mark":
            valid = valid and len(value) <= 2 * MARK_BYTES and all(c in "0123456789abcdef" for c in value)
            valid = valid and len(value) % 2 == 0 and len(value) // 2 <= int(raw.get("offset") or 0)
        if not valid:
            raise ValueError(f"file entry field {name!r} is not a valid {kind.__name__}")
        out[name] = value
    return out
