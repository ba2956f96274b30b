"""How a :class:`~.patch.Patch` shows itself for review: a unified diff of its changes and
the coloured HTML of that diff (with rejected proposals) that notebooks display. Read-only
and pure: works on any sequence of change records with ``target``/``old``/``new``; all
patch text is HTML-escaped.
"""

from __future__ import annotations

import difflib
import html
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

__all__ = ["diff_html", "unified_diff"]


class ChangeLike(Protocol):
    """What a diff reads of a change record (a :class:`~.patch.Change` has these)."""

    @property
    def target(self) -> str: ...
    @property
    def old(self) -> str: ...
    @property
    def new(self) -> str: ...


def unified_diff(changes: Sequence[ChangeLike], context: int = 3) -> str:
    """A unified diff of every change (``a/<target>`` -> ``b/<target>``)."""
    out: list[str] = []
    for c in changes:
        old = _lines(c.old)
        new = _lines(c.new)
        out.extend(
            difflib.unified_diff(old, new, f"a/{c.target}", f"b/{c.target}", n=context)
        )
    return "".join(out)


def diff_html(head_text: str, diff_text: str, metadata: Mapping[str, Any]) -> str:
    """``diff_text`` as coloured HTML lines under ``head_text``, then ``metadata["rejected"]``."""
    rows = []
    for line in diff_text.splitlines():
        colour = ""
        if line.startswith(("+++", "---")):
            colour = "font-weight:bold"
        elif line.startswith("+"):
            colour = "background:#e6ffec;color:#116329"
        elif line.startswith("-"):
            colour = "background:#ffebe9;color:#82071e"
        elif line.startswith("@@"):
            colour = "color:#0550ae"
        rows.append(f'<div style="{colour}">{html.escape(line) or "&nbsp;"}</div>')
    rejected = metadata.get("rejected") or []
    notes = "".join(
        f"<li>{html.escape(str(r.get('target')))}: {html.escape(str(r.get('reason')))}</li>"
        for r in rejected
        if isinstance(r, Mapping)
    )
    head = html.escape(head_text)
    body = "".join(rows) or "<div><em>no changes</em></div>"
    tail = f"<p>Rejected:</p><ul>{notes}</ul>" if notes else ""
    return f'<div><p>{head}</p><pre style="font-family:monospace">{body}</pre>{tail}</div>'


def _lines(text: str) -> list[str]:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += "\n"
    return lines
