"""The template rules: what a new prompt value may contain before it is written into a host.

A proposal (from the optimizer, or a saved patch being applied) is untrusted text that the
host will FORMAT on every request. Formatting is code: ``{question.__class__.__mro__}``
walks Python objects, ``{question:>50000000}`` builds a 50-million-character message,
``{{ question.__init__.__globals__ }}`` reaches module globals in a non-sandboxed jinja2. So a
new value may use only the fields of the original template, exactly as written there:

- ``f-string``: every ``{field!conv:spec}`` of the new value must appear, with the same field
  expression, conversion and format spec, in the original. A new conversion (``!r``), format
  spec (``:>9``) or attribute/index access (``.x``, ``[0]``) is refused unless the original had
  that exact field.
- ``mustache``: every tag (variables, sections, inverted sections, closings, partials,
  delimiter changes) must appear in the original; comments are free.
- ``jinja2``: parsed by jinja2's sandboxed environment when jinja2 is importable; the free
  variables must be the original's, and every expression other than plain names, constants,
  ``if``/``for``, boolean logic and comparisons (attribute or item access, filters, tests,
  calls, arithmetic, includes, macros, ...) must appear verbatim in the original. Without
  jinja2, every ``{{ }}`` / ``{% %}`` block must appear (whitespace aside) in the original.
- every format: the same set of variable names as the original (none lost, none gained); not
  blank; no control character other than newline and tab (and none the original did not
  already contain), no bidirectional-override character; at most ``4 * len(original) + 2000``
  characters.

:func:`check_template` is pure and raises :class:`PatchValidationError` naming the target and
the rule (``reason``: ``empty``, ``control_chars``, ``size``, ``placeholders``, ``template``).
"""

from __future__ import annotations

import re
import string
import unicodedata
from typing import Literal

from ..exceptions import PatchValidationError

__all__ = ["GROWTH_FACTOR", "GROWTH_SLACK", "RejectReason", "TemplateFormat", "check_template", "max_length"]

TemplateFormat = Literal["f-string", "mustache", "jinja2", "none"]

#: The ``reason`` codes :class:`PatchValidationError` carries: the patching rules', plus the
#: optimizer's own refusals (``example_specific``, ``meta_feedback``; it still takes a plain
#: str: the optimizer forwards reasons from its own records).
RejectReason = Literal[
    "empty", "control_chars", "size", "placeholders", "template", "host_check", "copy_guard",
    "scaffolding", "label_leak", "schema", "example_specific", "meta_feedback",
]

#: A new value may be at most ``GROWTH_FACTOR * len(original) + GROWTH_SLACK`` characters.
GROWTH_FACTOR = 4
GROWTH_SLACK = 2_000

#: Newline and tab are ordinary prompt text; every other C0/C1 control character is not.
_ALLOWED_CONTROLS = frozenset("\n\t")
#: Bidirectional overrides and isolates can make a prompt read differently from what it says.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

_MUSTACHE_ANY_TAG = re.compile(r"\{\{\{.*?\}\}\}|\{\{.*?\}\}", re.DOTALL)
_JINJA_BLOCK = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)
_SPACES = re.compile(r"\s+")


def max_length(original: str) -> int:
    """The longest value allowed to replace ``original``."""
    return GROWTH_FACTOR * len(original) + GROWTH_SLACK


def check_template(old: str, new: str, fmt: str = "f-string", *, target: str = "") -> None:
    """Raise :class:`PatchValidationError` unless ``new`` may replace ``old`` (module doc).

    ``fmt`` is the host's template format (``f-string``, ``mustache``, ``jinja2``, ``none``);
    an unknown format raises :class:`UsageError`. Pure; never formats or executes ``new``.
    """
    # the name-set rule lives with placeholders(); imported here as validate imports us
    from .validate import check_placeholders

    name = target or "the prompt"
    if not isinstance(new, str) or not new.strip():
        raise PatchValidationError(f"new value of {name} is empty or blank (rule: never empty)",
                                   target=target, reason="empty")
    _check_characters(old, new, name, target)
    limit = max_length(old)
    if len(new) > limit:
        raise PatchValidationError(
            f"new value of {name} has {len(new)} characters; the limit is {limit}"
            f" ({GROWTH_FACTOR}x the original's {len(old)} + {GROWTH_SLACK})",
            target=target, reason="size",
        )
    try:
        check_placeholders(old, new, fmt, target=target)
    except PatchValidationError as exc:
        if exc.target:
            raise
        raise PatchValidationError(f"new value of {name}: {exc}", target=target,
                                   reason=exc.reason) from exc
    if fmt == "f-string":
        _check_fstring(old, new, name, target)
    elif fmt == "mustache":
        _check_mustache(old, new, name, target)
    elif fmt == "jinja2":
        _check_jinja(old, new, name, target)


def _refuse(name: str, target: str, what: str, allowed: list[str]) -> PatchValidationError:
    shown = ", ".join(allowed[:8]) if allowed else "none"
    return PatchValidationError(
        f"new value of {name} uses {what}, which the original does not have (rule: only the"
        f" original's fields, exactly as written; allowed: {shown})",
        target=target, reason="template",
    )


def _check_characters(old: str, new: str, name: str, target: str) -> None:
    for index, char in enumerate(new):
        if char in _ALLOWED_CONTROLS:
            continue
        bad = char in _BIDI or unicodedata.category(char) == "Cc"
        if bad and char not in old:  # an original with "\r\n" line ends may keep them
            raise PatchValidationError(
                f"new value of {name} contains the control character U+{ord(char):04X} at"
                f" position {index} (rule: no control characters except newline and tab)",
                target=target, reason="control_chars",
            )


# -- f-string -------------------------------------------------------------------------------
def _fstring_fields(text: str) -> list[tuple[str, str, str]]:
    """Every replacement field as (field expression, conversion, format spec)."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise PatchValidationError(f"not a valid f-string template ({exc})",
                                   reason="placeholders") from exc
    return [(field, conv or "", spec or "") for _lit, field, spec, conv in parsed
            if field is not None]


def _show_field(field: tuple[str, str, str]) -> str:
    expr, conv, spec = field
    return "{" + expr + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}"


def _check_fstring(old: str, new: str, name: str, target: str) -> None:
    try:
        allowed = _fstring_fields(old)
    except PatchValidationError:
        allowed = []  # the original itself is not an f-string: nothing is allowed beyond names
    try:
        fields = _fstring_fields(new)
    except PatchValidationError as exc:
        raise PatchValidationError(f"new value of {name} is not a valid f-string template"
                                   f" ({exc})", target=target, reason="placeholders") from exc
    shown = sorted({_show_field(f) for f in allowed})
    for field in fields:
        if field in allowed:
            continue
        expr, conv, spec = field
        if conv:
            what = f"the conversion !{conv} in {_show_field(field)[:60]}"
        elif spec:
            what = f"the format spec :{spec[:30]} in {_show_field(field)[:60]}"
        elif "." in expr or "[" in expr:
            what = f"attribute or index access in {_show_field(field)[:60]}"
        else:
            what = f"the field {_show_field(field)[:60]}"
        raise _refuse(name, target, what, shown)


# -- mustache -------------------------------------------------------------------------------
def _mustache_tags(text: str) -> list[str]:
    """Every tag except comments, with inner whitespace collapsed (``{{ x }}`` == ``{{x}}``)."""
    tags = []
    for raw in _MUSTACHE_ANY_TAG.findall(text):
        triple = raw.startswith("{{{")
        inner = _SPACES.sub("", raw[3:-3] if triple else raw[2:-2])
        if inner.startswith("!"):
            continue
        tags.append("{{{" + inner + "}}}" if triple else "{{" + inner + "}}")
    return tags


def _check_mustache(old: str, new: str, name: str, target: str) -> None:
    allowed = _mustache_tags(old)
    for tag in _mustache_tags(new):
        if tag not in allowed:
            raise _refuse(name, target, f"the mustache tag {tag[:60]}", sorted(set(allowed)))


# -- jinja2 ---------------------------------------------------------------------------------
def _check_jinja(old: str, new: str, name: str, target: str) -> None:
    try:
        from jinja2 import TemplateSyntaxError, meta, nodes
        from jinja2.sandbox import SandboxedEnvironment
    except ImportError:
        _check_jinja_text(old, new, name, target)
        return
    env = SandboxedEnvironment()
    try:
        new_ast = env.parse(new)
    except TemplateSyntaxError as exc:
        raise PatchValidationError(f"new value of {name} is not a valid jinja2 template"
                                   f" ({exc.message}, line {exc.lineno})",
                                   target=target, reason="placeholders") from exc
    try:
        old_ast = env.parse(old)
    except TemplateSyntaxError:
        old_ast = None  # the original does not parse: allow plain names only
    old_vars = meta.find_undeclared_variables(old_ast) if old_ast is not None else set()
    new_vars = meta.find_undeclared_variables(new_ast)
    if new_vars != old_vars:
        extra = sorted(new_vars - old_vars) or sorted(old_vars - new_vars)
        verb = "the variable(s)" if new_vars - old_vars else "no longer the variable(s)"
        raise _refuse(name, target, f"{verb} {', '.join(extra)[:80]}", sorted(old_vars))
    free = (nodes.Template, nodes.Output, nodes.TemplateData, nodes.Name, nodes.Const,
            nodes.If, nodes.For, nodes.And, nodes.Or, nodes.Not, nodes.Compare, nodes.Operand)
    allowed = ({repr(n) for n in old_ast.find_all(nodes.Node) if not isinstance(n, free)}
               if old_ast is not None else set())
    for node in new_ast.find_all(nodes.Node):
        if type(node) in free or repr(node) in allowed:
            continue
        raise _refuse(name, target, f"the jinja2 expression {type(node).__name__}"
                      f" {repr(node)[:80]}", sorted(allowed)[:3])


def _check_jinja_text(old: str, new: str, name: str, target: str) -> None:
    """Without jinja2: every expression/statement block must be one the original has."""
    allowed = {_SPACES.sub(" ", b[2:-2].strip()) for b in _JINJA_BLOCK.findall(old)}
    for block in _JINJA_BLOCK.findall(new):
        if _SPACES.sub(" ", block[2:-2].strip()) not in allowed:
            raise _refuse(name, target, f"the jinja2 block {block[:60]}", sorted(allowed))
