"""Apply a Patch to a live app: by binding key, or by prompt identity (content hash).

:func:`apply_patch` is how a patch computed elsewhere (another process, an offline run over
production traces) reaches the app at deploy time. Each change is matched to the live app:

1. the binding whose ``key`` equals the change's target, else
2. the binding(s) whose CURRENT text hashes to the change's ``old_hash`` (the prompt's
   identity). Several live prompts with that exact text are written together.

Resolution happens for every change before anything is written; then :meth:`Patch.apply`
checks conflicts (live text no longer hashing to ``old_hash``) and placeholders, writes all or
nothing, and :meth:`Patch.revert` restores the previous texts byte for byte.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..exceptions import BindingError, UsageError
from ..variable import content_hash
from .binding import Binding
from .patch import Change, Patch

__all__ = ["apply_patch", "live_bindings", "patch_between", "resolve_targets"]

log = logging.getLogger(__name__)

#: Attribute a decorated function / proxy exposes to list the bindings it has seen.
BINDINGS_HOOK = "__tg_bridge_bindings__"


def apply_patch(target: Any, patch: Any) -> Patch:
    """Write ``patch`` into the live prompts of ``target``; returns the applied Patch
    (call ``.revert()`` on it to restore the previous prompts exactly).

    ``target``: an app object an installed adapter owns, an ``@optimizable`` function or proxy,
    a mapping key -> Binding, or a sequence of Bindings. ``patch``: a Patch, its JSON text or
    the path of a patch JSON file. Blocking; not safe against concurrent writers of the same
    prompts. Raises :class:`BindingError` (a target not found), :class:`PatchConflictError`
    (a live prompt changed since the patch was made), :class:`PatchValidationError` (bad
    placeholders or bad JSON) — and then nothing was changed.
    """
    patch = _as_patch(patch)
    resolved = resolve_targets(live_bindings(target), patch.changes)
    return patch.apply(resolver=resolved.__getitem__)


def resolve_targets(bindings: Sequence[Binding], changes: Iterable[Change]) -> dict[str, Binding]:
    """Map each change's target key to the live binding it applies to (BindingError if none)."""
    out: dict[str, Binding] = {}
    by_key = {b.key: b for b in bindings}
    texts: list[tuple[Binding, str]] | None = None
    for change in changes:
        if change.target in by_key:
            out[change.target] = by_key[change.target]
            continue
        if texts is None:  # read live prompts once, only when some change needs identity
            texts = [(b, _safe_read(b)) for b in bindings]
        matches = [b for b, text in texts if text is not None and _same(text, change.old_hash)]
        if not matches:
            raise BindingError(
                f"no live prompt matches patch target {change.target!r} (neither its key nor"
                f" its content hash {change.old_hash[:16]}); {len(bindings)} prompt(s) checked"
            )
        if len(matches) > 1:
            log.info("patch target %s matches %d identical prompts; writing all",
                     change.target, len(matches))
        out[change.target] = matches[0] if len(matches) == 1 else _FanOut(matches)
    return out


def live_bindings(target: Any) -> list[Binding]:
    """Every live prompt binding of ``target`` (see :func:`apply_patch`), one per key."""
    if isinstance(target, Mapping):
        found = list(target.values())
    elif isinstance(target, (list, tuple)):
        found = list(target)
    else:
        hook: Callable[[], Iterable[Binding]] | None = getattr(target, BINDINGS_HOOK, None)
        if callable(hook):
            found = list(hook())
        else:
            from ..adapters import adapter_for

            adapter = adapter_for(target)
            if adapter is None:
                raise UsageError(
                    f"cannot find the prompts of a {type(target).__name__}: no installed adapter"
                    " owns it (install tg-bridge-langchain / tg-bridge-llamaindex, or pass the"
                    " bindings)"
                )
            found = list(adapter.bindings(target))
    unique: dict[str, Binding] = {}
    for b in found:
        if not isinstance(b, Binding):
            raise UsageError(f"not a Binding: {b!r}")
        unique.setdefault(b.key, b)  # several runs may register the same prompt
    return list(unique.values())


def patch_between(
    originals: Mapping[str, str],
    values: Mapping[str, str],
    *,
    metadata: Mapping[str, Any] | None = None,
    formats: Mapping[str, str] | None = None,
) -> Patch:
    """A Patch turning ``originals`` into ``values`` (key -> text); unchanged keys are skipped.

    ``formats`` (key -> template format) goes into each change's provenance.
    """
    changes = []
    for key, old in originals.items():
        new = values.get(key, old)
        if new != old:
            provenance = {"template_format": formats[key]} if formats and key in formats else {}
            changes.append(Change(key, "replace", old, new, content_hash(old), provenance))
    return Patch(changes, metadata=dict(metadata or {}))


class _FanOut:
    """Several live prompts with identical text, written together (all or nothing)."""

    def __init__(self, bindings: Sequence[Binding]) -> None:
        self._bindings = list(bindings)
        self.key = self._bindings[0].key
        self.template_format = self._bindings[0].template_format

    def read(self) -> str:
        return self._bindings[0].read()

    def check(self, value: str) -> None:
        for b in self._bindings:  # each host object may format differently
            check = getattr(b, "check", None)
            if callable(check):
                check(value)

    def write(self, value: str) -> None:
        done: list[tuple[Binding, str]] = []
        try:
            for b in self._bindings:
                before = b.read()
                b.write(value)
                done.append((b, before))
        except Exception:
            for b, before in reversed(done):
                b.write(before)
            raise


def _as_patch(patch: Any) -> Patch:
    if isinstance(patch, Patch):
        # a live patch (optimize()'s result.best_patch) can still be deployed elsewhere
        return Patch(patch.changes, patch.metadata) if patch.applied else patch
    if isinstance(patch, (str, os.PathLike)):
        text = os.fspath(patch)
        if not text.lstrip().startswith("{"):
            try:
                with open(text, encoding="utf-8") as fh:
                    text = fh.read()
            except OSError as exc:
                raise UsageError(f"cannot read patch file {text!r}: {exc}") from exc
        return Patch.from_json(text)
    raise UsageError(f"expected a Patch, its JSON text or a file path, got {type(patch).__name__}")


def _safe_read(binding: Binding) -> str | None:
    try:
        value = binding.read()
    except Exception:
        log.debug("could not read prompt %s while matching a patch", binding.key, exc_info=True)
        return None
    return value if isinstance(value, str) else None


def _same(text: str, old_hash: str) -> bool:
    return bool(old_hash) and content_hash(text).startswith(old_hash)
