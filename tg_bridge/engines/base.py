"""The Engine protocol, the Completion record, and BaseEngine (retries, limit, cache, usage).

Every LLM call tg_bridge makes goes through :meth:`Engine.acomplete`. ``messages`` is a list
of ``{"role": ..., "content": ...}`` dicts. ``response_format`` is ``None``, a JSON schema
dict, or a pydantic model class; the Completion then carries ``parsed``.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import json
import logging
import math
import random
import time
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from .._internal import internal_call
from .._utf8 import utf8_safe
from ..config import get_settings
from ..exceptions import (
    EngineDeadlineError,
    EngineError,
    EngineTimeoutError,
    TgBridgeError,
    UsageError,
)
from .limits import SlotTimeout, concurrency_slot
from .sync import run_sync
from .usage import record_usage

__all__ = ["BaseEngine", "Completion", "Engine", "Message", "attempt_timeout", "schema_of"]

log = logging.getLogger(__name__)

# The time left for the attempt in progress (min of the per-attempt timeout and what is left
# of the call's deadline), so a subclass can hand its HTTP client the same bound.
_attempt_timeout: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "tg_bridge_attempt_timeout", default=None
)


def attempt_timeout(default: float) -> float:
    """Seconds the current attempt may take (``default`` outside :class:`BaseEngine`)."""
    value = _attempt_timeout.get()
    return default if value is None else value

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
    """Shared machinery: concurrency limit, timeouts, bounded retries, cache, usage.

    Subclasses implement :meth:`_call` (one attempt, raising :class:`EngineError` with
    ``retryable`` set correctly, and ``retry_after`` in ``raw`` when the server sent one).
    ``complete()`` is a blocking wrapper that also works inside a running event loop.

    Time bounds (each: explicit argument, else ``context()``/``configure()``): ``timeout``
    bounds one attempt; ``deadline`` bounds the whole call, retries, backoff and the wait for
    a concurrency slot included; a server's ``Retry-After`` is honoured up to
    ``max_retry_after``. When a wait would pass the deadline or exceed that cap the call
    fails at once (no pointless sleep) with :class:`EngineDeadlineError` (retryable).
    ``_clock``/``_sleep`` are the time sources (tests replace them on an instance).

    Engines that run one call at a time (``queues_calls``, the in-process model) are the
    exception: there the time a call spends waiting for a concurrency slot or for its turn
    (:meth:`_start`) counts against neither ``timeout`` nor ``deadline``, which then bound the
    engine's own work. Their queue always drains (each answer is bounded by its timeout and
    ``max_tokens``), so waiting is not a failure; counting it made any burst of N calls fail
    as soon as N answers took longer than the deadline, however healthy the model.
    """

    id: str = "base"
    model: str = ""
    #: True when the backend can constrain output to a JSON schema.
    supports_structured: bool = True
    #: True when the engine serializes its calls (see the class docstring).
    queues_calls: bool = False

    def __init__(
        self,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        cache: Any = None,
        deadline: float | None = None,
        max_retry_after: float | None = None,
    ) -> None:
        self._timeout = timeout
        self._max_retries = max_retries
        self._deadline = deadline
        self._max_retry_after = max_retry_after
        self._cache_setting = cache
        # checked now so a bad value fails at construction, not inside the first call
        get_settings(deadline=deadline, max_retry_after=max_retry_after)

    _clock = staticmethod(time.monotonic)
    _sleep = staticmethod(asyncio.sleep)

    # -- subclass hook --------------------------------------------------------------------
    async def _call(
        self, messages: list[dict[str, str]], response_format: Any, params: dict[str, Any]
    ) -> Completion:
        raise NotImplementedError

    async def _start(
        self, messages: list[dict[str, str]], response_format: Any, params: dict[str, Any]
    ) -> Awaitable[Completion]:
        """Wait for the engine's turn, then return the awaitable of the attempt's answer.

        Only what the returned awaitable does is bounded by the attempt's time budget; for a
        ``queues_calls`` engine the wait in here is not counted at all. The default starts
        :meth:`_call` at once. May raise :class:`EngineError` like :meth:`_call`.
        """
        return self._call(messages, response_format, params)

    # -- public API -----------------------------------------------------------------------
    async def acomplete(
        self,
        messages: Sequence[Message],
        *,
        response_format: Any = None,
        **params: Any,
    ) -> Completion:
        """One completion. Raises :class:`EngineError` after bounded retries. A lone
        surrogate in a message is sent as U+FFFD (UTF-8 cannot carry it)."""
        msgs = _check_messages(messages)
        with internal_call():
            return await self._acomplete(msgs, response_format, params)

    async def _acomplete(
        self, msgs: list[dict[str, str]], response_format: Any, params: dict[str, Any]
    ) -> Completion:
        settings = get_settings(timeout=self._timeout, max_retries=self._max_retries,
                                deadline=self._deadline, max_retry_after=self._max_retry_after)
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
        give_up_at = self._clock() + settings.deadline
        attempt = 0
        while True:
            left = give_up_at - self._clock()
            if left <= 0:
                raise self._deadline_error(attempt, settings, None, None)
            queued_at = self._clock()
            budget = settings.timeout
            try:
                slot_wait = None if self.queues_calls else left
                async with concurrency_slot(settings.max_concurrency, slot_wait):
                    work = await self._start(msgs, response_format, dict(params))
                    if self.queues_calls:
                        # waiting in the queue is not the engine's work (class docstring)
                        give_up_at += self._clock() - queued_at
                    # Latency counts the call only, not the wait for a free slot.
                    started = time.perf_counter()
                    budget = min(settings.timeout, max(give_up_at - self._clock(), 0.0))
                    token = _attempt_timeout.set(budget)
                    try:
                        completion = await asyncio.wait_for(work, budget)
                    finally:
                        _attempt_timeout.reset(token)
                if not completion.latency:
                    completion = dataclasses.replace(
                        completion, latency=time.perf_counter() - started
                    )
                return completion
            except SlotTimeout:
                raise self._deadline_error(attempt, settings, None, None) from None
            except asyncio.TimeoutError:
                error: EngineError = EngineTimeoutError(
                    f"no answer within {budget:g}s",
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
            attempt += 1
            if not error.retryable or attempt > settings.max_retries:
                raise error
            asked = _retry_after_of(error)
            if asked is not None and asked > settings.max_retry_after:
                raise self._deadline_error(attempt, settings, error, asked)
            delay = _backoff(attempt - 1, error, cap=settings.max_retry_after)
            if self._clock() + delay >= give_up_at:
                raise self._deadline_error(attempt, settings, error, asked)
            log.info("engine %s: retry %d after %.2fs (%s)", self.id, attempt, delay, error)
            await self._sleep(delay)

    def _deadline_error(
        self, attempts: int, settings: Any, last: EngineError | None, asked: float | None
    ) -> EngineDeadlineError:
        if asked is not None and asked > settings.max_retry_after:
            why = (f"the server asked to retry after {asked:g}s, more than max_retry_after="
                   f"{settings.max_retry_after:g}s")
        else:
            why = f"the deadline of {settings.deadline:g}s (retries included) ran out"
        last_text = f"; last error: {last}" if last is not None else ""
        return EngineDeadlineError(
            f"gave up after {attempts} attempt(s): {why}{last_text}",
            attempts=attempts,
            engine_id=self.id,
            status=None if last is None else last.status,
            raw={"retry_after": asked, "body": None if last is None else
                 (last.raw.get("body") if isinstance(last.raw, Mapping) else last.raw)},
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id}>"


def _retry_after_of(error: EngineError) -> float | None:
    """The server's Retry-After in seconds, when the error carries a usable one."""
    value = error.raw.get("retry_after") if isinstance(error.raw, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) and value >= 0 else None  # NaN/inf are not wishes


def _backoff(attempt: int, error: EngineError, cap: float = 30.0) -> float:
    """Exponential backoff with full jitter, honouring a server's Retry-After (up to ``cap``)."""
    retry_after = _retry_after_of(error)
    if retry_after is not None:
        return min(retry_after, cap) + random.uniform(0, 0.1)
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
        # a lone surrogate (JSON trace text, end-user feedback) cannot leave as UTF-8: the
        # OpenAI SDK and llama.cpp both raise on it, failing every call that quotes it
        out.append({"role": str(msg["role"]), "content": utf8_safe(msg["content"])})
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
