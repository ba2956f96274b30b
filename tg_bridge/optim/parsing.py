"""Reading the improved value out of an optimizer answer (JSON or delimited tags).

Unlike ``split(tag)[1]``, a missing or unclosed tag is reported as a problem, never an
IndexError.
"""

from __future__ import annotations

import re

from ..autograd._engine import lenient_json
from ..engines.base import Completion

__all__ = ["CLOSE_TAG", "IMPROVED_SCHEMA", "OPEN_TAG", "lenient_json", "read_improved_value"]

OPEN_TAG = "<IMPROVED_VALUE>"
CLOSE_TAG = "</IMPROVED_VALUE>"

#: Response schema for engines with structured output.
IMPROVED_SCHEMA = {
    "type": "object",
    "properties": {"improved_value": {"type": "string"}},
    "required": ["improved_value"],
    "additionalProperties": False,
}

_TAGGED = re.compile(re.escape(OPEN_TAG) + r"(.*?)" + re.escape(CLOSE_TAG), re.DOTALL | re.IGNORECASE)


def _trim(text: str) -> str:
    # one layout newline after the opening / before the closing tag is not part of the value
    if text.startswith("\r\n"):
        text = text[2:]
    elif text.startswith("\n"):
        text = text[1:]
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    return text


def read_improved_value(completion: Completion) -> tuple[str | None, str]:
    """``(value, "")`` when readable, else ``(None, problem)``.

    Accepts ``{"improved_value": str}`` (parsed or as text, fenced or not), else the first
    ``<IMPROVED_VALUE>...</IMPROVED_VALUE>`` block. The value is returned verbatim (apart
    from one layout newline inside the tags).
    """
    data = completion.parsed
    if not isinstance(data, dict):
        data = lenient_json(completion.text)
    if isinstance(data, dict):
        value = data.get("improved_value")
        if isinstance(value, str):
            return value, ""
        if not _TAGGED.search(completion.text):
            return None, "the JSON answer has no string field 'improved_value'"
    match = _TAGGED.search(completion.text)
    if match:
        return _trim(match.group(1)), ""
    if OPEN_TAG.lower() in completion.text.lower():
        return None, f"{OPEN_TAG} was opened but never closed with {CLOSE_TAG}"
    return None, f"no {OPEN_TAG} block and no JSON 'improved_value' found"
