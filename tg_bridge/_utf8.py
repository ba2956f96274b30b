"""Text that leaves the process as UTF-8 (command output, patch files), whatever a trace held.

JSON allows a lone surrogate (``"\\ud800"``) and Python's JSON readers hand it over as one
code point, which UTF-8 cannot encode: printing it raises, and a stream that passed it
through would not be UTF-8. Output meant for people gets U+FFFD (:func:`utf8_safe`); JSON
that must read back exactly escapes it (:func:`escape_surrogates`). Pure.
"""

from __future__ import annotations

import re

__all__ = ["escape_surrogates", "utf8_safe"]

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # a str holds a surrogate only when it is alone


def utf8_safe(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD (the replacement character);
    any other text is returned unchanged."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def escape_surrogates(json_text: str) -> str:
    """JSON text (``json.dumps(..., ensure_ascii=False)``) with each lone surrogate written
    as its ``\\uXXXX`` escape: valid UTF-8, and ``json.loads`` reads back the same code
    point (a surrogate can only occur inside a JSON string, where the escape means it). A
    high and a low surrogate side by side read back as the one character they spell."""
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", json_text)
