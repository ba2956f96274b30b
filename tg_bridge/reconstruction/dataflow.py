"""Data flow inside one trace: which earlier value a piece of text came from.

Matching, in order: equality with something already produced (LLM output, document, tool
result, transformed value; the latest producer wins), equality with a run input, an earlier
opaque step (a CHAIN span such as a lambda or an output parser) whose output is this text
(followed back through its input), containment (retrieved documents or earlier outputs joined
into a larger text). Unmatched text becomes a new input. Pure bookkeeping; one per trace.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from ..variable import Operation, Variable

__all__ = ["Flow"]

_MIN_CONTAINED = 12  # shorter outputs are too likely to occur in a text by chance
_MAX_CONTAINED = 50
_MAX_TRANSFORM_DEPTH = 3


def _norm(text: str) -> str:
    return text.strip()


class Flow:
    """The produced values of one trace, indexed by text."""

    def __init__(self, chain: str, root_input: str | None) -> None:
        self.chain = chain
        self.by_text: dict[str, Variable] = {}
        self.produced: list[Variable] = []
        self.consumed: set[int] = set()  # ids, membership only
        self.inputs: dict[str, Variable] = {}
        self.root_inputs: dict[str, str] = _root_inputs(root_input)
        self.steps: list[tuple[str, str, str]] = []  # (output text, input text, step name)

    # -- recording ------------------------------------------------------------------------
    def add(self, var: Variable) -> Variable:
        """Record a produced value (later producers of the same text win)."""
        self.produced.append(var)
        key = _norm(var.value)
        if key:
            self.by_text[key] = var
        return var

    def add_step(self, name: str, input_text: str | None, output_text: str | None) -> None:
        """Remember an opaque step (output derived from input) for transform matching."""
        if input_text and output_text and _norm(output_text) != _norm(input_text):
            self.steps.append((_norm(output_text), input_text, name))

    def use(self, var: Variable) -> Variable:
        self.consumed.add(id(var))
        return var

    # -- lookup ---------------------------------------------------------------------------
    def source(self, text: str, *, hint: str = "input", depth: int = 0) -> Variable | None:
        """The Variable this text came from, or None when nothing explains it."""
        key = _norm(text)
        if not key:
            return None
        found = self.by_text.get(key)
        if found is not None:
            return found
        for name, value in self.root_inputs.items():
            if _norm(value) == key:
                return self.input_var(value, name)
        joined = self._contained(text, documents_only=True)
        if joined is not None:
            return joined
        if depth < _MAX_TRANSFORM_DEPTH:
            derived = self._through_step(key, depth)
            if derived is not None:
                return derived
        return self._contained(text) or self._extracted(text)

    def _extracted(self, text: str) -> Variable | None:
        """``text`` parsed out of ONE earlier LLM output (a structured answer's field: a
        LlamaIndex question generator's sub-question becomes a sub engine's query)."""
        key = _norm(text)
        if len(key) < _MIN_CONTAINED:
            return None
        found = [v for v in self.produced if v.kind == "llm_output" and key in _norm(v.value)]
        if len(found) != 1:
            return None
        return self.add(self.derived(text, (found[0],), "text parsed from an earlier LLM output"))

    def source_or_input(self, text: str, *, hint: str = "input") -> Variable:
        return self.source(text, hint=hint) or self.input_var(text, hint)

    def input_var(self, text: str, name: str) -> Variable:
        """An input of the run (untrusted), one per distinct text."""
        var = self.inputs.get(text)
        if var is None:
            where = f" of chain '{self.chain}'" if self.chain else ""
            var = Variable(text, role=f"input '{name}'{where}", kind="input", name=name)
            self.inputs[text] = var
        return var

    def _through_step(self, key: str, depth: int) -> Variable | None:
        for output, input_text, name in reversed(self.steps):
            if output != key:
                continue
            origin = self.source(_unwrap(input_text), depth=depth + 1)
            if origin is None or _norm(origin.value) == key:
                return origin
            return self.add(self.derived(key, (origin,), f"output of step '{name}'"))
        return None

    def _contained(self, text: str, *, documents_only: bool = False) -> Variable | None:
        parts: list[Variable] = []
        whole = _norm(text)
        for var in self.produced:
            if documents_only and var.kind != "document":
                continue
            value = _norm(var.value)
            if not value or value == whole:
                continue
            # a tool's result is pasted whole into what follows ("Observation: 42"), however short
            if (var.kind in ("document", "tool_result") or len(value) >= _MIN_CONTAINED) and value in text:
                if var not in parts:
                    parts.append(var)
                if len(parts) >= _MAX_CONTAINED:
                    break
        if documents_only and not parts:
            return None
        for name, value in self.root_inputs.items():
            norm = _norm(value)
            if len(norm) >= _MIN_CONTAINED and norm in text:
                parts.append(self.input_var(value, name))
        if not parts:
            return None
        docs = sum(1 for p in parts if p.kind == "document")
        what = f"text joining {docs} retrieved document(s)" if docs else "text built from earlier outputs"
        return self.add(self.derived(text, tuple(parts), what))

    def derived(self, text: str, parents: tuple[Variable, ...], description: str) -> Variable:
        """A value computed by code we cannot see (a lambda, a join): op kind ``function``."""
        for p in parents:
            self.use(p)
        var = Variable(text, role=description, kind="value", parents=parents)
        var.op = Operation("function", parents, var, {"description": description}, "function")
        return var


def _unwrap(text: str) -> str:
    """A step's JSON input with one string value (``{"input": "x"}``) is that string."""
    try:
        obj: object = json.loads(text)
    except (ValueError, RecursionError):  # hostile JSON nested too deep is not JSON here
        return text
    if isinstance(obj, str):
        return obj
    if isinstance(obj, Mapping) and len(obj) == 1:
        only = next(iter(obj.values()))
        if isinstance(only, str):
            return only
    return text


def _root_inputs(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    try:
        obj: object = json.loads(text)
    except (ValueError, RecursionError):  # hostile JSON nested too deep is not JSON here
        return {"input": text}
    if isinstance(obj, str):
        return {"input": obj}
    if isinstance(obj, Mapping):
        found = {str(k): v for k, v in obj.items() if isinstance(v, str)}
        if found:
            return found
        nested = obj.get("query_bundle")  # LlamaIndex wraps the query string
        if isinstance(nested, Mapping) and isinstance(nested.get("query_str"), str):
            return {"query": nested["query_str"]}
    return {"input": text}
