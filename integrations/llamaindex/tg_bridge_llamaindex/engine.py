"""LlamaIndexEngine: a tg_bridge Engine over a LlamaIndex LLM (the host's own model).

Plain completions go through ``llm.achat``. Structured output: the JSON schema is stated in the
request (:data:`~tg_bridge_llamaindex.prompts.STRUCTURED_OUTPUT_INSTRUCTION`) and the answer is
parsed; one corrective turn is allowed before :class:`EngineError` (retryable). Usage comes from
the raw response when the model reports it, else from LlamaIndex's ``additional_kwargs``.
Our calls run inside ``internal_call()`` (BaseEngine), so capture never records them.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from llama_index.core.base.llms.types import ChatMessage

from tg_bridge import semconv as sc
from tg_bridge.engines.base import BaseEngine, Completion, parse_structured, schema_of
from tg_bridge.exceptions import EngineError

from . import attributes as at
from .prompts import STRUCTURED_OUTPUT_INSTRUCTION, STRUCTURED_OUTPUT_RETRY

__all__ = ["LlamaIndexEngine"]

_RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class LlamaIndexEngine(BaseEngine):
    """Engine over ``llm`` (any LlamaIndex ``LLM``). Thread-safe as far as the LLM is."""

    supports_structured = False

    def __init__(self, llm: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.llm = llm
        try:
            self.model = str(llm.metadata.model_name)
        except Exception:
            self.model = type(llm).__name__
        self.id = f"llamaindex:{type(llm).__name__}"

    async def _call(
        self, messages: list[dict[str, str]], response_format: Any, params: dict[str, Any]
    ) -> Completion:
        chat = [ChatMessage(role=m["role"], content=m["content"]) for m in messages]
        if response_format is None:
            response = await self._achat(chat, params)
            return self._completion(response, None)
        schema = json.dumps(schema_of(response_format), indent=2, sort_keys=True)
        chat.append(ChatMessage(role="user", content=STRUCTURED_OUTPUT_INSTRUCTION.format(schema=schema)))
        response = await self._achat(chat, params)
        text = _text(response)
        try:
            return self._completion(response, parse_structured(text, response_format))
        except ValueError as exc:
            error = exc
        chat.append(ChatMessage(role="assistant", content=text))
        chat.append(ChatMessage(role="user", content=STRUCTURED_OUTPUT_RETRY.format(error=error, schema=schema)))
        second = await self._achat(chat, params)
        text = _text(second)
        try:
            return self._completion(second, parse_structured(text, response_format), first=response)
        except ValueError as exc:
            raise EngineError(
                f"answer is not valid JSON for the schema: {exc}",
                engine_id=self.id,
                retryable=True,
                raw={"retry_after": None, "body": text},
            ) from exc

    async def _achat(self, chat: list[ChatMessage], params: dict[str, Any]) -> Any:
        try:
            return await self.llm.achat(chat, **params)
        except EngineError:
            raise
        except (asyncio.TimeoutError, ConnectionError, TimeoutError) as exc:
            raise EngineError(str(exc) or type(exc).__name__, engine_id=self.id, retryable=True,
                              raw={"retry_after": None, "body": repr(exc)}) from exc
        except Exception as exc:
            status = getattr(exc, "status_code", None) or getattr(getattr(exc, "response", None), "status_code", None)
            status = status if isinstance(status, int) else None
            raise EngineError(
                f"{type(exc).__name__}: {exc}",
                engine_id=self.id,
                status=status,
                retryable=status in _RETRYABLE_STATUS,
                raw={"retry_after": None, "body": repr(exc)},
            ) from exc

    def _completion(self, response: Any, parsed: Any, *, first: Any = None) -> Completion:
        prompt_tokens = completion_tokens = 0
        for item in (first, response):
            if item is None:
                continue
            counts = at.token_counts(item)
            prompt_tokens += counts.get(sc.LLM_TOKEN_COUNT_PROMPT, 0)
            completion_tokens += counts.get(sc.LLM_TOKEN_COUNT_COMPLETION, 0)
        return Completion(
            text=_text(response),
            parsed=parsed,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            model=self.model,
        )


def _text(response: Any) -> str:
    message = getattr(response, "message", None)
    content = getattr(message, "content", None)
    return content if isinstance(content, str) else str(getattr(response, "text", "") or "")
