"""Patch: a reviewable set of prompt changes, applied all-or-nothing and reverted exactly.

A :class:`Change` names its target by key (a binding key, or a Variable key such as
``name#hash16``) and carries the old text, its SHA-256 (``old_hash``), the new text and a
JSON-serializable ``provenance`` (role, gradients, engine, ``template_format``, ...).

A Patch made by an optimizer keeps its live targets (Bindings or Variables) in memory, so
``apply()`` needs no arguments. A Patch loaded with :meth:`Patch.from_json` needs a
``resolver``: a callable ``target_key -> Binding | Variable``.

Not thread-safe: apply/revert one patch from one thread at a time. The JSON form lives in
:mod:`.patch_io`, the diff/HTML rendering in :mod:`.patch_render`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from ..exceptions import (
    BindingError,
    PatchConflictError,
    PatchError,
    PatchValidationError,
    UsageError,
)
from ..variable import Variable, content_hash
from .binding import Binding
from .patch_io import (  # the schema constants are re-exported: they were defined here
    MAX_CHANGES,  # noqa: F401
    MAX_JSON_CHARS,  # noqa: F401
    SCHEMA_NAME,  # noqa: F401
    SCHEMA_VERSION,  # noqa: F401
    ChangeKind,
    dump_patch,
    parse_patch,
    read_patch_file,
    schema_error,
    write_text_file,
)
from .patch_render import diff_html, unified_diff
from .template_rules import check_template
from .write_group import hold

__all__ = ["Change", "ChangeKind", "Patch"]

log = logging.getLogger(__name__)

#: key -> the live Binding or Variable to write (None: not found); anything else is rejected.
Resolver = Callable[[str], object]
#: What a change is written to: a Variable (through its binding when it has one) or a Binding.
Target = Variable | Binding


@dataclasses.dataclass(frozen=True)
class Change:
    """One prompt replacement. ``kind`` is ``"replace"`` (the only kind today)."""

    target: str
    kind: ChangeKind
    old: str
    new: str
    old_hash: str
    provenance: Mapping[str, Any] = dataclasses.field(default_factory=dict, hash=False)

    @property
    def template_format(self) -> str:
        return str(self.provenance.get("template_format", "none"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "kind": self.kind,
            "old": self.old,
            "new": self.new,
            "old_hash": self.old_hash,
            "provenance": dict(self.provenance),
        }


class Patch:
    """An ordered list of :class:`Change` plus ``metadata`` (e.g. ``metadata["rejected"]``:
    parameters whose proposals failed validation, with reasons).

    ``targets`` (optional, in memory only) maps target keys to the live Binding/Variable.
    """

    def __init__(
        self,
        changes: Sequence[Change] = (),
        metadata: Mapping[str, Any] | None = None,
        *,
        targets: Mapping[str, object] | None = None,
    ) -> None:
        self.changes: tuple[Change, ...] = tuple(changes)
        keys = [c.target for c in self.changes]
        for c in self.changes:
            if not isinstance(c, Change):
                raise UsageError(f"Patch changes must be Change records, got {type(c).__name__}")
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise UsageError(f"a patch changes each target once; repeated: {duplicates}")
        self.metadata: dict[str, Any] = dict(metadata or {})
        self._targets: dict[str, object] = dict(targets or {})
        self._written: list[tuple[Target, str, str]] = []  # (target, before, after)
        self.applied = False

    def __len__(self) -> int:
        return len(self.changes)

    def __iter__(self) -> Iterator[Change]:
        return iter(self.changes)

    def __repr__(self) -> str:
        state = "applied" if self.applied else "not applied"
        rejected = len(self.metadata.get("rejected", ()))
        extra = f", {rejected} rejected" if rejected else ""
        return f"<Patch {len(self.changes)} change(s){extra}, {state}>"

    # -- serialization --------------------------------------------------------------------
    def to_json(self) -> str:
        """The patch as JSON text (live targets are not serialized)."""
        return dump_patch([c.to_dict() for c in self.changes], self.metadata)

    @classmethod
    def from_json(cls, text: str) -> Patch:
        """Load a patch written by :meth:`to_json`; checks schema, types and sizes.

        Raises :class:`PatchValidationError` (reason ``schema``) for anything malformed.
        """
        fields, metadata = parse_patch(text)
        changes = [Change(**f) for f in fields]
        try:
            return cls(changes, metadata)
        except UsageError as exc:
            raise schema_error(str(exc)) from exc

    def save(self, path: str | os.PathLike[str]) -> str:
        """Write :meth:`to_json` to ``path`` atomically; returns the path (UsageError when
        the file cannot be written)."""
        return write_text_file(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Patch:
        """Read a patch file written by :meth:`save` (or ``tg-bridge optimize/export``).

        UsageError when the file cannot be read; PatchValidationError (reason ``schema``)
        naming the file when its content is not a valid patch."""
        text = read_patch_file(path)
        try:
            return cls.from_json(text)
        except PatchValidationError as exc:
            raise PatchValidationError(f"{os.fspath(path)}: {exc}", reason=exc.reason) from exc

    # -- review ---------------------------------------------------------------------------
    def diff(self, context: int = 3) -> str:
        """A unified diff of every change (``a/<target>`` -> ``b/<target>``)."""
        return unified_diff(self.changes, context)

    def _repr_html_(self) -> str:
        return diff_html(repr(self), self.diff(), self.metadata)

    # -- apply / revert -------------------------------------------------------------------
    def apply(self, resolver: Resolver | None = None) -> Patch:
        """Write every change into its live target, all or nothing; returns ``self``.

        First, for EVERY change and before anything is written: the target is resolved
        (``resolver`` first, else the targets kept in memory; :class:`BindingError` when not
        found), its live text must hash to ``old_hash`` (:class:`PatchConflictError`), the new
        text must obey the template rules against the live text
        (:func:`~tg_bridge.patching.template_rules.check_template`) and the binding's optional
        ``check(value)`` — the host formatting it the way it will at its next call
        (:class:`PatchValidationError`). Only then are the values written; if a write fails,
        every target already written is restored and :class:`BindingError` is raised. So on
        any error the live prompts are what they were. Blocking.
        """
        if self.applied:
            raise PatchError("this patch is already applied; revert() it first")
        plan: list[tuple[Target, str, Change]] = []
        for change in self.changes:
            target = self._resolve(change.target, resolver)
            live = _read(target, change.target)
            if not content_hash(live).startswith(change.old_hash):
                raise PatchConflictError(
                    f"prompt {change.target!r} changed since the patch was made",
                    target=change.target,
                )
            # the live text, not change.old, is the reference: a hand-edited patch file could
            # carry an ``old`` with fields the host never had
            check_template(live, change.new, _format_of(target, change), target=change.target)
            _host_check(target, change.new, change.target)
            plan.append((target, live, change))
        written: list[tuple[Target, str, str]] = []
        with hold(t for t, _, _ in plan):  # concurrent host calls see the patch whole
            for target, before, change in plan:
                try:
                    _write(target, change.new, change.target)
                except Exception as exc:
                    if _peek(target) != before:  # a partial write (e.g. fanned out) is undone too
                        written.append((target, before, change.new))
                    failed = _rollback(written)
                    note = f"; could NOT restore {failed}" if failed else "; nothing changed"
                    raise BindingError(
                        f"cannot write prompt {change.target!r}: {type(exc).__name__}: {exc}{note}"
                    ) from exc
                written.append((target, before, change.new))
        self._written = written
        self.applied = True
        log.info("applied patch with %d change(s)", len(written))
        return self

    def adopt_live(self, resolver: Resolver | None = None) -> Patch:
        """Mark this patch applied when its new values are ALREADY live (e.g. an optimize()
        run wrote them); ``revert()`` then restores each ``old`` text. Writes nothing.

        Raises :class:`PatchError` if already applied, :class:`BindingError` for a target not
        found and :class:`PatchConflictError` if a live text is not the change's ``new``.
        """
        if self.applied:
            raise PatchError("this patch is already applied")
        written: list[tuple[Target, str, str]] = []
        for change in self.changes:
            target = self._resolve(change.target, resolver)
            if _read(target, change.target) != change.new:
                raise PatchConflictError(
                    f"prompt {change.target!r} does not hold this patch's new value",
                    target=change.target,
                )
            written.append((target, change.old, change.new))
        self._written = written
        self.applied = True
        return self

    def revert(self) -> Patch:
        """Restore the exact previous texts of an applied patch (all or nothing); returns self.

        Raises :class:`PatchError` if the patch is not applied, :class:`PatchConflictError`
        (changing nothing) if a target was modified after apply.
        """
        if not self.applied:
            raise PatchError(
                "this patch is not applied to any live app (it was never written, or already"
                " reverted); nothing to revert. To use it, apply it: tg_bridge.apply_patch(app,"
                " patch)"
            )
        for target, _before, after in self._written:
            key = _key_of(target)
            if _read(target, key) != after:
                raise PatchConflictError(
                    f"cannot revert {key!r}: it changed after the patch was applied", target=key
                )
        restores = [(t, after, before) for t, before, after in reversed(self._written)]
        done: list[tuple[Target, str, str]] = []
        with hold(t for t, _, _ in restores):
            for target, after, before in restores:
                try:
                    _write(target, before, _key_of(target))
                except Exception as exc:
                    done.append((target, after, before))
                    _rollback(done)
                    raise BindingError(f"cannot restore prompt {_key_of(target)!r}: {exc}") from exc
                done.append((target, after, before))
        self._written = []
        self.applied = False
        return self

    def _resolve(self, key: str, resolver: Resolver | None) -> Target:
        target: object = None
        if resolver is not None:
            try:
                target = resolver(key)
            except BindingError:
                raise
            except Exception as exc:
                raise BindingError(f"resolver failed for patch target {key!r}: {exc}") from exc
        if target is None:
            target = self._targets.get(key)
        if target is None:
            raise BindingError(
                f"no live target for patch target {key!r}"
                + ("" if resolver else " (a patch loaded from JSON needs apply(resolver=...))")
            )
        if isinstance(target, Variable) and target.binding is not None:
            return target  # written through its binding, and its in-memory value kept in step
        if not isinstance(target, (Variable, Binding)):
            raise BindingError(f"patch target {key!r} resolved to {type(target).__name__}")
        return target


def _key_of(target: Target) -> str:
    return str(getattr(target, "key", "?"))


def _format_of(target: Target, change: Change) -> str:
    binding = target.binding if isinstance(target, Variable) else target
    fmt = getattr(binding, "template_format", None) if binding is not None else None
    return fmt or change.template_format


def _read(target: Target, key: str) -> str:
    try:
        if isinstance(target, Variable):
            return target.binding.read() if target.binding is not None else target.value
        value = target.read()
    except BindingError:
        raise
    except Exception as exc:
        raise BindingError(f"cannot read prompt {key!r}: {exc}") from exc
    if not isinstance(value, str):
        raise BindingError(f"prompt {key!r} read as {type(value).__name__}, not str")
    return value


def _write(target: Target, text: str, key: str) -> None:
    if isinstance(target, Variable):
        if target.binding is not None:
            target.binding.write(text)
        target.set_value(text)
    else:
        target.write(text)


def _peek(target: Target) -> str | None:
    try:
        return _read(target, _key_of(target))
    except PatchError:
        return None


def _host_check(target: Target, value: str, key: str) -> None:
    """Run the binding's optional ``check(value)`` (the host's own formatting of ``value``)."""
    binding = target.binding if isinstance(target, Variable) else target
    check = getattr(binding, "check", None) if binding is not None else None
    if not callable(check):
        return
    try:
        check(value)
    except PatchError:
        raise
    except Exception as exc:  # an adapter's own error: typed, with the target named
        raise PatchValidationError(
            f"the host refuses the new value of {key!r}: {type(exc).__name__}: {exc}",
            target=key, reason="host_check",
        ) from exc


def _rollback(written: list[tuple[Target, str, str]]) -> list[str]:
    """Restore ``written`` in reverse order; returns the keys that could not be restored."""
    failed: list[str] = []
    for target, before, _after in reversed(written):
        try:
            _write(target, before, _key_of(target))
        except Exception:  # keep restoring the others; the caller reports every failure
            log.exception("could not restore prompt %s", _key_of(target))
            failed.append(_key_of(target))
    return failed
