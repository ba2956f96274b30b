"""LangChainEngine: a tg_bridge Engine over the host app's own LangChain model.

So users can optimize with the model their app already has (``tg_bridge.engine(chat_model)``
routes here through the adapter). Each call runs ``model.ainvoke`` inside tg_bridge's
``internal_call()`` (set by BaseEngine), so it is never captured as an app step.

Structured output: when the model implements tool binding / ``with_structured_output`` the
JSON schema is enforced that way (``include_raw=True`` keeps the text and token usage);
otherwise the schema is appended to the last message as an instruction and the JSON is parsed
from the text. An answer that cannot be parsed gives ``parsed=None`` (callers decide).
Errors from the model become :class:`EngineError` (retryable for rate limits, timeouts,
connection problems and 5xx, judged from the exception's class name and status code).
"""

from __future__ import annotations

import json
import logging
from typing import Any, cast

from langchain_core.language_models import BaseChatModel, BaseLanguageModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableBinding

from tg_bridge.engines.base import BaseEngine, Completion, parse_structured, schema_of
from tg_bridge.exceptions import EngineError, UsageError

from .attributes import message_content
from .prompts import JSON_SCHEMA_INSTRUCTION

__all__ = ["LangChainEngine"]

log = logging.getLogger(__name__)

_RETRYABLE_WORDS = ("ratelimit", "timeout", "connection", "overloaded", "unavailable")


class LangChainEngine(BaseEngine):
    """Engine over a ``BaseChatModel`` or completion ``BaseLLM``. Thread-safe as the model is.

    ``id`` is ``"langchain:<ModelClass>"``; ``model`` the model's name when it has one.
    Keyword arguments (timeout, max_retries, cache) go to :class:`BaseEngine`.
    """

    def __init__(self, llm: object, **kwargs: Any) -> None:
        if not isinstance(llm, BaseLanguageModel):
            raise UsageError(f"expected a LangChain language model, got {type(llm).__name__}")
        super().__init__(**kwargs)
        self.llm: BaseLanguageModel[Any] = llm
        self.id = f"langchain:{type(llm).__name__}"
        self.model = str(
            getattr(llm, "model_name", None) or getattr(llm, "model", None) or type(llm).__name__
        )
        self.supports_structured = _supports_structured(llm)

    async def _call(
        self, messages: list[dict[str, str]], response_format: Any, params: dict[str, Any]
    ) -> Completion:
        schema = schema_of(response_format)
        try:
            if schema is not None and self.supports_structured:
                return await self._structured(messages, schema, response_format, params)
            if schema is not None:
                messages = _with_schema_instruction(messages, schema)
            reply = await self._runnable(params).ainvoke(self._convert(messages))
        except EngineError:
            raise
        except Exception as exc:
            raise _engine_error(self.id, exc) from exc
        return self._completion(reply, response_format)

    def _runnable(self, params: dict[str, Any]) -> Any:
        return self.llm.bind(**params) if params else self.llm

    def _convert(self, messages: list[dict[str, str]]) -> list[BaseMessage] | str:
        if isinstance(self.llm, BaseChatModel):
            return [_to_message(m) for m in messages]
        return "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in messages)

    async def _structured(
        self, messages: list[dict[str, str]], schema: dict[str, Any], response_format: Any,
        params: dict[str, Any],
    ) -> Completion:
        schema = dict(schema)
        schema.setdefault("title", "response")
        schema.setdefault("description", "The answer, as structured data.")
        model: BaseLanguageModel[Any] | RunnableBinding[Any, Any] = self.llm
        if params:
            # Runnable.bind is typed as returning a plain Runnable, but it builds a
            # RunnableBinding, whose __getattr__ forwards with_structured_output to the model
            # with the params still bound.
            model = cast(RunnableBinding[Any, Any], self.llm.bind(**params))
        runnable = model.with_structured_output(schema, include_raw=True)
        result = await runnable.ainvoke(self._convert(messages))
        raw = result.get("raw") if isinstance(result, dict) else None
        parsed = result.get("parsed") if isinstance(result, dict) else None
        completion = self._completion(raw, None)
        text = completion.text
        if parsed is not None:
            text = json.dumps(parsed, ensure_ascii=False)
            validate = getattr(response_format, "model_validate", None)
            if callable(validate):
                try:
                    parsed = validate(parsed)
                except Exception:
                    parsed = None
        else:
            parsed = _try_parse(text, response_format)
        return Completion(
            text=text,
            parsed=parsed,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            model=completion.model,
        )

    def _completion(self, reply: Any, response_format: Any) -> Completion:
        prompt_tokens = completion_tokens = 0
        model = self.model
        if isinstance(reply, BaseMessage):
            text = message_content(reply)
            usage = getattr(reply, "usage_metadata", None) or {}
            prompt_tokens = int(usage.get("input_tokens", 0) or 0)
            completion_tokens = int(usage.get("output_tokens", 0) or 0)
            meta = getattr(reply, "response_metadata", None) or {}
            model = str(meta.get("model_name") or meta.get("model") or model)
        else:
            text = "" if reply is None else str(reply)
        parsed = _try_parse(text, response_format) if response_format is not None else None
        return Completion(
            text=text,
            parsed=parsed,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            model=model,
        )


def _supports_structured(llm: object) -> bool:
    if not isinstance(llm, BaseChatModel):
        return False
    cls = type(llm)
    return (
        cls.bind_tools is not BaseChatModel.bind_tools
        or cls.with_structured_output is not BaseChatModel.with_structured_output
    )


def _to_message(message: dict[str, str]) -> BaseMessage:
    role, content = message["role"], message["content"]
    if role == "system":
        return SystemMessage(content=content)
    if role == "assistant":
        return AIMessage(content=content)
    return HumanMessage(content=content)


def _with_schema_instruction(
    messages: list[dict[str, str]], schema: dict[str, Any]
) -> list[dict[str, str]]:
    note = JSON_SCHEMA_INSTRUCTION.format(schema=json.dumps(schema, ensure_ascii=False))
    last = messages[-1]
    return [*messages[:-1], {"role": last["role"], "content": f"{last['content']}\n\n{note}"}]


def _try_parse(text: str, response_format: Any) -> Any:
    try:
        return parse_structured(text, response_format)
    except Exception:
        return None


def _engine_error(engine_id: str, exc: Exception) -> EngineError:
    status = getattr(exc, "status_code", None)
    if not isinstance(status, int):
        status = None
    name = type(exc).__name__.lower()
    retryable = any(word in name for word in _RETRYABLE_WORDS) or (
        status is not None and (status == 429 or status >= 500)
    )
    return EngineError(
        f"{type(exc).__name__}: {exc}",
        engine_id=engine_id,
        status=status,
        retryable=retryable,
        raw={"body": str(exc)},
    )
