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


def apply_patch(target: Any, patch: Any = None, *, run_id: str | None = None,
                store: Any = None, step: int | None = None) -> Patch:
    """Write ``patch`` into the live prompts of ``target``; returns the applied Patch
    (call ``.revert()`` on it to restore the previous prompts exactly).

    Instead of ``patch``, ``run_id=`` takes the latest accepted version (or the one after
    ``step``) of a run in the run store ``store`` (a RunStore or its path; default
    ``settings.store``) — e.g. in another process than the one that optimized. Give one of
    ``patch`` and ``run_id`` (UsageError otherwise; StoreError for an unknown run).

    ``target``: an app object an installed adapter owns, an ``@optimizable`` function or proxy,
    a mapping key -> Binding, or a sequence of Bindings. ``patch``: a Patch, its JSON text or
    the path of a patch JSON file. Blocking; not safe against concurrent writers of the same
    prompts. Raises :class:`BindingError` (a target not found), :class:`PatchConflictError`
    (a live prompt changed since the patch was made), :class:`PatchValidationError` (bad
    placeholders or bad JSON) — and then nothing was changed.
    """
    patch = _patch_of_run(run_id, store, step) if _one_source(patch, run_id) else _as_patch(patch)
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


def _one_source(patch: Any, run_id: str | None) -> bool:
    """True when the patch comes from ``run_id``; UsageError unless exactly one is given."""
    if (patch is None) == (run_id is None):
        raise UsageError("apply_patch needs either a patch (a Patch, its JSON or a file path)"
                         " or run_id=... (with store=...), not both or neither")
    return run_id is not None


def _patch_of_run(run_id: Any, store: Any, step: int | None) -> Patch:
    from ..store import RunStore

    if not isinstance(run_id, str) or not run_id:
        raise UsageError(f"run_id must be a non-empty string, got {run_id!r}")
    run_store = store if isinstance(store, RunStore) else RunStore(store)
    return run_store.version(run_id, step)


def _as_patch(patch: Any) -> Patch:
    if isinstance(patch, Patch):
        return patch
    if isinstance(patch, (str, os.PathLike)):
        text = os.fspath(patch)
        if not text.lstrip().startswith("{"):
            return Patch.load(text)
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
