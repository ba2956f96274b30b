"""Prompt templates as text: render, match rendered text, recover a template from a rendering.

Formats: ``f-string`` (``{name}``, ``{{`` escapes), ``mustache``/``jinja2`` (``{{ name }}``;
only plain variable substitution is understood) and ``none`` (no placeholders). Pure
functions; regex matching is bounded (size and placeholder caps) so huge span values cannot
make it explode.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Mapping

__all__ = ["match_template", "placeholders", "recover_template", "render", "static_text"]

_DOUBLE = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)\s*\}\}")
_MAX_MATCH_CHARS = 200_000
_MAX_PLACEHOLDERS = 32
_MIN_FREE_VALUE = 4  # shorter values are only substituted at word boundaries
_FORMATTER = string.Formatter()


@functools.lru_cache(maxsize=1024)
def _fstring_parts(template: str) -> tuple[tuple[str, str | None], ...] | None:
    """``(literal, field name or None)`` pairs, or None when the text is not a valid f-string.
    Cached: the same few templates are parsed for every trace of a file."""
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError:
        return None
    return tuple((lit, name) for lit, name, _spec, _conv in parsed)


def placeholders(template: str, fmt: str = "f-string") -> list[str]:
    """Placeholder names in order of first appearance (no duplicates)."""
    names: list[str] = []
    if fmt in ("mustache", "jinja2"):
        found = _DOUBLE.findall(template)
    elif fmt == "f-string":
        found = [n for _, n in (_fstring_parts(template) or []) if n]
    else:
        found = []
    for name in found:
        if name not in names:
            names.append(name)
    return names


def render(template: str, values: Mapping[str, str], fmt: str = "f-string") -> str | None:
    """The template with ``values`` filled in, or None if a placeholder has no value."""
    if fmt in ("mustache", "jinja2"):
        missing = False

        def fill(m: re.Match[str]) -> str:
            nonlocal missing
            if m.group(1) not in values:
                missing = True
                return m.group(0)
            return str(values[m.group(1)])

        out = _DOUBLE.sub(fill, template)
        return None if missing else out
    if fmt != "f-string":
        return template
    parts = _fstring_parts(template)
    if parts is None:
        return None
    chunks: list[str] = []
    for literal, name in parts:
        chunks.append(literal)
        if name is not None:
            if name not in values:
                return None
            chunks.append(str(values[name]))
    return "".join(chunks)


def static_text(template: str, fmt: str = "f-string") -> str:
    """The template's fixed text (placeholders removed): what an optimizer could change."""
    if fmt in ("mustache", "jinja2"):
        return _DOUBLE.sub("", template)
    if fmt == "f-string":
        parts = _fstring_parts(template)
        if parts is not None:
            return "".join(lit for lit, _ in parts)
    return template


@functools.lru_cache(maxsize=512)
def _pattern(template: str, fmt: str) -> tuple[re.Pattern[str], tuple[str, ...]] | None:
    """The template as a regex with one group ``g<i>`` per distinct placeholder."""
    if fmt in ("mustache", "jinja2"):
        pieces: list[tuple[str, str | None]] = []
        last = 0
        for m in _DOUBLE.finditer(template):
            pieces.append((template[last : m.start()], m.group(1)))
            last = m.end()
        pieces.append((template[last:], None))
    elif fmt == "f-string":
        parsed = _fstring_parts(template)
        if parsed is None:
            return None
        pieces = list(parsed)
    else:
        return re.compile(re.escape(template), re.DOTALL), ()
    if sum(1 for _, n in pieces if n) > _MAX_PLACEHOLDERS:
        return None
    regex: list[str] = []
    names: list[str] = []
    for literal, name in pieces:
        regex.append(re.escape(literal))
        if name is None:
            continue
        if name in names:  # a repeated placeholder must repeat the same value
            regex.append(f"(?P=g{names.index(name)})")
        else:
            regex.append(f"(?P<g{len(names)}>.*?)")
            names.append(name)
    return re.compile("".join(regex), re.DOTALL), tuple(names)


def match_template(template: str, text: str, fmt: str = "f-string") -> dict[str, str] | None:
    """If ``text`` is a rendering of ``template``, the placeholder values; else None.

    Whitespace at both ends is ignored. Bounded: texts over 200,000 characters or templates
    with more than 32 placeholders are not pattern-matched (None).
    """
    if len(text) > _MAX_MATCH_CHARS:
        return None
    compiled = _pattern(template.strip(), fmt)
    if compiled is None:
        return None
    pattern, names = compiled
    m = pattern.fullmatch(text.strip())
    if m is None:
        return None
    return {name: m.group(f"g{i}") for i, name in enumerate(names)}


def recover_template(
    text: str, values: Mapping[str, str], fmt: str = "f-string"
) -> tuple[str, list[str]]:
    """Rebuild an f-string (or mustache) template from a rendering and the values used.

    Every occurrence of a value is replaced by its ``{name}``; longer values win over shorter
    ones they overlap, ties go to the name sorted first; values under 4 characters are only
    replaced at word boundaries. Literal braces are escaped. Returns the template and the
    names that were placed (in order of appearance). Deterministic.
    """
    candidates = sorted(
        ((name, value) for name, value in values.items() if isinstance(value, str) and value.strip()),
        key=lambda item: (-len(item[1]), item[0]),
    )
    taken = bytearray(len(text))
    spans: list[tuple[int, int, str]] = []
    for name, value in candidates:
        start = text.find(value)
        while start != -1:
            end = start + len(value)
            # find/slice assignment run in C: a per-character loop cost ~1 us per 20 chars
            if taken.find(1, start, end) == -1 and _boundary_ok(text, start, end, value):
                spans.append((start, end, name))
                taken[start:end] = b"\x01" * (end - start)
            start = text.find(value, end)
    spans.sort()
    out: list[str] = []
    used: list[str] = []
    cursor = 0
    for start, end, name in spans:
        out.append(_escape(text[cursor:start], fmt))
        out.append("{{" + name + "}}" if fmt in ("mustache", "jinja2") else "{" + name + "}")
        if name not in used:
            used.append(name)
        cursor = end
    out.append(_escape(text[cursor:], fmt))
    return "".join(out), used


def _boundary_ok(text: str, start: int, end: int, value: str) -> bool:
    if len(value.strip()) >= _MIN_FREE_VALUE:
        return True
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    return not (before.isalnum() or after.isalnum())


def _escape(literal: str, fmt: str) -> str:
    if fmt == "f-string":
        return literal.replace("{", "{{").replace("}", "}}")
    return literal
