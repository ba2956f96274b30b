"""Checks a proposed prompt must pass before it may be written into a host app.

- :func:`placeholders` lists the variables a template needs, per template format.
- :func:`check_placeholders`: the new value must need exactly the same SET of variables as the
  old one (a lost ``{question}`` or a new ``{foo}`` would break the host at its next run).
- :func:`check_copy_guard`: the new value must not copy a long run of untrusted span content
  (documents, tool results, user inputs) that was not already in the old value — the signature
  of a prompt injection that travelled through the optimizer into the app's own prompt.
- :func:`check_template`: the template rules every written value obeys (see its docstring):
  the original's fields exactly as written, no control characters, not blank, bounded length.
- :func:`validate_value` runs every check (empty, size, template rules, copy guard).

Every check is pure and raises :class:`PatchValidationError` with a ``reason`` code.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable

from ..exceptions import PatchValidationError, UsageError
from .copy_guard import check_copy_guard  # moved to copy_guard.py; re-exported here
from .template_rules import check_template

__all__ = [
    "MAX_VALUE_CHARS",
    "check_copy_guard",
    "check_placeholders",
    "check_template",
    "placeholders",
    "validate_value",
]

#: A proposed value longer than this is rejected with reason ``size``.
MAX_VALUE_CHARS = 100_000

FORMATS = ("f-string", "mustache", "jinja2", "none")

_BASE_NAME = re.compile(r"^[^.\[]*")
_MUSTACHE_TAG = re.compile(r"\{\{(\{?)\s*([#^/&!>]?)\s*([^}]*?)\s*\}?\}\}")
_JINJA_EXPR = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)")
_JINJA_STMT = re.compile(r"\{%-?\s*(.*?)\s*-?%\}", re.DOTALL)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_JINJA_WORDS = frozenset(
    "if elif else endif for endfor in not and or is set endset block endblock macro endmacro"
    " include import from with endwith true false none True False None loop raw endraw".split()
)


def placeholders(text: str, fmt: str = "f-string") -> tuple[str, ...]:
    """The variable names ``text`` needs as a ``fmt`` template, in order of first use.

    ``f-string``: ``{x}``; ``{{``/``}}`` are literal braces; ``{x:>3}``, ``{x!r}``, ``{x.y}``
    and ``{x[0]}`` all count as ``x``. ``mustache``: ``{{x}}``, ``{{{x}}}``, ``{{&x}}`` and
    section names ``{{#x}}``/``{{^x}}`` (dotted names count by their first part; comments and
    partials are ignored). ``jinja2``: best effort (expressions and statement identifiers,
    minus names the template binds itself). ``none``: plain text, no variables.

    Raises :class:`PatchValidationError` (reason ``placeholders``) when ``text`` is not a
    valid f-string template, and :class:`UsageError` for an unknown ``fmt``.
    """
    if fmt == "none":
        return ()
    if fmt == "f-string":
        return _fstring_names(text)
    if fmt == "mustache":
        return _mustache_names(text)
    if fmt == "jinja2":
        return _jinja_names(text)
    raise UsageError(f"unknown template format {fmt!r}; expected one of {', '.join(FORMATS)}")


def _fstring_names(text: str) -> tuple[str, ...]:
    names: list[str] = []
    pending = [text]
    while pending:  # format specs may hold nested fields: {x:{width}}
        chunk = pending.pop(0)
        try:
            parsed = list(string.Formatter().parse(chunk))
        except ValueError as exc:
            raise PatchValidationError(
                f"not a valid f-string template ({exc})", reason="placeholders"
            ) from exc
        for _literal, field, spec, _conversion in parsed:
            if field is None:
                continue
            match = _BASE_NAME.match(field)
            name = match.group(0) if match else field
            if name not in names:
                names.append(name)
            if spec and "{" in spec:
                pending.append(spec)
    return tuple(names)


def _mustache_names(text: str) -> tuple[str, ...]:
    names: list[str] = []
    for match in _MUSTACHE_TAG.finditer(text):
        sigil, raw = match.group(2), match.group(3).strip()
        if sigil in ("!", ">", "/") or not raw or raw == ".":
            continue
        name = raw.split(".", 1)[0]
        if name not in names:
            names.append(name)
    return tuple(names)


def _jinja_names(text: str) -> tuple[str, ...]:
    names: list[str] = []
    bound: list[str] = []
    for stmt in _JINJA_STMT.findall(text):
        words = stmt.split()
        if not words:
            continue
        if words[0] == "for" and " in " in f" {stmt} ":
            targets, _, source = stmt[3:].partition(" in ")
            bound.extend(_IDENT.findall(targets))
            candidates = _IDENT.findall(source)[:1]
        elif words[0] == "set":
            target, _, source = stmt[3:].partition("=")
            bound.extend(_IDENT.findall(target))
            candidates = _IDENT.findall(source)[:1]
        else:
            candidates = _IDENT.findall(" ".join(words[1:]))
        for name in candidates:
            if name not in _JINJA_WORDS and name not in names:
                names.append(name)
    for name in _JINJA_EXPR.findall(text):
        if name not in _JINJA_WORDS and name not in names:
            names.append(name)
    return tuple(n for n in names if n not in bound)


def check_placeholders(old: str, new: str, fmt: str = "f-string", *, target: str = "") -> None:
    """Raise :class:`PatchValidationError` (reason ``placeholders``) unless ``new`` needs
    exactly the same set of variables as ``old``. Order and repetition do not matter."""
    before = placeholders(old, fmt)
    after = placeholders(new, fmt)
    lost = [n for n in before if n not in after]
    gained = [n for n in after if n not in before]
    if lost or gained:
        parts = []
        if lost:
            parts.append("loses " + ", ".join(f"{{{n}}}" for n in lost))
        if gained:
            parts.append("adds " + ", ".join(f"{{{n}}}" for n in gained))
        raise PatchValidationError(
            f"new value of {target or 'the prompt'} {' and '.join(parts)} ({fmt} template)",
            target=target,
            reason="placeholders",
        )


_BRACED = re.compile(r"\{[^{}]*\}")
_LETTER_WORD = re.compile(r"[^\W\d_]{2,}")


def _words_outside_braces(text: str) -> bool:
    """True when ``text`` has a word of 2+ letters outside ``{...}`` groups."""
    return bool(_LETTER_WORD.search(_BRACED.sub(" ", text)))


def validate_value(
    old: str,
    new: str,
    fmt: str = "none",
    *,
    untrusted_texts: Iterable[str] = (),
    min_words: int = 20,
    target: str = "",
) -> None:
    """Every check a proposed value must pass: not empty, not oversized, same placeholders,
    no copied untrusted content. Raises the first :class:`PatchValidationError`."""
    if not new.strip():
        raise PatchValidationError(
            f"new value of {target or 'the prompt'} is empty", target=target, reason="empty"
        )
    if _words_outside_braces(old) and not _words_outside_braces(new):
        # e.g. a small model answering "{{": no instruction text left, only punctuation
        raise PatchValidationError(
            f"new value of {target or 'the prompt'} has no words left: {new[:40]!r}",
            target=target,
            reason="empty",
        )
    if len(new) > MAX_VALUE_CHARS:
        raise PatchValidationError(
            f"new value of {target or 'the prompt'} has {len(new)} characters"
            f" (limit {MAX_VALUE_CHARS})",
            target=target,
            reason="size",
        )
    check_template(old, new, fmt, target=target)
    check_copy_guard(new, untrusted_texts, min_words, old=old, target=target)
