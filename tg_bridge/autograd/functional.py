"""Forward helpers for building graphs by hand (notebooks, tests), TextGrad style.

Each helper runs the forward computation and records the :class:`Operation` on the output,
so ``backward`` can later send feedback through it::

    system = Variable("Answer briefly.", role="system prompt", requires_grad=True)
    question = Variable("What is 2+2?", role="question", kind="input")
    answer = llm_call(engine, question, system=system, name="qa")

The async forms (``allm_call``) are the primitives; the sync ones block (and work inside a
running loop). Engine errors propagate as :class:`EngineError`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from ..engines.sync import run_sync
from ..exceptions import UsageError
from ..patching.validate import placeholders
from ..variable import Operation, Variable
from . import _engine

__all__ = ["allm_call", "format_template", "function", "llm_call"]


def _as_list(inputs: Variable | Sequence[Variable]) -> list[Variable]:
    items = [inputs] if isinstance(inputs, Variable) else list(inputs)
    for v in items:
        if not isinstance(v, Variable):
            raise UsageError(f"inputs must be Variables, got {type(v).__name__}")
    return items


async def allm_call(
    engine: object,
    inputs: Variable | Sequence[Variable] = (),
    *,
    system: Variable | None = None,
    name: str = "llm",
    role: str | None = None,
    **params: object,
) -> Variable:
    """Call the model with ``system`` (a system message) and ``inputs`` (user messages, in
    order); returns the output Variable (kind ``llm_output``, op ``llm_call``)."""
    users = _as_list(inputs)
    if system is not None and not isinstance(system, Variable):
        raise UsageError("system must be a Variable or None")
    if not users and system is None:
        raise UsageError("llm_call needs a system prompt or at least one input")
    engine = _engine.resolve(engine, backward=False)
    messages = ([{"role": "system", "content": system.value}] if system is not None else []) + [
        {"role": "user", "content": v.value} for v in users
    ]
    completion = await engine.acomplete(messages, **params)
    op_inputs = tuple(([system] if system is not None else []) + users)
    op = Operation(
        "llm_call",
        op_inputs,
        attrs={"messages": messages, "model": getattr(engine, "model", ""), "name": name},
        name=name,
    )
    out = Variable(
        completion.text,
        role=role or f"output of LLM step {name!r}",
        parents=op_inputs,
        kind="llm_output",
        op=op,
        name=name,
    )
    op.output = out
    return out


def llm_call(
    engine: object,
    inputs: Variable | Sequence[Variable] = (),
    *,
    system: Variable | None = None,
    name: str = "llm",
    role: str | None = None,
    **params: object,
) -> Variable:
    """Blocking :func:`allm_call`."""
    return run_sync(allm_call(engine, inputs, system=system, name=name, role=role, **params))


def _fill(template: str, values: Mapping[str, str], fmt: str) -> str:
    if fmt == "f-string":
        try:
            return template.format(**values)
        except (KeyError, IndexError, ValueError) as exc:
            raise UsageError(f"cannot format the template: {exc}") from exc
    if fmt == "mustache":
        return re.sub(
            r"\{\{\{?\s*&?\s*([\w.]+)\s*\}?\}\}",
            lambda m: values.get(m.group(1).split(".")[0], m.group(0)),
            template,
        )
    raise UsageError("format_template supports fmt='f-string' or 'mustache'")


def format_template(
    template: Variable,
    values: Mapping[str, Variable],
    *,
    fmt: str = "f-string",
    role: str | None = None,
) -> Variable:
    """Fill ``template`` with ``values`` (placeholder name -> Variable); op ``format``.

    Every placeholder of the template must be given (:class:`UsageError` otherwise).
    """
    if not isinstance(template, Variable):
        raise UsageError("template must be a Variable")
    needed = placeholders(template.value, fmt)
    missing = [n for n in needed if n not in values]
    if missing:
        raise UsageError(f"format_template: no value for {', '.join(missing)}")
    names = [n for n in needed]
    inputs = [template] + [values[n] for n in names]
    for v in inputs:
        if not isinstance(v, Variable):
            raise UsageError("format_template values must be Variables")
    text = _fill(template.value, {n: values[n].value for n in names}, fmt)
    op = Operation(
        "format",
        tuple(inputs),
        attrs={"variables": {n: i + 1 for i, n in enumerate(names)}, "format": fmt},
        name="format",
    )
    template.metadata.setdefault("template_format", fmt)
    out = Variable(text, role=role or f"text formatted from {template.role}", parents=inputs, op=op)
    op.output = out
    return out


def function(
    fn: Callable[..., str],
    inputs: Variable | Sequence[Variable],
    description: str,
    *,
    role: str | None = None,
    name: str = "",
) -> Variable:
    """Apply the Python ``fn`` to the inputs' values; the result (a str) becomes a Variable
    with op ``function`` whose ``description`` the backward prompt shows."""
    items = _as_list(inputs)
    if not description or not isinstance(description, str):
        raise UsageError("function needs a description of what fn does")
    result = fn(*[v.value for v in items])
    if not isinstance(result, str):
        raise UsageError(f"fn must return a str, got {type(result).__name__}")
    label = name or getattr(fn, "__name__", "function")
    op = Operation("function", tuple(items), attrs={"description": description}, name=label)
    out = Variable(result, role=role or f"result of {label}", parents=items, op=op, name=label)
    op.output = out
    return out
