"""The judge's verdicts of one optimize() run, remembered per (prompts, example, output).

A verdict is re-asked only when something it depends on changed. The prompts are part of the
key on purpose: the loop re-runs the same prompts on the same examples (the final check after
a step that kept prompts, the next epoch's forward pass) and an identical output then gets the
verdict it already has, without a call; under other prompts the judge is asked afresh.

Keys are SHA-256 digests of the canonical JSON of the parts, so a long output costs 32 bytes
of memory, and distinct parts can never collide by concatenation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..variable import content_hash
from .batching import Example

__all__ = ["VerdictCache", "prompts_key"]

#: a run scores at most a few thousand (prompts, example) pairs; the bound only stops a
#: pathological run (huge sets, many epochs) from growing without limit
MAX_ENTRIES = 100_000

Verdict = tuple[float, "str | None"]


def prompts_key(values: Mapping[str, str]) -> str:
    """A digest of the live prompt texts (key -> text), independent of their order."""
    return _digest(sorted(values.items()))


class VerdictCache:
    """Judge verdicts (score, critique) by (instruction, prompts, example, output)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._verdicts: dict[str, Verdict] = {}
        self._max = max_entries
        #: verdicts served from memory (no judge call)
        self.hits = 0

    @staticmethod
    def key(instruction: str, prompts: str, example: Example, output: str) -> str:
        """The cache key; ``prompts`` is a :func:`prompts_key` digest."""
        shown = {"inputs": dict(example.inputs), "expected": example.expected}
        return _digest([instruction, prompts, shown, output])

    def get(self, key: str) -> Verdict | None:
        found = self._verdicts.get(key)
        if found is not None:
            self.hits += 1
        return found

    def put(self, key: str, verdict: Verdict) -> None:
        if len(self._verdicts) >= self._max:  # oldest first: dicts keep insertion order
            self._verdicts.pop(next(iter(self._verdicts)))
        self._verdicts[key] = verdict

    def __len__(self) -> int:
        return len(self._verdicts)


def _digest(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=repr)
    return content_hash(text)
