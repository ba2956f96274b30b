"""Resuming a run from the store: compatibility checks and re-applying the accepted prompts.

The store holds, per committed step, the prompt values after its accept/revert decision. A
resumed run applies ``originals -> latest values`` to the fresh target (through
:func:`tg_bridge.apply_patch`, so a target whose prompts differ from the run's originals is
refused rather than silently mixed) and continues at the first step not committed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from ..exceptions import PatchError, StoreError
from ..patching.apply import patch_between, resolve_targets
from .batching import Example
from .evaluation import Runner, run_examples

__all__ = ["check_compatible", "restore_values"]

log = logging.getLogger(__name__)

#: Config entries a resumed run must share with the original (they decide the batches).
_MUST_MATCH = ("trainset", "valset", "batch_size", "seed", "mode", "scoring", "accept",
               "min_delta")
#: What a run stored before an entry existed used (the gate kept ties before "accept").
_BEFORE = {"accept": "no_drop", "min_delta": 0.0}


def check_compatible(stored: Mapping[str, Any], requested: Mapping[str, Any], run_id: str) -> None:
    """StoreError naming the first difference that would change the steps' batches or scores."""
    for name in _MUST_MATCH:
        was = stored.get(name, _BEFORE.get(name))
        if was != requested.get(name, _BEFORE.get(name)):
            raise StoreError(
                f"cannot resume run {run_id}: {name} differs ({was!r} stored,"
                f" {requested.get(name)!r} now); start a new run instead"
            )


async def restore_values(
    runner: Runner,
    originals: Mapping[str, str],
    values: Mapping[str, str] | Sequence[Mapping[str, str]],
    examples: Sequence[Example],
    run_id: str,
) -> int:
    """Write the run's accepted prompts into the (fresh) target; returns #prompts changed.

    ``values`` is the latest version (key -> text) or, better, every committed version in
    order: they are applied one after the other, as the run applied them, so each goes
    through :meth:`Patch.apply`'s checks against the text it replaced (a value may grow by
    the template rules' factor per step, not in one jump from the original). All or
    nothing: on a failure the versions already applied are reverted. A target whose prompts
    are only known once it ran (an ``@optimizable`` function) is run once on the first
    example to discover them. Raises StoreError when a prompt is missing, no longer matches
    the run's original text, or a stored value fails the checks.
    """
    versions = [values] if isinstance(values, Mapping) else list(values)
    patches = []
    live = dict(originals)
    for version in versions:
        following = {**live, **{k: v for k, v in version.items() if k in live}}
        patch = patch_between(live, following, metadata={"run_id": run_id, "resume": True})
        if patch.changes:
            patches.append(patch)
        live = following
    changed = {c.target for p in patches for c in p.changes}
    if not changed:
        return 0
    if not changed <= {b.key for b in runner.bindings()} and examples:
        await run_examples(runner, examples, [0], label="resume discovery")
    applied = []
    try:
        for patch in patches:
            resolved = resolve_targets(runner.bindings(), patch.changes)
            applied.append(patch.apply(resolver=resolved.__getitem__))
    except PatchError as exc:
        for patch in reversed(applied):
            patch.revert()
        raise StoreError(
            f"cannot resume run {run_id}: the target's prompts do not match the run's"
            f" originals, or a stored value fails the checks ({exc})"
        ) from exc
    log.info("run %s: re-applied %d accepted prompt change(s)", run_id, len(changed))
    return len(changed)
