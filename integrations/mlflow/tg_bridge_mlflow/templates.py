"""Placeholders between tg_bridge's template formats and MLflow's ``{{ name }}`` format.

MLflow's Prompt Registry marks a variable as ``{{ name }}`` and keeps every other character
as it is. tg_bridge prompts carry a ``template_format`` (``f-string``, ``mustache``,
``jinja2`` or ``none``). :func:`to_mlflow` converts a prompt to MLflow's form and
:func:`from_mlflow` converts it back; :func:`to_mlflow` refuses (PatchValidationError) any
prompt whose conversion would not come back byte for byte, so a registered version always
round-trips into exactly the text the app will receive.
"""

from __future__ import annotations

import re
import string

from tg_bridge.exceptions import PatchValidationError
from tg_bridge.patching.template_rules import TemplateFormat

__all__ = ["FORMATS", "from_mlflow", "to_mlflow"]

FORMATS: tuple[TemplateFormat, ...] = ("f-string", "mustache", "jinja2", "none")

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: MLflow's variable syntax (what ``PromptVersion.variables`` recognizes)
_MLFLOW_VAR = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def to_mlflow(text: str, template_format: str) -> str:
    """``text`` in MLflow's placeholder format.

    f-string ``{name}`` becomes ``{{ name }}`` and the escapes ``{{``/``}}`` become single
    braces; mustache and jinja2 already use ``{{ ... }}`` and ``none`` has no placeholders:
    their text is kept. Raises PatchValidationError (reason ``placeholders``) for an f-string
    field MLflow cannot express (attribute access, indexing, conversion, format spec,
    positional) or any text that would not convert back exactly.
    """
    fmt = _check_format(template_format)
    if fmt != "f-string":
        converted = text
    else:
        parts: list[str] = []
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise _refuse(f"not a valid f-string template ({exc})") from exc
        for literal, field, spec, conversion in parsed:
            parts.append(literal)
            if field is None:
                continue
            if not _IDENT.match(field) or spec or conversion:
                shown = "{" + field + (f"!{conversion}" if conversion else "") + (
                    f":{spec}" if spec else "") + "}"
                raise _refuse(f"the field {shown} has no MLflow equivalent (only {{name}})")
            parts.append("{{ " + field + " }}")
        converted = "".join(parts)
    if from_mlflow(converted, fmt) != text:
        raise _refuse("its literal braces would read as MLflow variables")
    return converted


def from_mlflow(text: str, template_format: str) -> str:
    """The inverse of :func:`to_mlflow`: MLflow text back in ``template_format``.

    For f-string: ``{{ name }}`` becomes ``{name}`` and every other brace is escaped."""
    fmt = _check_format(template_format)
    if fmt != "f-string":
        return text
    out: list[str] = []
    last = 0
    for match in _MLFLOW_VAR.finditer(text):
        out.append(_escape(text[last:match.start()]))
        out.append("{" + match.group(1) + "}")
        last = match.end()
    out.append(_escape(text[last:]))
    return "".join(out)


def _escape(literal: str) -> str:
    return literal.replace("{", "{{").replace("}", "}}")


def _check_format(template_format: str) -> TemplateFormat:
    if template_format not in FORMATS:
        raise PatchValidationError(
            f"unknown template format {template_format!r} (expected one of {FORMATS})",
            reason="placeholders")
    return template_format  # type: ignore[return-value]


def _refuse(why: str) -> PatchValidationError:
    return PatchValidationError(f"cannot store this prompt in MLflow's format: {why}",
                                reason="placeholders")
