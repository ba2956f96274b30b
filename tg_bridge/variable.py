"""Variables, gradients and operations: the nodes and edges of a text computation graph.

A :class:`Variable` holds a text ``value`` with a human-readable ``role``. Variables compare by
identity (two prompts with the same text are still two nodes until a graph merge unifies
parameters by key). ``parents`` is an ordered tuple; ``gradients`` is an ordered list of
:class:`Gradient` records; nothing here uses sets, so prompts built from a graph are
deterministic.

An :class:`Operation` records how a variable was produced (``kind`` selects the backward rule
in :mod:`tg_bridge.autograd.rules`). Operation kinds and their ``attrs`` conventions:

``llm_call``   inputs: the prompt variables (system prompt, templates, filled messages, ...);
               attrs: ``messages`` (list of ``{"role", "content"}`` actually sent), ``model``,
               ``name`` (step name).
``format``     inputs: the template first, then the values filled into it;
               attrs: ``variables`` (placeholder name -> index into inputs), ``format``.
``retrieval``  inputs: the query; output: the retrieved documents (untrusted).
``tool_call``  inputs: the arguments; attrs: ``tool`` (name), ``description``; output untrusted.
``function``   inputs: anything; attrs: ``description`` of the Python function.
``loss``       inputs: what is evaluated; attrs: ``instruction`` or ``metric``, ``score``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from .exceptions import UsageError

if TYPE_CHECKING:
    from .autograd.report import BackwardMode, BackwardReport
    from .patching.binding import Binding

__all__ = ["Gradient", "Operation", "Variable", "VariableKind", "content_hash", "identity_of", "unique_variables"]

_counter = itertools.count(1)

#: What a variable holds (see :class:`Variable`). A closed set: trust and rendering depend on it.
VariableKind = Literal["parameter", "input", "document", "tool_result", "llm_output", "output", "loss", "value"]

#: Kinds of variable that carry untrusted span content (see DESIGN principle 8).
UNTRUSTED_KINDS: tuple[VariableKind, ...] = ("input", "document", "tool_result")


def content_hash(text: str) -> str:
    """SHA-256 hex digest of ``text`` (UTF-8). Stable across processes. A lone surrogate
    (trace text may carry one: JSON allows ``"\\ud800"``) is encoded as is
    (``surrogatepass``), so it hashes apart from every other text instead of raising; text
    without one hashes exactly as plain UTF-8."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def identity_of(name: str, value: str) -> str:
    """A parameter identity for traces read from files: ``name#<first 16 hex of sha256>``."""
    return f"{name}#{content_hash(value)[:16]}"


@dataclasses.dataclass(frozen=True)
class Gradient:
    """One piece of textual feedback received by a variable.

    ``text`` is the criticism; ``source`` the variable whose backward produced it (None for
    feedback seeded by a loss or a human); ``context`` what the feedback writer was shown
    (a short rendering of the call, for the optimizer's prompt).
    """

    text: str
    source: Variable | None = None
    context: str = ""


@dataclasses.dataclass(eq=False)
class Operation:
    """How ``output`` was computed from ``inputs``. Identity equality, like variables."""

    kind: str  # an open set: register_rule() adds kinds beyond the ones listed above
    inputs: tuple[Variable, ...]
    output: Variable | None = None
    attrs: dict[str, Any] = dataclasses.field(default_factory=dict)
    name: str = ""


class Variable:
    """A text node. ``requires_grad=True`` marks something the optimizer may change.

    ``kind`` is one of ``parameter``, ``input``, ``document``, ``tool_result``, ``llm_output``,
    ``output``, ``loss``, ``value``. Documents, tool results and inputs are untrusted.
    ``binding`` (live capture) or ``identity`` (traces from files) lets a patch find the prompt
    again. ``key`` is the stable name used in patches and fused-backward JSON.

    Not thread-safe for concurrent mutation of the same variable; backward collects gradients
    and appends them from one task.
    """

    def __init__(
        self,
        value: str,
        *,
        role: str,
        requires_grad: bool = False,
        parents: Sequence[Variable] = (),
        kind: VariableKind = "value",
        op: Operation | None = None,
        binding: Binding | None = None,
        name: str | None = None,
        key: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(value, str):
            raise UsageError(f"Variable value must be a str, got {type(value).__name__}")
        if not isinstance(role, str) or not role.strip():
            raise UsageError("Variable needs a non-empty role description (role=...)")
        for parent in parents:
            if not isinstance(parent, Variable):
                raise UsageError(f"parents must be Variables, got {type(parent).__name__}")
        self.value = value
        self.role = role
        self.requires_grad = bool(requires_grad)
        self.parents: tuple[Variable, ...] = tuple(parents)
        self.kind: VariableKind = kind
        self.op = op
        self.binding = binding
        self.name = name or ""
        # free-form JSON-like annotations (template_format, message_role, score...) read by
        # several layers: Any so each reader states what it expects of its own keys
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.gradients: list[Gradient] = []
        self.serial = next(_counter)
        self._key = key

    # -- identity -------------------------------------------------------------------------
    @property
    def key(self) -> str:
        """Stable id: the binding key, else an explicit key, else ``name#hash`` of the value."""
        if self.binding is not None:
            return self.binding.key
        if self._key:
            return self._key
        return identity_of(self.name or self.kind, self.value)

    @property
    def identity(self) -> str:
        """Name + content hash of the value (what a patch from a trace file matches on)."""
        return identity_of(self.name or self.kind, self.value)

    @property
    def trusted(self) -> bool:
        """False for span content that may carry injected instructions."""
        return self.kind not in UNTRUSTED_KINDS

    # -- gradients ------------------------------------------------------------------------
    def add_gradient(self, text: str, *, source: Variable | None = None, context: str = "") -> None:
        """Append one piece of feedback (ignored when ``text`` is blank)."""
        if text and text.strip():
            self.gradients.append(Gradient(text.strip(), source, context))

    def zero_grad(self) -> None:
        """Drop all gradients of this variable."""
        self.gradients.clear()

    def gradient_text(self, separator: str = "\n\n") -> str:
        """All gradient texts joined in arrival order."""
        return separator.join(g.text for g in self.gradients)

    def backward(self, *, engine: Any = None, mode: BackwardMode = "edge", **kwargs: Any) -> BackwardReport:
        """Propagate feedback from this variable (usually a loss) to every parameter.

        Blocking; see :func:`tg_bridge.autograd.backward` for the contract.
        """
        from .autograd import backward

        return backward(self, engine=engine, mode=mode, **kwargs)

    async def abackward(self, *, engine: Any = None, mode: BackwardMode = "edge", **kwargs: Any) -> BackwardReport:
        """Async form of :meth:`backward`."""
        from .autograd import abackward

        return await abackward(self, engine=engine, mode=mode, **kwargs)

    def set_value(self, value: str) -> None:
        """Replace the value in memory (does not touch a binding; use a Patch for that)."""
        if not isinstance(value, str):
            raise UsageError("Variable value must be a str")
        self.value = value

    def __repr__(self) -> str:
        short = self.value if len(self.value) <= 40 else self.value[:37] + "..."
        flag = ", requires_grad=True" if self.requires_grad else ""
        return f"Variable({short!r}, role={self.role!r}, kind={self.kind!r}{flag})"


def unique_variables(items: Any, *, what: str, empty_message: str) -> list[Variable]:
    """``items`` (one Variable or an iterable of them) as a list, each once by identity, in
    first-seen order. Raises UsageError naming ``what`` for a non-Variable, and
    ``empty_message`` when there is none."""
    seq = [items] if isinstance(items, Variable) else list(items)
    out: list[Variable] = []
    for item in seq:
        if not isinstance(item, Variable):
            raise UsageError(f"{what} must be Variables, got {type(item).__name__}")
        if not any(item is seen for seen in out):
            out.append(item)
    if not out:
        raise UsageError(empty_message)
    return out
