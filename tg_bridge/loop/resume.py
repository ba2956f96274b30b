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
    values: Mapping[str, str],
    examples: Sequence[Example],
    run_id: str,
) -> int:
    """Write the run's latest accepted prompts into the (fresh) target; returns #changes.

    A target whose prompts are only known once it ran (an ``@optimizable`` function) is run
    once on the first example to discover them. Raises StoreError when a prompt is missing
    or no longer matches the run's original text.
    """
    patch = patch_between(originals, values, metadata={"run_id": run_id, "resume": True})
    if not patch.changes:
        return 0
    keys = {c.target for c in patch.changes}
    if not keys <= {b.key for b in runner.bindings()} and examples:
        await run_examples(runner, examples, [0], label="resume discovery")
    try:
        resolved = resolve_targets(runner.bindings(), patch.changes)
        patch.apply(resolver=resolved.__getitem__)
    except PatchError as exc:
        raise StoreError(
            f"cannot resume run {run_id}: the target's prompts do not match the run's"
            f" originals ({exc})"
        ) from exc
    log.info("run %s: re-applied %d accepted prompt change(s)", run_id, len(patch.changes))
    return len(patch.changes)
