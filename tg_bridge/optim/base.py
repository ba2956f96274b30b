"""Optimizer base: parameters, zero_grad, and the propose/step contract shared by optimizers.

``propose()`` is pure (it changes no live prompt and no parameter value) and returns a
:class:`Patch`; ``step()`` is ``propose().apply()``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..engines.sync import run_sync
from ..exceptions import UsageError
from ..patching.patch import Patch
from ..variable import Variable, unique_variables

__all__ = ["Optimizer", "template_format_of"]


def template_format_of(param: Variable) -> str:
    """The template format of a parameter: its binding's, else ``metadata["template_format"]``,
    else ``metadata["format"]`` (what reconstruction records for templates read from traces)."""
    if param.binding is not None:
        return getattr(param.binding, "template_format", None) or "none"
    return str(param.metadata.get("template_format") or param.metadata.get("format") or "none")


class Optimizer:
    """Holds the parameters (each once, in the given order; keys must be distinct)."""

    def __init__(self, parameters: Iterable[Variable]) -> None:
        params = unique_variables(parameters, what="parameters",
                                  empty_message="an optimizer needs at least one parameter")
        keys: dict[str, Variable] = {}
        for p in params:
            if p.key in keys:
                raise UsageError(
                    f"two different parameters share the key {p.key!r}; give them distinct"
                    " name=/key=, or merge their graphs (Graph.merge) so they are one parameter"
                )
            keys[p.key] = p
        self.parameters: list[Variable] = params

    def zero_grad(self) -> None:
        """Drop the gradients of every parameter."""
        for p in self.parameters:
            p.zero_grad()

    async def apropose(self) -> Patch:
        raise NotImplementedError

    def propose(self) -> Patch:
        """Blocking :meth:`apropose`: a Patch of proposed changes; nothing live changes."""
        return run_sync(self.apropose())

    def step(self) -> Patch:
        """``propose().apply()``: write the proposed values; returns the applied Patch."""
        return self.propose().apply()

    async def astep(self) -> Patch:
        """Async :meth:`step` (the writes themselves are synchronous)."""
        return (await self.apropose()).apply()

    def _targets(self, params: Sequence[Variable]) -> dict[str, Any]:
        return {p.key: p for p in params}
