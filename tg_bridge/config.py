"""Process defaults (:func:`configure`) and scoped overrides (:func:`context`).

Resolution order for every setting: an explicit argument to the call, then the innermost
active :func:`context` (a ContextVar, so it follows threads started with a copied context
and asyncio tasks), then :func:`configure`, then the built-in default.

Nothing here has side effects at import time.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import threading
from collections.abc import Iterator
from typing import Any

from .exceptions import ConfigurationError

__all__ = ["Settings", "configure", "context", "get_settings"]


@dataclasses.dataclass(frozen=True)
class Settings:
    """All tunable defaults. Frozen: change them with :func:`configure` or :func:`context`.

    Fields:
        engine: the forward/default engine (an Engine, a spec string such as ``"local"`` or
            ``"openai:gpt-4o-mini"``, or a host model object). ``None`` means ``"local"``.
        backward_engine: engine for gradients and updates; ``None`` means ``engine``.
        max_concurrency: shared limit on LLM calls in flight (per event loop).
        timeout: per-attempt timeout in seconds.
        deadline: overall deadline of one engine call in seconds, every retry and wait
            included; past it the call fails with EngineDeadlineError.
        max_retry_after: longest server ``Retry-After`` honoured (seconds); a longer one
            fails the call at once with EngineDeadlineError instead of waiting.
        max_retries: retries on 429, 5xx and connection errors (0 = no retry).
        cache: path of the SQLite completion cache, or ``None`` (off).
        mask_secrets: mask API keys, bearer tokens and e-mail addresses in span content
            before it is sent to an engine.
        store: path of the SQLite run store.
        max_gradients: more gradients than this on one variable are summarized first.
        max_spans: capture keeps at most this many spans per Run (the rest are counted).
        tool_descriptions: the descriptions of an agent's tools are parameters too (opt-in;
            ``optimize(..., tool_descriptions=True)`` turns it on for one run).
        host_feedback: with no engine configured, let the target's own host model (e.g. a
            ChatOpenAI in the chain) write feedback and updates; False keeps them on the
            embedded model.
    """

    engine: Any = None
    backward_engine: Any = None
    max_concurrency: int = 16
    timeout: float = 120.0
    deadline: float = 120.0
    max_retry_after: float = 30.0
    max_retries: int = 4
    cache: str | None = None
    mask_secrets: bool = True
    store: str = ".tg_bridge/runs.db"
    max_gradients: int = 8
    max_spans: int = 20_000
    tool_descriptions: bool = False
    host_feedback: bool = True


_FIELDS = {f.name for f in dataclasses.fields(Settings)}
_lock = threading.Lock()
_process_settings = Settings()
# the default is never mutated: context() sets a new dict (so B039's shared-default risk is absent)
_overrides: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar(
    "tg_bridge_settings_overrides", default={}  # noqa: B039
)


def _check(kwargs: dict[str, Any]) -> None:
    unknown = sorted(set(kwargs) - _FIELDS)
    if unknown:
        raise ConfigurationError(
            f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(_FIELDS))}"
        )
    if "max_concurrency" in kwargs and (
        not isinstance(kwargs["max_concurrency"], int) or kwargs["max_concurrency"] < 1
    ):
        raise ConfigurationError("max_concurrency must be an integer >= 1")
    if "timeout" in kwargs and not (
        isinstance(kwargs["timeout"], (int, float)) and kwargs["timeout"] > 0
    ):
        raise ConfigurationError("timeout must be a positive number of seconds")
    for name in ("deadline", "max_retry_after"):
        value = kwargs.get(name)
        if name in kwargs and (isinstance(value, bool) or not isinstance(value, (int, float))
                               or not 0 < value < float("inf")):
            raise ConfigurationError(f"{name} must be a positive, finite number of seconds")
    if "max_retries" in kwargs and (
        not isinstance(kwargs["max_retries"], int) or kwargs["max_retries"] < 0
    ):
        raise ConfigurationError("max_retries must be an integer >= 0")
    if "max_gradients" in kwargs and (
        not isinstance(kwargs["max_gradients"], int) or kwargs["max_gradients"] < 1
    ):
        raise ConfigurationError("max_gradients must be an integer >= 1")
    if "host_feedback" in kwargs and not isinstance(kwargs["host_feedback"], bool):
        raise ConfigurationError("host_feedback must be True or False")


def configure(**kwargs: Any) -> Settings:
    """Set process-wide defaults; returns the new process settings. Thread-safe.

    Raises :class:`ConfigurationError` for an unknown name or an invalid value.
    """
    global _process_settings
    _check(kwargs)
    with _lock:
        _process_settings = dataclasses.replace(_process_settings, **kwargs)
        return _process_settings


def reset() -> None:
    """Restore the built-in defaults (for tests)."""
    global _process_settings
    with _lock:
        _process_settings = Settings()


@contextlib.contextmanager
def context(**kwargs: Any) -> Iterator[Settings]:
    """Override settings for the current context (thread / asyncio task) only.

    Nested contexts stack; leaving restores the previous values. Yields the effective settings.
    """
    _check(kwargs)
    token = _overrides.set({**_overrides.get(), **kwargs})
    try:
        yield get_settings()
    finally:
        _overrides.reset(token)


def get_settings(**explicit: Any) -> Settings:
    """The effective settings here; non-None ``explicit`` values win over everything."""
    merged = {**_overrides.get(), **{k: v for k, v in explicit.items() if v is not None}}
    if not merged:
        return _process_settings
    _check(merged)
    return dataclasses.replace(_process_settings, **merged)
