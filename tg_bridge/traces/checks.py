"""Checks for untrusted JSON input files (traces, feedback): text, nesting, numbers.

Small pure helpers the readers call so that every malformed input ends in ONE typed error
naming the file and the place, never a bare UnicodeDecodeError, RecursionError,
OverflowError or ValueError from deep inside the parser:

- :func:`decode_utf8` — bytes to text, or the error with the byte offset;
- :func:`parse_json` — ``json.loads`` whose too-deep nesting becomes the typed error;
- :func:`timestamp_ns` — a span timestamp as a non-negative int within 64 bits;
- :func:`finite_number` — a finite float (feedback scores), else None.

``error`` arguments build the error to raise from a message (the caller decides the type:
:class:`TraceFormatError` for traces, :class:`UsageError` for feedback), so the helpers stay
independent of how each reader names its places.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["MAX_TIMESTAMP_NS", "decode_utf8", "finite_number", "parse_json", "timestamp_ns",
           "too_deep"]
#: OTLP timestamps are fixed64 nanoseconds.
MAX_TIMESTAMP_NS = 2**64 - 1

ErrorFactory = Callable[[str], Exception]


def decode_utf8(raw: bytes, error: ErrorFactory) -> str:
    """``raw`` as UTF-8 text; ``error(message)`` (naming the byte offset) when it is not."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None


def parse_json(text: str, error: ErrorFactory) -> Any:
    """Parse ``text``; ``error(message)`` for malformed JSON or nesting deeper than the
    parser can follow (Python's recursion limit, about 1,000 levels; OTLP needs ~12)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise error(too_deep()) from None
    except ValueError as exc:
        hint = "truncated" if not text.rstrip().endswith(("}", "]")) else "malformed"
        raise error(f"{hint} JSON: {exc}") from exc


def too_deep() -> str:
    """The message for input nested deeper than we can walk."""
    return f"JSON nested too deeply (more than about {sys.getrecursionlimit()} levels)"


def timestamp_ns(value: Any, error: ErrorFactory) -> int:
    """A span timestamp in nanoseconds: an int, a float, a digit string or an ISO-8601 date.

    Missing (None / "") is 0. Non-finite (NaN, 1e400), negative, beyond 64 bits, or of
    another type (bool, list, object) raises ``error(message)``.
    """
    if value is None or value == "":
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise error(f"timestamp must be a number or a string, got {type(value).__name__}")
    if isinstance(value, str):
        text = value.strip()
        try:
            number: int | float = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                return _iso_ns(text, error)
    else:
        number = value
    if isinstance(number, float):
        if not math.isfinite(number):
            raise error(f"timestamp {_shown(value)} is not a finite number")
        number = int(number)
    if not 0 <= number <= MAX_TIMESTAMP_NS:
        raise error(f"timestamp {_shown(value)} is outside 0..2**64-1 nanoseconds")
    return number


def _shown(value: Any) -> str:
    """``value`` as it appears in a message: its repr, cut (a 10 MB digit string from a
    hostile file must not become a 10 MB error message)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _iso_ns(text: str, error: ErrorFactory) -> int:
    from datetime import datetime

    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
        number = max(0, int(stamp.timestamp() * 1_000_000_000))
    except (ValueError, OverflowError, OSError):
        raise error(f"timestamp {text[:60]!r} is neither nanoseconds nor an ISO-8601 date") from None
    # a date after the year 2554 is past 2**64 ns: the same bound as for numbers, or a
    # record would carry a timestamp that no OTLP writer can encode
    if number > MAX_TIMESTAMP_NS:
        raise error(f"timestamp {text[:60]!r} is outside 0..2**64-1 nanoseconds")
    return number


def finite_number(value: Any) -> float | None:
    """``value`` as a finite float, or None when it is not a real finite number (bools,
    strings, NaN and infinities included)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int beyond the float range
        return None
    return number if math.isfinite(number) else None
