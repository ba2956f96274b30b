"""Text that leaves the process as UTF-8 (command output, patch files), whatever a trace held.

JSON allows a lone surrogate (``"\\ud800"``) and Python's JSON readers hand it over as one
code point, which UTF-8 cannot encode: printing it raises, and a stream that passed it
through would not be UTF-8. Output meant for people gets U+FFFD (:func:`utf8_safe`); JSON
that must read back exactly escapes it (:func:`escape_surrogates`).

Trace text can also hold terminal controls (ESC sequences that clear the screen, set the
title or write the clipboard; a carriage return that overwrites a line; NUL). Output
printed to a terminal shows them as visible escapes (:func:`terminal_safe`,
:func:`terminal_safe_json`). Pure.
"""

from __future__ import annotations

import re

__all__ = ["escape_surrogates", "terminal_safe", "terminal_safe_json", "utf8_safe"]

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # a str holds a surrogate only when it is alone
#: C0 controls but tab and newline, DEL, and the C1 controls (U+009B is an 8-bit CSI)
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
#: what json.dumps(ensure_ascii=False) leaves unescaped of those: DEL and C1
_JSON_CONTROL = re.compile("[\x7f-\x9f]")


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


def terminal_safe(text: str) -> str:
    """:func:`utf8_safe` ``text`` with every control character but tab and newline written
    as a visible ``\\xNN`` escape (for plain-text output to a terminal)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", utf8_safe(text))


def terminal_safe_json(json_text: str) -> str:
    """:func:`utf8_safe` JSON text (``json.dumps(..., ensure_ascii=False)``, which escapes
    C0 controls itself) with DEL and the C1 controls written as ``\\u00NN`` escapes: the
    JSON reads back the same, and a terminal shows it inert."""
    return _JSON_CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", utf8_safe(json_text))
