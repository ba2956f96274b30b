"""Incremental reading of OTLP JSON documents of any size, one span object at a time.

:func:`scan_spans` reads a file in chunks and walks only the OTLP skeleton
(``resourceSpans[].scopeSpans[].spans[]``, plus lists of requests and flattened span dicts)
with a small byte-level scanner that tracks strings, escapes and nesting depth. Each span
object is cut out of the buffer and parsed alone (orjson when installed), then converted by
the same per-span code as the whole-file reader (:mod:`.otlp_json`), with the enclosing
``resource`` attributes. The file is never held: memory is bounded by the chunk size plus
the largest single JSON value the skeleton hands to the parser (a span, a resource), capped
at ``max_value_bytes``.

Finding a value's end: a pre-compiled regular expression matches a whole balanced value of
up to :data:`FAST_DEPTH` levels in C (strings with escapes skipped whole); a value that is
deeper, malformed or cut by the end of the buffer falls back to a resumable Python scan that
reads more chunks as needed. The regex ignores bracket kinds; the parser checks them.

A file may hold several top-level values one after another (JSON lines whose lines are too
long to read whole are handed here). Errors are :class:`TraceFormatError` naming the file and
``byte N`` (the offset of the value or token at fault): unbalanced brackets, truncation, a
value larger than ``max_value_bytes`` (a 1 GB string), nesting deeper than ``max_depth``,
non-UTF-8 text. Blocking file I/O; the handle must be seekable (a ``resource`` written after
its ``scopeSpans`` is found by skipping ahead and coming back).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any

from ..exceptions import TraceFormatError
from ..spans import SpanRecord
from . import fastjson, otlp_json
from .checks import too_deep
from .otlp_json import _attributes, _reason, _span, records_from_object

__all__ = ["DEFAULT_CHUNK", "DEFAULT_MAX_DEPTH", "DEFAULT_MAX_VALUE", "FAST_DEPTH", "scan_spans"]

DEFAULT_CHUNK = 1 << 20
#: Largest single span (or resource) object accepted: bounds memory against hostile files.
DEFAULT_MAX_VALUE = 64 << 20
#: OTLP spans nest about 8 levels (span > attributes > entry > value > array > values > ...).
DEFAULT_MAX_DEPTH = 128
FAST_DEPTH = 12

_PLAIN = rb'[^"{}\[\]]*'
_STRING = rb'"[^"\\]*(?:\\[\s\S][^"\\]*)*"'


def _balanced(depth: int) -> bytes:
    """A balanced container of at most ``depth`` + 1 levels. Unambiguous (each alternative
    starts with a different byte), so a failed match backtracks linearly."""
    inner = _STRING if depth == 0 else b"(?:" + _STRING + b"|" + _balanced(depth - 1) + b")"
    return rb"[{\[]" + _PLAIN + b"(?:" + inner + _PLAIN + rb")*[}\]]"


_FAST_VALUE = re.compile(_balanced(FAST_DEPTH))
_SIBLINGS = 64  # spans parsed per guess, at most (bounded by the buffer anyway)
_STRUCTURE = re.compile(rb'["{}\[\]]')
_SCALAR = re.compile(rb"[-+0-9A-Za-z.]+")
_WS = b" \t\r\n"
_SCOPE_KEYS = ("scopeSpans", "scope_spans", "instrumentationLibrarySpans")
_REQUEST_KEYS = ("resourceSpans", "resource_spans")
_OPEN, _CLOSE_OBJ, _CLOSE_ARR, _QUOTE, _COMMA, _COLON, _BACKSLASH = b"{}]\",:\\"


class _Reader:
    """A byte buffer over a file: ``data[pos:]`` is unread; ``base`` is data[0]'s offset."""

    def __init__(self, handle: IO[bytes], name: str, chunk: int, max_value: int, max_depth: int,
                 start: int, line: int) -> None:  # fmt: skip
        self.handle, self.name = handle, name
        self.chunk, self.max_value, self.max_depth = max(1, chunk), max_value, max_depth
        self.data = bytearray()
        self.base = self.pos = 0
        self.eof = False
        self.lines = 0  # newlines before data[0], for error messages
        self.seek(start, line)

    # -- buffer -----------------------------------------------------------------------
    def seek(self, offset: int, line: int) -> None:
        """Continue reading at byte ``offset``, which is on 1-based line ``line``."""
        self.handle.seek(offset)
        self.data = bytearray()
        self.base, self.pos, self.eof, self.lines = offset, 0, False, line - 1

    def mark(self) -> tuple[int, int]:
        """(offset, line) of ``pos``, for :meth:`seek`."""
        return self.base + self.pos, self.line(self.pos)

    def error_at(self, offset: int) -> Callable[[str], TraceFormatError]:
        """An error factory for the value at file ``offset`` (its line counted only if used)."""
        return lambda message: TraceFormatError(message, path=self.name, where=self.where(offset))

    def line(self, index: int) -> int:
        return self.lines + self.data.count(b"\n", 0, index) + 1

    def where(self, offset: int) -> str:
        """``line L, byte N`` for a file offset still in the buffer, else ``byte N``."""
        index = offset - self.base
        if 0 <= index <= len(self.data):
            return f"line {self.line(index)}, byte {offset}"
        return f"byte {offset}"

    def fill(self) -> bool:
        """Read one more chunk (dropping what was consumed); False at end of file."""
        if self.eof:
            return False
        if self.pos and self.pos >= len(self.data) - self.pos:
            self.lines += self.data.count(b"\n", 0, self.pos)
            del self.data[: self.pos]  # consumed more than half: compact
            self.base += self.pos
            self.pos = 0
        if len(self.data) - self.pos > self.max_value:
            raise self.error(f"a JSON value larger than {self.max_value} bytes (the limit)")
        more = self.handle.read(self.chunk)
        if not more:
            self.eof = True
            return False
        self.data += more
        return True

    def error(self, message: str, index: int | None = None) -> TraceFormatError:
        index = self.pos if index is None else index
        return TraceFormatError(message, path=self.name, where=self.where(self.base + index))

    def truncated(self) -> TraceFormatError:
        return self.error("truncated JSON: the file ends inside a value", len(self.data))

    def peek(self) -> int | None:
        """The next non-blank byte (not consumed), or None at end of file."""
        while True:
            data, i = self.data, self.pos
            n = len(data)
            while i < n and data[i] in _WS:
                i += 1
            self.pos = i
            if i < n:
                return data[i]
            if not self.fill():
                return None

    def expect(self, byte: int, what: str) -> None:
        found = self.peek()
        if found != byte:
            shown = "end of file" if found is None else repr(chr(found))
            raise self.error(f"malformed JSON: expected {what}, found {shown}")
        self.pos += 1

    # -- finding a value's end ----------------------------------------------------------
    def _string_end(self, i: int) -> int:
        """Index just past the string whose body starts at ``data[i]`` (reads more as needed)."""
        while True:
            k = self.data.find(b'"', i)
            if k < 0:
                rel = len(self.data) - self.pos
                if not self.fill():
                    raise self.truncated()
                i = self.pos + rel
                continue
            b = k - 1
            while self.data[b] == _BACKSLASH:
                b -= 1
            if (k - 1 - b) % 2 == 0:  # an even run of backslashes: the quote is not escaped
                return k + 1
            i = k + 1

    def _container_end(self) -> int:
        """Index past the container starting at ``pos``: fast regex, else a resumable scan."""
        found = _FAST_VALUE.match(self.data, self.pos)
        if found is not None:
            return found.end()
        depth, i = 0, self.pos
        while True:
            m = _STRUCTURE.search(self.data, i)
            if m is None:
                rel = len(self.data) - self.pos
                if not self.fill():
                    raise self.truncated()
                i = self.pos + rel
                continue
            j = m.start()
            c = self.data[j]
            if c == _QUOTE:
                i = self._string_end(j + 1)
                continue
            if c in b"{[":
                depth += 1
                if depth > self.max_depth:
                    raise self.error(f"JSON nested deeper than {self.max_depth} levels", j)
            else:
                depth -= 1
                if depth == 0:
                    return j + 1
            i = j + 1

    def value_bytes(self) -> tuple[bytes, int]:
        """Consume the next value; return its bytes and its file offset."""
        c = self.peek()
        if c is None:
            raise self.truncated()
        if c in b"{[":
            end = self._container_end()
        elif c == _QUOTE:
            end = self._string_end(self.pos + 1)
        else:
            while True:
                m = _SCALAR.match(self.data, self.pos)
                end = m.end() if m else self.pos
                if end < len(self.data) or not self.fill():
                    break
            if end == self.pos:
                raise self.error(f"malformed JSON: unexpected {chr(c)!r}")
        raw, offset = bytes(self.data[self.pos : end]), self.base + self.pos
        self.pos = end
        return raw, offset

    def value(self) -> tuple[Any, int]:
        """Consume and parse the next value; return it with its file offset."""
        raw, offset = self.value_bytes()
        return fastjson.loads(raw, lambda m: TraceFormatError(m, path=self.name, where=self.where(offset)),
                              offset=offset), offset  # fmt: skip (where: computed only on error)

    # -- skeleton ---------------------------------------------------------------------------
    def key(self) -> str:
        raw, offset = self.value_bytes()
        if not raw.startswith(b'"'):
            raise self.error("malformed JSON: expected an object key", offset - self.base)
        key = fastjson.loads(raw, lambda m: TraceFormatError(m, path=self.name,
                                                             where=self.where(offset)), offset=offset)
        self.expect(_COLON, "':'")
        return key

    def members(self) -> Iterator[str]:
        """After ``{``: yield each key with ``pos`` at its value; the caller consumes it."""
        self.expect(_OPEN, "'{'")
        if self.peek() == _CLOSE_OBJ:
            self.pos += 1
            return
        while True:
            if self.peek() != _QUOTE:
                raise self.error("malformed JSON: expected an object key")
            yield self.key()
            c = self.peek()
            if c == _COMMA:
                self.pos += 1
            elif c == _CLOSE_OBJ:
                self.pos += 1
                return
            else:
                raise self.truncated() if c is None else self.error(
                    f"malformed JSON: expected ',' or '}}', found {chr(c)!r}")

    def items(self) -> Iterator[int]:
        """After ``[``: yield each item index with ``pos`` at it; the caller consumes it."""
        self.expect(ord("["), "'['")
        if self.peek() == _CLOSE_ARR:
            self.pos += 1
            return
        index = 0
        while True:
            yield index
            index += 1
            c = self.peek()
            if c == _COMMA:
                self.pos += 1
            elif c == _CLOSE_ARR:
                self.pos += 1
                return
            else:
                raise self.truncated() if c is None else self.error(
                    f"malformed JSON: expected ',' or ']', found {chr(c)!r}")


class _Walker:
    """Walks the OTLP skeleton of one file and yields span records."""

    def __init__(self, reader: _Reader) -> None:
        self.r = reader
        self.guess = _SiblingGuess()

    def located(self, exc: TraceFormatError) -> TraceFormatError:
        return TraceFormatError(_reason(exc), path=self.r.name, where=exc.where)

    def top(self) -> Iterator[SpanRecord]:
        while (c := self.r.peek()) is not None:
            yield from self.item(c, 0)

    def item(self, c: int, depth: int) -> Iterator[SpanRecord]:
        """A request, a flattened span or a list of them (as ``records_from_object``)."""
        if depth > self.r.max_depth:
            raise self.r.error(f"JSON nested deeper than {self.r.max_depth} levels")
        if c == _OPEN:
            yield from self.request_or_span()
        elif c == ord("["):
            for _ in self.r.items():
                yield from self.item(self.r.peek() or 0, depth + 1)
        else:
            value, offset = self.r.value()
            raise TraceFormatError(f"expected a JSON object or list, got {type(value).__name__}",
                                   path=self.r.name, where=self.r.where(offset))  # fmt: skip

    def request_or_span(self) -> Iterator[SpanRecord]:
        start = self.r.base + self.r.pos
        fields: dict[str, Any] = {}
        kept = 0
        is_request = False
        for key in self.r.members():
            if key in _REQUEST_KEYS and not is_request:
                is_request = True
                fields.clear()
                yield from self.resource_spans()
            elif is_request:
                self.r.value_bytes()  # another member of a request: not needed
            else:  # maybe a flattened span: keep its members (bounded like one value)
                raw, offset = self.r.value_bytes()
                kept += len(raw)
                if kept > self.r.max_value:
                    raise self.r.error(f"an object larger than {self.r.max_value} bytes",
                                       start - self.r.base)  # fmt: skip
                fields[key] = fastjson.loads(raw, self.r.error_at(offset), offset=offset)
        if not is_request:
            try:
                yield from records_from_object(fields, self.r.where(start))
            except TraceFormatError as exc:
                raise self.located(exc) from None
            except RecursionError:
                raise self.r.error(too_deep(), start - self.r.base) from None

    def resource_spans(self) -> Iterator[SpanRecord]:
        if self.r.peek() != ord("["):
            raise self.r.error("resourceSpans is not a list")
        for _ in self.r.items():
            if self.r.peek() != _OPEN:
                raise self.r.error("resourceSpans entry is not an object")
            yield from self.resource_entry()

    def resource_entry(self) -> Iterator[SpanRecord]:
        resource: dict[str, Any] | None = None
        scopes_done = False
        for key in self.r.members():
            if key == "resource":
                res, _ = self.r.value()
                if resource is None:
                    resource = _resource(res)
            elif key in _SCOPE_KEYS and not scopes_done:
                scopes_done = True  # the whole-file reader reads one scope list per entry
                if resource is None:
                    resource = self.resource_after_scopes()
                yield from self.scopes(resource, parse=True)
            else:
                self.r.value_bytes()

    def resource_after_scopes(self) -> dict[str, Any]:
        """``scopeSpans`` came before ``resource``: skip ahead to find it, then come back."""
        back = self.r.mark()
        for _ in self.scopes({}, parse=False):
            pass
        resource: dict[str, Any] = {}
        while self.r.peek() == _COMMA:
            self.r.pos += 1
            if self.r.peek() != _QUOTE:
                break
            key = self.r.key()
            if key == "resource":
                resource = _resource(self.r.value()[0])
                break
            self.r.value_bytes()
        self.r.seek(*back)
        return resource

    def scopes(self, resource: dict[str, Any], *, parse: bool) -> Iterator[SpanRecord]:
        if self.r.peek() != ord("["):
            self.r.value_bytes()  # not a list: ignored, as by the whole-file reader
            return
        for _ in self.r.items():
            if self.r.peek() != _OPEN:
                self.r.value_bytes()
                continue
            for key in self.r.members():
                if key == "spans" and self.r.peek() == ord("["):
                    self.guess.new_list()
                    for _ in self.r.items():
                        if not parse:
                            self.r.value_bytes()
                            continue
                        batch = self.batch(resource)
                        if batch is not None:
                            yield from batch  # this span and the siblings after it
                        else:
                            yield self.span(resource)
                else:
                    self.r.value_bytes()

    def batch(self, resource: dict[str, Any]) -> list[SpanRecord] | None:
        """The records of the span at ``pos`` and of the siblings after it that the buffer
        holds, parsed in one go (see :meth:`_SiblingGuess.siblings`), with ``pos`` past the
        last; None (``pos`` unchanged) when the guess fails or a span is not plain: then
        :meth:`span` reads them one at a time, with exact error locations."""
        found = self.guess.siblings(self.r)
        if found is None:
            return None
        objs, start = found
        out: list[SpanRecord] = []
        fast = otlp_json._fast
        done = fast.convert_spans(objs, 0, resource, out) if fast is not None else 0
        try:
            for obj in objs[done:]:
                out.append(_span(obj, resource, ""))
        except (TraceFormatError, RecursionError):
            self.r.pos = start  # read them again one by one: the error names its byte
            self.guess.failed()
            return None
        self.guess.prev_end = self.r.base + self.r.pos
        return out

    def span(self, resource: dict[str, Any]) -> SpanRecord:
        found = self.guess.value(self.r)
        obj, offset = self.r.value() if found is None else found
        self.guess.learn(self.r, offset)
        try:
            fast = otlp_json._fast  # read at each call: tests switch the C code off
            if fast is not None:
                record = fast.convert_span(obj, resource)  # the canonical span, in C
                if record is not None:
                    return record  # type: ignore[no-any-return]
            return _span(obj, resource, f"byte {offset}")  # the line is counted only on error
        except TraceFormatError as exc:
            where = (exc.where or "").replace(f"byte {offset}", self.r.where(offset), 1)
            raise TraceFormatError(_reason(exc), path=self.r.name, where=where) from None
        except RecursionError:
            raise TraceFormatError(too_deep(), path=self.r.name, where=self.r.where(offset)) from None


class _SiblingGuess:
    """The fast path for long lists of similar objects (spans): guess where an object ends.

    Writers separate sibling spans the same way every time (``},{"traceId":`` compact, or
    the same newline and indentation). Once that separator has been seen between two spans,
    the next span's end is guessed as the next occurrence of it, found with ``bytes.find``,
    and confirmed by parsing exactly that slice: a JSON value is prefix-free, so a slice
    from the object's ``{`` that parses whole ends exactly where the object ends. A wrong or
    missing guess (a nested look-alike, the last span of a list, bad bytes) parses as an
    error and the caller falls back to the exact scanner, which also reports real errors.
    """

    def __init__(self) -> None:
        self.separator: bytes | None = None
        self.prev_end: int | None = None  # file offset just past the previous sibling
        self.window = 1 << 16
        self.skip = 0  # spans to read one at a time before the next batch guess
        self.backoff = 1

    def new_list(self) -> None:
        self.prev_end = None

    def value(self, r: _Reader) -> tuple[Any, int] | None:
        if self.separator is None or r.peek() != _OPEN:
            return None
        start = r.pos
        k = r.data.find(self.separator, start, start + self.window)
        if k < 0:
            return None
        try:
            obj = fastjson.loads_fast(bytes(r.data[start : k + 1]))
        except (ValueError, RecursionError):
            return None
        r.pos = k + 1
        return obj, r.base + start

    def siblings(self, r: _Reader) -> tuple[list[Any], int] | None:
        """Several siblings at once: from the object at ``pos`` to the last separator the
        buffer holds (at most :data:`_SIBLINGS` of them), parsed as one JSON list. As for one
        object, a parse that succeeds proves the cut: the list's items are complete values
        one after another, the last ending exactly at the cut, all in the list the first one
        is in (a cut in a nested list or past this list's end leaves a bracket unmatched).
        Returns (the parsed objects, their start in the buffer) with ``pos`` past the last,
        or None with ``pos`` unchanged."""
        if self.skip:
            self.skip -= 1
            return None
        if self.separator is None or r.peek() != _OPEN:
            return None
        data, start, sep = r.data, r.pos, self.separator
        end = -1
        k = data.find(sep, start, start + self.window)
        for _ in range(_SIBLINGS):
            if k < 0:
                break
            end = k
            k = data.find(sep, end + 1, end + 1 + self.window)
        if end < 0:
            return None
        wrapped = b"[" + data[start : end + 1] + b"]"
        try:
            objs = fastjson.loads_fast(wrapped)
            r.pos = end + 1
        except ValueError as exc:
            # The cut passed the end of this list (its "]" closed ours, more followed): the
            # siblings are what came before that "]", and pos stops at it.
            stop = getattr(exc, "pos", None)
            objs = None
            if type(stop) is int and 2 <= stop <= len(wrapped) and wrapped[stop - 1] == _CLOSE_ARR:
                with contextlib.suppress(ValueError, RecursionError):
                    objs = fastjson.loads_fast(wrapped[:stop])
            if type(objs) is not list or not objs or type(stop) is not int:
                self.failed()
                return None
            r.pos = start + stop - 2
        except RecursionError:
            self.failed()
            return None
        self.backoff = 1
        return objs, start

    def failed(self) -> None:
        """A batch guess failed (a look-alike separator nested in spans, e.g. span links, or a
        span that is not plain): make the next ones one at a time, for twice as many spans
        after each failure in a row, so a file where guesses fail costs at most ~2x parsing."""
        self.skip = self.backoff
        self.backoff = min(2 * self.backoff, 1024)

    def learn(self, r: _Reader, offset: int) -> None:
        """After a sibling at ``offset`` was consumed: learn the separator once."""
        end = r.base + r.pos
        self.window = max(1 << 16, 4 * (end - offset))
        if self.separator is None and self.prev_end is not None:
            gap_from, start = self.prev_end - 1 - r.base, offset - r.base
            if 0 <= gap_from < start <= gap_from + 256:
                colon = r.data.find(b'":', start, start + 256)
                if colon > start:
                    self.separator = bytes(r.data[gap_from : colon + 2])
        self.prev_end = end


def _resource(res: Any) -> dict[str, Any]:
    return _attributes(res.get("attributes")) if isinstance(res, Mapping) else {}


def scan_spans(
    handle: IO[bytes],
    name: str,
    *,
    start: int = 0,
    line: int = 1,
    chunk_size: int = DEFAULT_CHUNK,
    max_value_bytes: int = DEFAULT_MAX_VALUE,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> Iterator[SpanRecord]:
    """Yield the span records of the JSON value(s) in ``handle`` from byte ``start`` on.

    ``name`` is the file name used in errors; ``start`` is on line ``line``. Raises :class:`TraceFormatError` (file and
    ``byte N``) for malformed, truncated, too deep, too large or non-UTF-8 input.
    """
    reader = _Reader(handle, name, chunk_size, max_value_bytes, max_depth, start, line)
    yield from _Walker(reader).top()
