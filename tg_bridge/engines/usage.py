"""Usage accounting: calls, cached calls, tokens and latency, aggregated per scope.

``with tg_bridge.usage() as u:`` collects every completion made inside the block (including
asyncio tasks and threads started with a copied context). Scopes nest: a completion counts
in every enclosing scope. Meters are thread-safe.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import Completion

__all__ = ["Usage", "record_usage", "usage"]


@dataclasses.dataclass
class Usage:
    """Counters for one scope. ``calls`` includes cached calls; cached calls cost no tokens."""

    calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency: float = 0.0
    _lock: threading.Lock = dataclasses.field(
        default_factory=threading.Lock, repr=False, compare=False
    )

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, completion: Completion) -> None:
        with self._lock:
            self.calls += 1
            if completion.cached:
                self.cached_calls += 1
            else:
                self.prompt_tokens += completion.prompt_tokens
                self.completion_tokens += completion.completion_tokens
                self.latency += completion.latency

    def merge(self, other: Usage) -> None:
        """Add another meter's counters into this one."""
        with self._lock:
            self.calls += other.calls
            self.cached_calls += other.cached_calls
            self.prompt_tokens += other.prompt_tokens
            self.completion_tokens += other.completion_tokens
            self.latency += other.latency

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "cached_calls": self.cached_calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "latency": round(self.latency, 6),
        }

    def __str__(self) -> str:
        return (
            f"{self.calls} calls ({self.cached_calls} cached), "
            f"{self.prompt_tokens}+{self.completion_tokens} tokens"
        )


_meters: contextvars.ContextVar[tuple[Usage, ...]] = contextvars.ContextVar(
    "tg_bridge_usage_meters", default=()
)


@contextlib.contextmanager
def usage(meter: Usage | None = None) -> Iterator[Usage]:
    """Count every completion made in this block into ``meter`` (a new one by default)."""
    meter = meter if meter is not None else Usage()
    token = _meters.set(_meters.get() + (meter,))
    try:
        yield meter
    finally:
        _meters.reset(token)


def record_usage(completion: Completion) -> None:
    """Add ``completion`` to every active meter (called by BaseEngine)."""
    for meter in _meters.get():
        meter.add(completion)
