"""Examples and deterministic minibatches.

Batches depend only on ``(len(trainset), batch_size, seed, epoch)``, so a resumed run sees
exactly the batches the crashed one would have seen.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..exceptions import UsageError
from ..variable import content_hash

__all__ = ["Example", "PlannedStep", "as_examples", "fingerprint", "plan_steps"]


@dataclasses.dataclass(frozen=True)
class Example:
    """One training or validation example: the app's input mapping and an optional expected
    output (whatever your metric compares against)."""

    inputs: Mapping[str, Any]
    expected: Any = None
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    #: the host's run config for this example (a LangChain ``RunnableConfig``, e.g.
    #: ``{"configurable": {"session_id": "s1"}}``); merged over ``optimize(config=...)``
    config: Mapping[str, Any] | None = None

    _FIELDS = ("inputs", "expected", "metadata", "config")

    # Metrics written for the dict form (example["expected"]) work unchanged on Examples.
    def __getitem__(self, key: str) -> Any:
        if key not in self._FIELDS:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        """``example.get("expected")`` like the dict form; ``default`` for other keys."""
        return getattr(self, key) if key in self._FIELDS else default

    def keys(self) -> tuple[str, ...]:
        return self._FIELDS

    def __post_init__(self) -> None:
        if not isinstance(self.inputs, Mapping):
            raise UsageError(f"Example.inputs must be a mapping, got {type(self.inputs).__name__}")
        for key in self.inputs:
            if not isinstance(key, str):
                raise UsageError(f"Example.inputs keys must be str, got {key!r}")
        if self.config is not None and not isinstance(self.config, Mapping):
            raise UsageError(f"Example.config must be a mapping, got {type(self.config).__name__}")


@dataclasses.dataclass(frozen=True)
class PlannedStep:
    """Step ``number`` (1-based, global over epochs) trains on trainset indices ``batch``."""

    number: int
    epoch: int
    batch: tuple[int, ...]


def as_examples(items: Iterable[Any] | None, *, name: str = "trainset") -> list[Example]:
    """Validate and convert examples: Example records, ``{"inputs": {...}, "expected": ...}``
    dicts, or ``(inputs, expected)`` pairs. Raises :class:`UsageError` naming the bad item."""
    if items is None:
        return []
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
        raise UsageError(f"{name} must be a list of examples, got {type(items).__name__}")
    out = []
    for i, item in enumerate(items):
        try:
            out.append(_one(item))
        except UsageError as exc:
            raise UsageError(f"{name}[{i}]: {exc}") from None
    return out


def _one(item: Any) -> Example:
    if isinstance(item, Example):
        return item
    if isinstance(item, Mapping):
        unknown = sorted(set(item) - {"inputs", "expected", "metadata", "config"})
        if "inputs" not in item or unknown:
            raise UsageError(
                'an example dict needs an "inputs" mapping and may have "expected",'
                f' "metadata" and "config" (got keys {sorted(item)})'
            )
        return Example(item["inputs"], item.get("expected"), item.get("metadata") or {},
                       item.get("config"))
    if isinstance(item, (tuple, list)) and len(item) == 2:
        return Example(item[0], item[1])
    raise UsageError(
        f"cannot use {type(item).__name__} as an example: pass an Example,"
        ' {"inputs": {...}, "expected": ...} or an (inputs, expected) pair'
    )


def plan_steps(n: int, *, batch_size: int, epochs: int, seed: int) -> list[PlannedStep]:
    """Every step of a run: each epoch shuffles ``range(n)`` with a seed derived from
    ``(seed, epoch)`` and cuts it into batches (the last one may be smaller)."""
    if n < 1:
        raise UsageError("trainset is empty")
    steps: list[PlannedStep] = []
    for epoch in range(epochs):
        order = list(range(n))
        random.Random(f"tg_bridge:{seed}:{epoch}").shuffle(order)
        for start in range(0, n, batch_size):
            steps.append(PlannedStep(len(steps) + 1, epoch, tuple(order[start : start + batch_size])))
    return steps


def fingerprint(examples: Sequence[Example]) -> str:
    """A stable hash of a dataset (resume refuses a different trainset)."""
    data = [[dict(e.inputs), e.expected] for e in examples]
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, default=repr)
    return content_hash(text)[:16]  # a lone surrogate (trace text) hashes too
