"""Minimal edits: an optimizer answer made of small operations on the current value.

Instead of rewriting a prompt whole, the optimizer may answer
``{"edits": [{"op": "append", "new": "..."}, {"op": "replace", "old": "...", "new": "..."}]}``.
:func:`read_edits` reads that answer (never raising: a problem is returned in words, for the
one retry), :func:`apply_edits` applies it to the current value. Everything the model wrote is
hostile data: the number of operations and their sizes are capped, ``old`` must occur exactly
once in the value it edits (no guessing which occurrence was meant), and the result goes
through the same validation as a full rewrite (placeholders, copy guard, label leak).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Literal

from ..autograd._engine import lenient_json
from ..engines.base import Completion

__all__ = ["EDITS_SCHEMA", "MAX_EDITS", "MAX_EDIT_CHARS", "Edit", "apply_edits", "describe", "read_edits"]

EditOp = Literal["append", "replace"]
OPS: tuple[EditOp, ...] = ("append", "replace")

#: More operations than this is a rewrite in disguise: refused (the retry says so).
MAX_EDITS = 5
#: Longest ``old``/``new`` text of one operation, in characters.
MAX_EDIT_CHARS = 2_000

#: Response schema for engines with structured output.
EDITS_SCHEMA = {
    "type": "object",
    "properties": {
        "edits": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "op": {"type": "string", "enum": list(OPS)},
                    "old": {"type": "string"},
                    "new": {"type": "string"},
                },
                "required": ["op", "new"],
            },
        }
    },
    "required": ["edits"],
}


@dataclasses.dataclass(frozen=True)
class Edit:
    """One operation. ``append``: add ``new`` as a sentence at the end. ``replace``: the one
    occurrence of ``old`` becomes ``new`` (an empty ``new`` deletes it)."""

    op: EditOp
    new: str
    old: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"op": self.op, "old": self.old, "new": self.new} if self.op == "replace" else {
            "op": self.op, "new": self.new}


def read_edits(completion: Completion) -> tuple[list[Edit] | None, str]:
    """``(edits, "")`` when the answer is a readable list of operations, else
    ``(None, problem)``. An empty list is readable: it means "no change"."""
    data = completion.parsed if isinstance(completion.parsed, dict) else lenient_json(completion.text)
    if not isinstance(data, dict) or not isinstance(data.get("edits"), list):
        return None, "no JSON object with an 'edits' list found"
    items = data["edits"]
    if len(items) > MAX_EDITS:
        return None, f"{len(items)} edits; at most {MAX_EDITS} small edits are allowed"
    edits: list[Edit] = []
    for i, item in enumerate(items, 1):
        if not isinstance(item, dict):
            return None, f"edit {i} is not an object"
        op, old, new = item.get("op"), item.get("old", ""), item.get("new")
        if op not in OPS:
            return None, f"edit {i} has op {str(op)[:20]!r}; use one of {list(OPS)}"
        if not isinstance(new, str) or not isinstance(old, str):
            return None, f"edit {i}: 'old' and 'new' must be strings"
        if len(new) > MAX_EDIT_CHARS or len(old) > MAX_EDIT_CHARS:
            return None, f"edit {i} is longer than {MAX_EDIT_CHARS} characters"
        if op == "append" and not new.strip():
            return None, f"edit {i} appends nothing"
        if op == "replace" and not old:
            return None, f"edit {i} replaces nothing: 'old' must quote text of the current value"
        edits.append(Edit(op, new, old if op == "replace" else ""))
    return edits, ""


def apply_edits(value: str, edits: Sequence[Edit]) -> tuple[str | None, str]:
    """``(new_value, "")`` with ``edits`` applied in order, else ``(None, problem)``.

    Text outside the edited spans is kept byte for byte (the diff against ``value`` is only
    the edits). An appended sentence goes before the value's trailing whitespace, separated by
    one space (a newline when the value is several lines)."""
    current = value
    for i, edit in enumerate(edits, 1):
        if edit.op == "append":
            body = current.rstrip()
            tail = current[len(body):]
            sep = "" if not body else ("\n" if "\n" in body else " ")
            current = body + sep + edit.new.strip() + tail
            continue
        count = current.count(edit.old)
        if count != 1:
            where = "does not occur" if count == 0 else f"occurs {count} times"
            return None, (f"edit {i}: the text to replace {_quote(edit.old)} {where} in the "
                          "current value; quote it exactly, once")
        current = current.replace(edit.old, edit.new, 1)
    return current, ""


def describe(edits: Sequence[Edit]) -> list[dict[str, Any]]:
    """The operations as plain dicts (for a Change's provenance)."""
    return [e.to_dict() for e in edits]


def _quote(text: str) -> str:
    # shown back to the model in the retry: short, one line
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= 60 else flat[:57] + "...")
