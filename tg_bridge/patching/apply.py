"""Apply a Patch to a live app: by binding key, by stable path, or by prompt identity.

:func:`apply_patch` is how a patch computed elsewhere (another process, an offline run over
production traces) reaches the app at deploy time. Each change is matched to exactly ONE live
prompt, never guessed:

1. the binding whose ``key`` equals the change's target (same process, same object), else
2. the binding whose stable ``path`` (where the prompt sits in the app, e.g.
   ``query_engines[1]/response_synthesizer:summary_template``; recorded in the change's
   provenance by :func:`patch_between`) equals the change's path, else
3. the ONE binding whose current text hashes to the change's ``old_hash`` among those of a
   compatible owner type and slot (when the change records them). Default prompt texts repeat
   across components, so several candidates raise :class:`PatchConflictError` listing them
   instead of writing into one of them (or all).

Resolution happens for every change before anything is written; then :meth:`Patch.apply`
checks conflicts (live text no longer hashing to ``old_hash``) and placeholders, writes all or
nothing, and :meth:`Patch.revert` restores the previous texts byte for byte. With
``dry_run=True`` the same checks run and the plan (target -> live path) is returned instead.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Literal, overload

from ..exceptions import BindingError, PatchConflictError, UsageError
from ..variable import content_hash
from .binding import Binding
from .patch import Change, Patch
from .validate import check_placeholders

__all__ = ["apply_patch", "binding_location", "live_bindings", "patch_between", "resolve_targets"]

log = logging.getLogger(__name__)

#: Attribute a decorated function / proxy exposes to list the bindings it has seen.
BINDINGS_HOOK = "__tg_bridge_bindings__"
#: Provenance keys of a change that locate its prompt in the app (see :func:`binding_location`).
PATH_KEY = "path"
OWNER_TYPE_KEY = "owner_type"

#: A patch as :func:`apply_patch` takes it: a Patch, its JSON text or the path of its file.
PatchSource = Patch | str | os.PathLike[str]


@overload
def apply_patch(target: object, patch: PatchSource, *, dry_run: Literal[False] = False) -> Patch: ...
@overload
def apply_patch(target: object, patch: PatchSource, *, dry_run: Literal[True]) -> dict[str, str]: ...


def apply_patch(target: object, patch: PatchSource, *, dry_run: bool = False) -> Patch | dict[str, str]:
    """Write ``patch`` into the live prompts of ``target``; returns the applied Patch
    (call ``.revert()`` on it to restore the previous prompts exactly). The public
    :func:`tg_bridge.apply_patch` (tg_bridge.loop.deploy) adds ``run_id=`` on top of this.

    ``target``: an app object an installed adapter owns, an ``@optimizable`` function or proxy,
    a mapping key -> Binding, or a sequence of Bindings. ``patch``: a Patch, its JSON text or
    the path of a patch JSON file. ``dry_run=True`` writes nothing and returns the plan:
    change target -> the live prompt it would be written to (its stable path, else its key),
    after the same checks a real apply makes. Blocking; not safe against concurrent writers of
    the same prompts. Raises :class:`BindingError` (a target not found),
    :class:`PatchConflictError` (a live prompt changed since the patch was made, or several
    live prompts could be the target: ``.candidates`` lists them), :class:`PatchValidationError`
    (bad placeholders or bad JSON) — and then nothing was changed.
    """
    patch = _as_patch(patch)
    resolved = resolve_targets(live_bindings(target), patch.changes)
    if dry_run:
        return _plan(patch, resolved)
    return patch.apply(resolver=resolved.__getitem__)


def binding_location(binding: object) -> dict[str, str]:
    """The stable location a binding reports (attributes ``app_path`` and ``owner_type``) as
    provenance entries (``path``, ``owner_type``). Empty for bindings that know none (then only
    key and identity match)."""
    out: dict[str, str] = {}
    for attr, key in (("app_path", PATH_KEY), ("owner_type", OWNER_TYPE_KEY)):
        value = getattr(binding, attr, None)
        if isinstance(value, str) and value:
            out[key] = value
    return out


def resolve_targets(bindings: Sequence[Binding], changes: Iterable[Change]) -> dict[str, Binding]:
    """Map each change's target key to the ONE live binding it applies to.

    Raises :class:`BindingError` when nothing matches and :class:`PatchConflictError` (with
    ``.candidates``, the live keys) when the content hash matches several compatible prompts.
    """
    out: dict[str, Binding] = {}
    by_key = {b.key: b for b in bindings}
    texts: list[tuple[Binding, str | None]] | None = None
    for change in changes:
        if change.target in by_key:
            out[change.target] = by_key[change.target]
            continue
        wanted = _location_of(change)
        path = wanted.get(PATH_KEY)
        if path:
            at_path = [b for b in bindings if binding_location(b).get(PATH_KEY) == path]
            if len(at_path) == 1:
                out[change.target] = at_path[0]
                continue
            if len(at_path) > 1:
                raise _ambiguous(change, at_path, f"the path {path!r}")
        if texts is None:  # read live prompts once, only when some change needs identity
            texts = [(b, _safe_read(b)) for b in bindings]
        matches = [b for b, text in texts
                   if text is not None and _same(text, change.old_hash) and _compatible(b, wanted)]  # fmt: skip
        if not matches:
            raise BindingError(
                f"no live prompt matches patch target {change.target!r} (neither its key"
                + (f", its path {path!r}" if path else "")
                + f" nor its content hash {change.old_hash[:16]}); {len(bindings)} prompt(s) checked"
            )
        if len(matches) > 1:
            raise _ambiguous(change, matches, f"the content hash {change.old_hash[:16]}")
        out[change.target] = matches[0]
    return out


def _location_of(change: Change) -> dict[str, str]:
    found: dict[str, str] = {}
    for key in (PATH_KEY, OWNER_TYPE_KEY):
        value = change.provenance.get(key)
        if isinstance(value, str) and value:
            found[key] = value
    return found


def _slot(path: str) -> str:
    """The part of a path naming the prompt within its owner (after the last ``/``)."""
    return path.rsplit("/", 1)[-1]


def _compatible(binding: Binding, wanted: Mapping[str, str]) -> bool:
    """Same owner type and same slot, as far as both sides record them."""
    have = binding_location(binding)
    owner, want_owner = have.get(OWNER_TYPE_KEY), wanted.get(OWNER_TYPE_KEY)
    if owner and want_owner and owner != want_owner:
        return False
    path, want_path = have.get(PATH_KEY), wanted.get(PATH_KEY)
    return not (path and want_path and _slot(path) != _slot(want_path))


def _ambiguous(change: Change, candidates: Sequence[Binding], what: str) -> PatchConflictError:
    names = [binding_location(b).get(PATH_KEY) or b.key for b in candidates]
    err = PatchConflictError(
        f"patch target {change.target!r} is ambiguous: {what} matches {len(candidates)} live"
        f" prompts {names}; nothing was written (apply the patch by key or path, or pass only"
        " the intended bindings)",
        target=change.target,
    )
    err.candidates = [b.key for b in candidates]  # type: ignore[attr-defined]
    return err


def _plan(patch: Patch, resolved: Mapping[str, Binding]) -> dict[str, str]:
    """What apply would write where, after apply's own checks (nothing is written)."""
    plan: dict[str, str] = {}
    for change in patch.changes:
        binding = resolved[change.target]
        live = _safe_read(binding)
        if live is None:
            raise BindingError(f"cannot read live prompt {binding.key!r} for {change.target!r}")
        if not _same(live, change.old_hash):
            raise PatchConflictError(
                f"prompt {change.target!r} changed since the patch was made", target=change.target
            )
        fmt = getattr(binding, "template_format", None) or change.template_format
        check_placeholders(change.old, change.new, fmt, target=change.target)
        plan[change.target] = binding_location(binding).get(PATH_KEY) or binding.key
    return plan


def live_bindings(target: object) -> list[Binding]:
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
    metadata: Mapping[str, object] | None = None,
    formats: Mapping[str, str] | None = None,
    bindings: Iterable[Binding] = (),
) -> Patch:
    """A Patch turning ``originals`` into ``values`` (key -> text); unchanged keys are skipped.

    ``formats`` (key -> template format) goes into each change's provenance, and so does the
    stable location (:func:`binding_location`) of the binding in ``bindings`` with that key,
    so the patch finds the same prompt in a freshly built app.
    """
    located = {b.key: binding_location(b) for b in bindings}
    changes = []
    for key, old in originals.items():
        new = values.get(key, old)
        if new != old:
            provenance: dict[str, object] = dict(located.get(key, {}))
            if formats and key in formats:
                provenance["template_format"] = formats[key]
            changes.append(Change(key, "replace", old, new, content_hash(old), provenance))
    return Patch(changes, metadata=dict(metadata or {}))


def _as_patch(patch: object) -> Patch:
    if isinstance(patch, Patch):
        # a live patch (optimize()'s result.best_patch) can still be deployed elsewhere
        return Patch(patch.changes, patch.metadata) if patch.applied else patch
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
