"""What a followed file holds, and the whole protobuf frames appended to it.

The OTel Collector's file exporter writes ``format: json`` as one ``ExportTraceServiceRequest``
per line, and ``format: proto`` as a stream of frames: the serialized request's length as an
unsigned 32-bit big-endian integer, then the request (exporter/fileexporter/file_writer.go,
``exportMessageAsBuffer``). :func:`file_format` tells them apart from a file's first byte;
:func:`iter_frames` walks the whole frames of a byte range. Pure reading: no parsing of the
messages (that is :func:`.otlp_proto.decode_request`), no state kept between calls.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import IO, Literal

__all__ = ["DEFAULT_MAX_FRAME", "FollowFormat", "file_format", "iter_frames"]

#: ``""`` until a file has its first byte; then JSON lines or length-framed protobuf.
FollowFormat = Literal["", "jsonl", "proto"]

#: Frames declaring a longer message are absurd: the file is not (or no longer) a frame
#: stream. The same bound as a message of a whole protobuf file (otlp_scan.DEFAULT_MAX_VALUE);
#: far above what a collector batch writes, and below 0x09000000 (151 MB), the smallest
#: length whose first byte could start JSON text, so :func:`file_format` is never ambiguous.
DEFAULT_MAX_FRAME = 64 << 20

# What JSON text can start with, and the first byte of a UTF-8 BOM (EF BB BF).
_JSON_FIRST = frozenset(b"{[ \t\r\n\xef")
_HEADER = struct.Struct(">I")
_BLOCK = 1 << 20


def file_format(head: bytes) -> FollowFormat:
    """The format of a followed file from its first bytes: ``{``, ``[``, ASCII whitespace or a
    UTF-8 BOM mean JSON lines; any other first byte means length-framed protobuf (a frame
    starts with its length's high byte, 0 for any message under 16 MiB); nothing yet: ``""``."""
    if not head:
        return ""
    return "jsonl" if head[0] in _JSON_FIRST else "proto"


def iter_frames(handle: IO[bytes], offset: int, size: int, max_frame: int) -> Iterator[tuple[int, bytes | None]]:
    """``(offset of the frame, its message)`` for each whole frame of ``handle`` from ``offset``
    (a frame's start) up to ``size``, in order.

    Stops before a partial frame (a write in progress: read once complete, as a last line
    without its newline). A frame declaring more than ``max_frame`` bytes is yielded as
    ``(offset, None)`` and ends the walk; its message is never read. Memory: one block, or
    one message when it is longer. The caller consumes a frame by moving its own offset
    to ``offset + 4 + len(message)``.
    """
    handle.seek(offset)
    buf = b""  # file bytes from `base`; `pos` is the next frame's start in it
    base = offset
    pos = 0
    unpack = _HEADER.unpack_from
    while True:
        if len(buf) - pos < 4:
            want = min(_BLOCK, size - base - len(buf))
            buf = buf[pos:] + (handle.read(want) if want > 0 else b"")
            base += pos
            pos = 0
            if len(buf) < 4:
                return
        (length,) = unpack(buf, pos)
        if length > max_frame:
            yield base + pos, None
            return
        end = pos + 4 + length
        if base + end > size:
            return  # partial: the rest is not written yet (or not at this poll's size)
        if end > len(buf):  # a message longer than what the block holds: read just its rest
            rest = handle.read(end - len(buf))
            if len(rest) < end - len(buf):
                return  # the file shrank since it was measured: decided at the next poll
            buf = buf[pos:] + rest
            base += pos
            end -= pos
            pos = 0
        yield base + pos, buf[pos + 4 : end]
        pos = end
