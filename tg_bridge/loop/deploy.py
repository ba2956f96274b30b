"""tg_bridge.apply_patch(): deploy a reviewed patch (or a stored run's prompts) into a live app.

The store sits above the patching layer, so taking a patch from a run (``run_id=``) happens
here; writing it is :func:`tg_bridge.patching.apply.apply_patch`.
"""

from __future__ import annotations

from typing import Any, Literal, overload

from ..exceptions import UsageError
from ..patching import apply as _apply
from ..patching.patch import Patch
from ..store import RunStore

__all__ = ["apply_patch"]


@overload
def apply_patch(target: Any, patch: Any = None, *, run_id: str | None = None, store: Any = None,
                step: int | None = None, dry_run: Literal[False] = False) -> Patch: ...
@overload
def apply_patch(target: Any, patch: Any = None, *, run_id: str | None = None, store: Any = None,
                step: int | None = None, dry_run: Literal[True]) -> dict[str, str]: ...


def apply_patch(target: Any, patch: Any = None, *, run_id: str | None = None, store: Any = None,
                step: int | None = None, dry_run: bool = False) -> Patch | dict[str, str]:
    """Write ``patch`` into the live prompts of ``target``; returns the applied Patch (its
    ``.revert()`` restores the previous prompts exactly), or with ``dry_run=True`` the plan
    (change target -> live prompt path) without writing.

    Instead of ``patch``, ``run_id=`` takes the latest accepted version (or the one after
    ``step``) of a run in the run store ``store`` (a RunStore or its path; default
    ``settings.store``) — e.g. in another process than the one that optimized. Give exactly one
    of ``patch`` and ``run_id`` (UsageError otherwise; StoreError for an unknown run). Every
    other contract — targets, matching, checks, all-or-nothing — is
    :func:`tg_bridge.patching.apply.apply_patch`'s.
    """
    if (patch is None) == (run_id is None):
        raise UsageError("apply_patch needs either a patch (a Patch, its JSON or a file path)"
                         " or run_id=... (with store=...), not both or neither")
    if run_id is not None:
        if not isinstance(run_id, str) or not run_id:
            raise UsageError(f"run_id must be a non-empty string, got {run_id!r}")
        run_store = store if isinstance(store, RunStore) else RunStore(store)
        patch = run_store.version(run_id, step)
    return _apply.apply_patch(target, patch, dry_run=dry_run)  # type: ignore[call-overload]
