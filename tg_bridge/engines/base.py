"""The Engine protocol, the Completion record, and BaseEngine (retries, limit, cache, usage).

Every LLM call tg_bridge makes goes through :meth:`Engine.acomplete`. ``messages`` is a list
of ``{"role": ..., "content": ...}`` dicts. ``response_format`` is ``None``, a JSON schema
dict, or a pydantic model class; the Completion then carries ``parsed``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from ..config import get_settings
from .._internal import internal_call
from ..exceptions import EngineError, EngineTimeoutError, TgBridgeError, UsageError
from .limits import concurrency_slot
from .sync import run_sync
from .usage import record_usage

__all__ = ["BaseEngine", "Completion", "Engine", "Message", "schema_of"]

log = logging.getLogger(__name__)

Message = Mapping[str, str]


@dataclasses.dataclass(frozen=True)
class Completion:
    """One engine answer.

    ``text``: the raw text; ``parsed``: the JSON object (or pydantic instance) when a
    response_format was requested; ``prompt_tokens``/``completion_tokens``: usage reported by
    the engine (0 for a cache hit); ``model``; ``latency`` in seconds; ``cached``.
    """

    text: str
    parsed: Any = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ""
    latency: float = 0.0
    cached: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@runtime_checkable
class Engine(Protocol):
    """What tg_bridge needs from an LLM. ``id`` names the engine in errors and cache keys."""

    id: str
    model: str

    async def acomplete(
        self,
        messages: Sequence[Message],
        *,
        response_format: Any = None,
        **params: Any,
    ) -> Completion: ...

    def complete(
        self,
        messages: Sequence[Message],
        *,
        response_format: Any = None,
        **params: Any,
    ) -> Completion: ...


def schema_of(response_format: Any) -> dict[str, Any] | None:
    """The JSON schema for a response_format (a schema dict or a pydantic model class)."""
    if response_format is None:
        return None
    if isinstance(response_format, Mapping):
        return dict(response_format)
    model_json_schema = getattr(response_format, "model_json_schema", None)
    if callable(model_json_schema):
        return model_json_schema()
    raise UsageError("response_format must be a JSON schema dict or a pydantic model class")


def parse_structured(text: str, response_format: Any) -> Any:
    """Parse ``text`` as the requested structure; raises ValueError when it is not."""
    data = json.loads(_strip_fences(text))
    validate = getattr(response_format, "model_validate", None)
    if callable(validate):
        return validate(data)
    return data


def parsed_or_none(text: str, response_format: Any) -> Any:
    """The structured answer when one was requested and ``text`` parses, else None
    (``Completion.parsed`` is None for an unreadable answer; callers decide what to do)."""
    if response_format is None:
        return None
    try:
        return parse_structured(text, response_format)
    except ValueError:
        log.debug("structured answer did not parse: %.200s", text)
        return None


def _strip_fences(text: str) -> str:
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.split("\n", 1)[1] if "\n" in stripped else ""
        if stripped.rstrip().endswith("```"):
            stripped = stripped.rstrip()[:-3]
    start = min((i for i in (stripped.find("{"), stripped.find("[")) if i >= 0), default=-1)
    return stripped[start:] if start > 0 else stripped


class BaseEngine:
    """Shared machinery: concurrency limit, per-call timeout, bounded retries, cache, usage.

    Subclasses implement :meth:`_call` (one attempt, raising :class:`EngineError` with
    ``retryable`` set correctly, and ``retry_after`` in ``raw`` when the server sent one).
    ``complete()`` is a blocking wrapper that also works inside a running event loop.
    """

    id: str = "base"
    model: str = ""
    #: True when the backend can constrain output to a JSON schema.
    supports_structured: bool = True

    def __init__(
        self,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        cache: Any = None,
    ) -> None:
        self._timeout = timeout
        self._max_retries = max_retries
        self._cache_setting = cache

    # -- subclass hook --------------------------------------------------------------------
    async def _call(
        self, messages: list[dict[str, str]], response_format: Any, params: dict[str, Any]
    ) -> Completion:
        raise NotImplementedError

    # -- public API -----------------------------------------------------------------------
    async def acomplete(
        self,
        messages: Sequence[Message],
        *,
        response_format: Any = None,
        **params: Any,
    ) -> Completion:
        """One completion. Raises :class:`EngineError` after bounded retries."""
        msgs = _check_messages(messages)
        with internal_call():
            return await self._acomplete(msgs, response_format, params)

    async def _acomplete(
        self, msgs: list[dict[str, str]], response_format: Any, params: dict[str, Any]
    ) -> Completion:
        settings = get_settings(timeout=self._timeout, max_retries=self._max_retries)
        cache = self._cache()
        key = None
        if cache is not None:
            key = cache.key(
                self.id, self.model, msgs, schema_of(response_format), self._key_params(params)
            )
            hit = cache.get(key)
            if hit is not None:
                completion = _from_cache(hit, response_format)
                record_usage(completion)
                return completion
        completion = await self._with_retries(msgs, response_format, params, settings)
        if cache is not None and key is not None:
            cache.put(key, completion)
        record_usage(completion)
        return completion

    def complete(
        self,
        messages: Sequence[Message],
        *,
        response_format: Any = None,
        **params: Any,
    ) -> Completion:
        """Blocking :meth:`acomplete`; safe inside a running loop (runs on a helper thread)."""
        return run_sync(self.acomplete(messages, response_format=response_format, **params))

    # -- machinery ------------------------------------------------------------------------
    def _key_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Everything besides messages and schema that shapes the answer (for cache keys).

        Subclasses with per-engine defaults (temperature, endpoint) override this so two
        engines that would answer differently never share a cache entry.
        """
        return params

    def _cache(self) -> Any:
        setting = self._cache_setting if self._cache_setting is not None else get_settings().cache
        if not setting:
            return None
        from .cache import open_cache

        return open_cache(setting)

    async def _with_retries(
        self, msgs: list[dict[str, str]], response_format: Any, params: dict[str, Any], settings: Any
    ) -> Completion:
        attempt = 0
        while True:
            try:
                async with concurrency_slot(settings.max_concurrency):
                    # Latency counts the call only, not the wait for a free slot.
                    started = time.perf_counter()
                    completion = await asyncio.wait_for(
                        self._call(msgs, response_format, dict(params)), settings.timeout
                    )
                if not completion.latency:
                    completion = dataclasses.replace(
                        completion, latency=time.perf_counter() - started
                    )
                return completion
            except asyncio.TimeoutError:
                error: EngineError = EngineTimeoutError(
                    f"no answer within {settings.timeout:g}s",
                    engine_id=self.id,
                    retryable=True,
                    raw={"retry_after": None, "body": None},
                )
            except EngineError as exc:
                error = exc
            except TgBridgeError:
                raise
            except Exception as exc:
                # A bug or an unexpected library error inside _call: report it in our own
                # error tree (not retried: it would most likely fail the same way again).
                raise EngineError(
                    f"unexpected {type(exc).__name__} in the engine: {exc}",
                    engine_id=self.id,
                    raw={"retry_after": None, "body": repr(exc)},
                ) from exc
            if not error.retryable or attempt >= settings.max_retries:
                raise error
            delay = _backoff(attempt, error)
            log.info("engine %s: retry %d after %.2fs (%s)", self.id, attempt + 1, delay, error)
            attempt += 1
            await asyncio.sleep(delay)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id}>"


def _backoff(attempt: int, error: EngineError) -> float:
    """Exponential backoff with full jitter, honouring a server's Retry-After."""
    retry_after = None
    if isinstance(error.raw, Mapping):
        retry_after = error.raw.get("retry_after")
    if isinstance(retry_after, (int, float)) and retry_after >= 0:
        return min(float(retry_after), 60.0) + random.uniform(0, 0.1)
    base = min(0.25 * (2**attempt), 8.0)
    return random.uniform(base / 2, base)


def _check_messages(messages: Sequence[Message]) -> list[dict[str, str]]:
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence) or not messages:
        raise UsageError("messages must be a non-empty list of {'role', 'content'} dicts")
    out = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, Mapping) or "role" not in msg or "content" not in msg:
            raise UsageError(f"messages[{i}] must be a dict with 'role' and 'content'")
        if not isinstance(msg["content"], str):
            raise UsageError(f"messages[{i}]['content'] must be a str")
        out.append({"role": str(msg["role"]), "content": msg["content"]})
    return out


def _from_cache(hit: Completion, response_format: Any) -> Completion:
    parsed = hit.parsed
    if response_format is not None:
        try:
            parsed = parse_structured(hit.text, response_format)
        except ValueError:
            parsed = hit.parsed
    return dataclasses.replace(
        hit, parsed=parsed, cached=True, prompt_tokens=0, completion_tokens=0, latency=0.0
    )
