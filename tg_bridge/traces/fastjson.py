"""Fast JSON parsing for trace files: orjson when installed, the standard library otherwise.

:func:`loads` parses one JSON value from bytes. The fast parser only decides the happy path:
on ANY failure the bytes go through the strict checks (UTF-8 with the byte offset, then
:func:`tg_bridge.traces.checks.parse_json` with its truncated/malformed hint and too-deep
guard), so a caller sees the same typed, located error the whole-file reader gives, and input
the standard library accepts but orjson does not (``NaN``, integers beyond 64 bits) still
reads. Install the fast path with ``pip install "tg-bridge[traces]"`` (orjson).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .checks import ErrorFactory, parse_json

__all__ = ["FAST", "loads", "loads_fast"]

_fast: Callable[[bytes], Any]
try:  # optional: several times faster than json on OTLP (many small objects)
    import orjson

    _fast = orjson.loads
    FAST = True
except ImportError:  # pragma: no cover - exercised only where orjson is absent
    _fast = json.loads
    FAST = False


def loads_fast(raw: bytes) -> Any:
    """The fast parser alone: raises ValueError (or RecursionError) for anything it rejects."""
    return _fast(raw)


def loads(raw: bytes, error: ErrorFactory, *, offset: int = 0) -> Any:
    """Parse ``raw`` (one complete JSON value) or raise ``error(message)``.

    Pure; thread-safe. Messages: ``not UTF-8 text: ... at byte N`` (N = ``offset`` + the
    position in ``raw``, so callers pass the value's offset in its file), ``truncated JSON``,
    ``malformed JSON`` or the too-deep message.
    """
    try:
        return _fast(raw)
    except (ValueError, RecursionError):
        pass  # decide slowly and precisely what is wrong (rare: only bad or unusual input)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"not UTF-8 text: {exc.reason} at byte {offset + exc.start}") from None
    return parse_json(text, error)
