"""OpenAIEngine: any OpenAI-compatible chat-completions server (OpenAI, vLLM, llama.cpp, Ollama).

Contract:
- Built on ``openai.AsyncOpenAI`` with the SDK's own retries OFF (``max_retries=0``):
  :class:`~tg_bridge.engines.base.BaseEngine` owns retries, backoff, timeout and the limit.
- Errors become :class:`EngineError` (``engine_id``, ``status``, ``retryable``,
  ``raw={"retry_after": seconds | None, "body": text}``). Retryable: 408, 429, 5xx, connection
  errors, timeouts, bodies that are not valid JSON, answers with no ``choices``.
- Structured output is asked as ``response_format={"type": "json_schema", ...}``. When the
  server rejects that (a 400/422 naming response_format / json_schema), the engine falls back
  for the rest of its life, first to llama.cpp-style ``{"type": "json_object", "schema": ...}``,
  then to plain text with the schema given in a system instruction. ``Completion.parsed`` is
  None when the text does not parse: callers decide what to do.
- One SDK client per event loop (an httpx pool belongs to the loop that opened it); a loop
  made by the sync API closes its client before it ends (``sync.on_loop_close``); in your own
  loop, ``await engine.aclose()`` when done. Thread-safe.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import os
import re
import threading
import time
from typing import Any

from ..config import get_settings
from ..exceptions import ConfigurationError, EngineError, EngineTimeoutError, MissingExtraError
from .base import BaseEngine, Completion, Message, attempt_timeout, parsed_or_none, schema_of
from .prompts import JSON_ANSWER_INSTRUCTION
from .sync import on_loop_close

__all__ = ["OpenAIEngine"]

log = logging.getLogger(__name__)

# Keyword arguments of chat.completions.create we pass through as is; anything else goes to
# ``extra_body`` (servers such as llama.cpp and vLLM accept extra sampling fields).
_SDK_PARAMS = frozenset(
    {
        "frequency_penalty", "logit_bias", "logprobs", "max_completion_tokens", "max_tokens",
        "metadata", "n", "presence_penalty", "reasoning_effort", "seed", "service_tier", "stop",
        "store", "temperature", "top_logprobs", "top_p", "user",
    }
)
_MODES = ("json_schema", "json_object", "text")
_FORMAT_WORDS = re.compile(r"response_format|json_schema|json_object", re.IGNORECASE)


class OpenAIEngine(BaseEngine):
    """Chat completions from an OpenAI-compatible server.

    ``model`` (else env ``OPENAI_MODEL``), ``base_url`` (else env ``OPENAI_BASE_URL``, else
    OpenAI), ``api_key`` (else env ``OPENAI_API_KEY``; with a ``base_url`` a dummy key is used
    when none is set). ``defaults`` are sampling parameters sent with every call (per-call
    params win). Raises :class:`ConfigurationError` when the model or the key is missing.
    """

    supports_structured = True

    def __init__(
        self,
        model: str | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        cache: Any = None,
        deadline: float | None = None,
        max_retry_after: float | None = None,
        **defaults: Any,
    ) -> None:
        super().__init__(timeout=timeout, max_retries=max_retries, cache=cache,
                         deadline=deadline, max_retry_after=max_retry_after)
        model = model or os.environ.get("OPENAI_MODEL")
        if not model:
            raise ConfigurationError(
                "the openai engine needs a model: engine('openai:MODEL'), model=..., "
                "or the OPENAI_MODEL environment variable"
            )
        self.model = model
        self.id = f"openai:{model}"
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            if not self.base_url:
                raise ConfigurationError(
                    "the openai engine needs an API key: api_key=... or OPENAI_API_KEY "
                    "(for a local server pass base_url=...; any dummy key works there)"
                )
            key = "not-needed"
        self._api_key = key
        self.defaults = defaults
        self._mode = _MODES[0]
        self._clients: dict[asyncio.AbstractEventLoop, Any] = {}
        self._clients_lock = threading.Lock()
        # Import the SDK now rather than inside the first call: its import (~0.5 s) would
        # count against that call's timeout and block the event loop while it runs.
        _openai_module()

    @property
    def endpoint(self) -> str:
        """The URL requests go to (``base_url``, else OpenAI's API), for messages."""
        return self.base_url or "https://api.openai.com/v1"

    @property
    def structured_mode(self) -> str:
        """How structured output is requested now: json_schema, json_object or text."""
        return self._mode

    # -- clients ---------------------------------------------------------------------------
    def _client(self) -> Any:
        openai = _openai_module()
        loop = asyncio.get_running_loop()
        with self._clients_lock:
            # Forget clients of closed loops; their connections died with the loop.
            for old in [lp for lp in self._clients if lp.is_closed()]:
                del self._clients[old]
            client = self._clients.get(loop)
            if client is None:
                client = openai.AsyncOpenAI(
                    api_key=self._api_key, base_url=self.base_url, max_retries=0
                )
                self._clients[loop] = client
                on_loop_close(self.aclose)
            return client

    async def aclose(self) -> None:
        """Close the running loop's client (idempotent; the next call opens a new one)."""
        with self._clients_lock:
            client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.close()

    def _key_params(self, params: dict[str, Any]) -> dict[str, Any]:
        # The endpoint is part of the key: two servers may serve different weights under
        # the same model alias.
        return {**self.defaults, **params, "_endpoint": self.base_url or "openai"}

    # -- one attempt -----------------------------------------------------------------------
    async def _call(
        self, messages: list[dict[str, str]], response_format: Any, params: dict[str, Any]
    ) -> Completion:
        schema = schema_of(response_format)
        while True:
            mode = self._mode
            try:
                return await self._attempt(messages, response_format, schema, mode, params)
            except EngineError as exc:
                if schema is None or not _rejects_format(exc) or mode == _MODES[-1]:
                    raise
                fallback = _MODES[_MODES.index(mode) + 1]
                if self._mode == mode:  # concurrent calls may have downgraded already
                    self._mode = fallback
                    # In text mode nothing constrains the output: tell callers (optimizers
                    # pick tag-based parsing then).
                    self.supports_structured = fallback != "text"
                    log.warning(
                        "engine %s: server rejected response_format %s; using %s from now on",
                        self.id, mode, fallback,
                    )

    async def _attempt(
        self,
        messages: list[dict[str, str]],
        response_format: Any,
        schema: dict[str, Any] | None,
        mode: str,
        params: dict[str, Any],
    ) -> Completion:
        import openai

        merged = {**self.defaults, **params}
        kwargs = {k: v for k, v in merged.items() if k in _SDK_PARAMS}
        extra = {k: v for k, v in merged.items() if k not in _SDK_PARAMS}
        msgs: list[Message] = list(messages)
        if schema is not None:
            if mode == "json_schema":
                kwargs["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": _schema_name(schema), "schema": schema},
                }
            else:
                msgs = _with_json_instruction(messages, schema)
                if mode == "json_object":
                    kwargs["response_format"] = {"type": "json_object", "schema": schema}
        timeout = attempt_timeout(get_settings(timeout=self._timeout).timeout)
        started = time.perf_counter()
        try:
            response = await self._client().chat.completions.create(
                model=self.model,
                messages=msgs,
                timeout=timeout,
                extra_body=extra or None,
                **kwargs,
            )
        except openai.APITimeoutError as exc:
            raise EngineTimeoutError(
                f"no answer within {timeout:g}s", engine_id=self.id, retryable=True,
                raw={"retry_after": None, "body": str(exc)},
            ) from exc
        except openai.APIStatusError as exc:
            raise self._status_error(exc) from exc
        except openai.APIConnectionError as exc:
            raise EngineError(
                f"cannot connect to {self.endpoint}: {exc}", engine_id=self.id, retryable=True,
                raw={"retry_after": None, "body": str(exc)},
            ) from exc
        except (openai.APIResponseValidationError, ValueError) as exc:
            # A truncated or malformed body (JSONDecodeError is a ValueError).
            raise EngineError(
                f"invalid response body: {exc}", engine_id=self.id, retryable=True,
                raw={"retry_after": None, "body": _body_of(exc)},
            ) from exc
        return self._completion(response, response_format, time.perf_counter() - started)

    def _completion(self, response: Any, response_format: Any, latency: float) -> Completion:
        choices = getattr(response, "choices", None)
        if not choices:
            raise EngineError(
                "the answer has no choices", engine_id=self.id, status=200, retryable=True,
                raw={"retry_after": None, "body": _dump(response)},
            )
        message = choices[0].message
        text = (message.content if message is not None else None) or ""
        parsed = parsed_or_none(text, response_format)
        usage = getattr(response, "usage", None)
        return Completion(
            text=text,
            parsed=parsed,
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            model=getattr(response, "model", None) or self.model,
            latency=latency,
        )

    def _status_error(self, exc: Any) -> EngineError:
        status = int(exc.status_code)
        body = _body_of(exc)
        retryable = status in (408, 409, 429) or status >= 500
        return EngineError(
            f"server answered {status}: {body[:300]}",
            engine_id=self.id,
            status=status,
            retryable=retryable,
            raw={"retry_after": _retry_after(exc.response.headers), "body": body},
        )


def _openai_module() -> Any:
    try:
        import openai
    except ImportError as exc:  # pragma: no cover - openai is a core dependency
        raise MissingExtraError("the openai engine", 'pip install "tg-bridge[openai]"') from exc
    return openai


def _rejects_format(exc: EngineError) -> bool:
    """A 400/422 whose body is about the response format (not any other bad request).

    llama-cpp-python's server reports the same request validation failure as a 500
    ("1 validation error ... response_format"), so a 500 counts when it says so.
    """
    body = str(exc.raw.get("body", "")) if isinstance(exc.raw, dict) else ""
    if not _FORMAT_WORDS.search(body):
        return False
    return exc.status in (400, 422) or (exc.status == 500 and "validation" in body.lower())


def _with_json_instruction(
    messages: list[dict[str, str]], schema: dict[str, Any]
) -> list[dict[str, str]]:
    instruction = JSON_ANSWER_INSTRUCTION.format(
        schema=json.dumps(schema, ensure_ascii=False, sort_keys=True)
    )
    if messages and messages[0]["role"] == "system":
        first = {"role": "system", "content": messages[0]["content"] + "\n\n" + instruction}
        return [first, *messages[1:]]
    return [{"role": "system", "content": instruction}, *messages]


def _schema_name(schema: dict[str, Any]) -> str:
    """OpenAI wants ^[a-zA-Z0-9_-]{1,64}$; use the schema's title when it has one."""
    name = re.sub(r"[^a-zA-Z0-9_-]", "_", str(schema.get("title") or "response"))
    return name[:64] or "response"


def _retry_after(headers: Any) -> float | None:
    """Seconds to wait from Retry-After (seconds or an HTTP date) or retry-after-ms."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(float(ms) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _body_of(exc: Any) -> str:
    doc = getattr(exc, "doc", None)  # json.JSONDecodeError keeps the text it choked on
    if isinstance(doc, str):
        return doc
    response = getattr(exc, "response", None)
    if response is not None:
        try:
            return str(response.text)
        except Exception:  # a streamed/closed response has no text left
            pass
    return str(exc)


def _dump(response: Any) -> str:
    dump = getattr(response, "model_dump_json", None)
    return dump() if callable(dump) else str(response)
