"""Bindings: how a parameter reads and writes the live prompt object it came from.

Adapters (LangChain, LlamaIndex) create bindings for every prompt they see. A binding is the
only way tg_bridge writes into a host app. Bindings for traces read from files do not exist;
those parameters carry an ``identity`` instead and a patch is matched against the live app at
deploy time (:func:`tg_bridge.apply_patch`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Protocol, runtime_checkable

__all__ = ["Binding", "CallableBinding", "CheckedBinding"]


@runtime_checkable
class Binding(Protocol):
    """Read/write access to one live prompt.

    ``key``: stable id across runs of the same app object (e.g.
    ``"langchain:rag/prompt.messages[0]"``). ``template_format``: ``"f-string"``,
    ``"mustache"``, ``"jinja2"`` or ``"none"`` (plain text such as a system prompt or a tool
    description). ``read()`` returns the current live text; ``write(text)`` replaces it so the
    next run uses it, or raises :class:`tg_bridge.exceptions.BindingError`.

    Optional (not part of the structural check, found with ``getattr``): ``check(value) ->
    None`` raises :class:`BindingError` / :class:`PatchValidationError` when the host could
    not use ``value`` — ideally by formatting it the way the host will, with the original
    variables — and changes nothing. :meth:`Patch.apply` calls it for every target before
    writing any (see :class:`CheckedBinding`).
    """

    key: str
    template_format: str

    def read(self) -> str: ...

    def write(self, value: str) -> None: ...


@runtime_checkable
class CheckedBinding(Binding, Protocol):
    """A :class:`Binding` that also implements the optional pre-write ``check(value)``."""

    def check(self, value: str) -> None: ...


@dataclasses.dataclass
class CallableBinding:
    """A binding made of two callables; handy for plain Python objects and tests.

    ``checker`` (optional) is the binding's ``check(value)``: it raises when the host could
    not use ``value`` (see :class:`Binding`)."""

    key: str
    getter: Callable[[], str]
    setter: Callable[[str], None]
    template_format: str = "none"
    checker: Callable[[str], None] | None = None

    def read(self) -> str:
        return self.getter()

    def write(self, value: str) -> None:
        self.setter(value)

    def check(self, value: str) -> None:
        if self.checker is not None:
            self.checker(value)
