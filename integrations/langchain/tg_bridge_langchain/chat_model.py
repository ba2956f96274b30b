"""EngineChatModel: a LangChain chat model over any tg_bridge Engine.

So an ordinary LCEL chain can run offline on the embedded model (``EngineChatModel()`` =
``tg_bridge.engine("local")``) and, unchanged, on any OpenAI-compatible server
(``EngineChatModel(engine="openai:MODEL")`` with ``OPENAI_BASE_URL``)::

    chain = prompt | EngineChatModel(max_tokens=64) | StrOutputParser()

Contract:
- ``EngineChatModel(engine="local" | "openai:MODEL" | Engine, **params)``: ``params`` (e.g.
  ``max_tokens``, ``temperature``, ``stop``) are sent with every call; per-call keyword
  arguments (``model.bind(max_tokens=8)``, ``invoke(..., stop=[...])``) override them. The
  engine is built (not loaded, not connected) at construction; a bad spec raises
  :class:`~tg_bridge.exceptions.ConfigurationError` there.
- Its calls are the APP's model calls: LangChain's callbacks open the LLM run (and the
  capture span) before the engine is called, so ``tg_bridge.capture()`` records them with
  their prompt and answer like any chat model's. Only the engine call itself runs inside
  tg_bridge's ``internal_call()`` (which hides nothing that LangChain reports).
- Sync (``_generate``, blocking, safe inside a running event loop) and async
  (``_agenerate``). Answers carry ``usage_metadata`` (input/output/total tokens) and
  ``response_metadata["model_name"]``; ``stop`` sequences also cut the text client-side.
- Errors: whatever the engine raises (:class:`~tg_bridge.exceptions.EngineError` after its
  retries) propagates to the chain, as a provider error would. Thread-safe as the engine is.
- No tool calling: ``bind_tools`` is LangChain's default (NotImplementedError); write tool
  protocols in the prompt (see ``examples/langchain_agent.py``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field, PrivateAttr, model_validator

from tg_bridge.engines import Completion, Engine
from tg_bridge.engines import engine as build_engine

from .attributes import message_content

__all__ = ["EngineChatModel"]

log = logging.getLogger(__name__)

_ROLES = {"system": "system", "human": "user", "ai": "assistant", "chat": "user"}


class EngineChatModel(BaseChatModel):
    """A LangChain ``BaseChatModel`` whose answers come from a tg_bridge Engine.

    See the module docstring for the contract. ``engine_id`` and ``model_name`` name the
    backend (``"local"`` / ``"SmolLM2-..."``); ``engine_instance`` is the resolved Engine.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    #: an engine spec ("local", "openai:MODEL", ...) or an Engine instance
    engine: Any = "local"
    #: sampling parameters sent with every call (max_tokens, temperature, stop, ...)
    params: dict[str, Any] = Field(default_factory=dict)

    _engine: Engine = PrivateAttr()

    @model_validator(mode="before")
    @classmethod
    def _collect_params(cls, values: Any) -> Any:
        """Unknown keyword arguments are sampling parameters: ``EngineChatModel(max_tokens=8)``."""
        if not isinstance(values, dict):
            return values
        known = set(cls.model_fields)
        extra = {k: v for k, v in values.items() if k not in known}
        if not extra:
            return values
        kept = {k: v for k, v in values.items() if k in known}
        kept["params"] = {**dict(values.get("params") or {}), **extra}
        return kept

    def __init__(self, engine: Any = "local", **kwargs: Any) -> None:
        # Built before pydantic validation so a bad spec raises our ConfigurationError (not a
        # pydantic ValidationError). Builds only: nothing is loaded or connected yet.
        built = build_engine(engine)
        # Passed as one mapping: mypy types super().__init__ as BaseChatModel's own
        # (dataclass_transform) constructor, which cannot know this subclass's ``engine`` field.
        fields: dict[str, Any] = {**kwargs, "engine": engine}
        super().__init__(**fields)
        self._engine = built

    # -- identity -------------------------------------------------------------------------
    @property
    def engine_instance(self) -> Engine:
        return self._engine

    @property
    def engine_id(self) -> str:
        return str(getattr(self._engine, "id", type(self._engine).__name__))

    @property
    def model_name(self) -> str:
        return str(getattr(self._engine, "model", "") or self.engine_id)

    @property
    def _llm_type(self) -> str:
        return "tg-bridge-engine"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"engine": self.engine_id, "model": self.model_name, **self.params}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        ls = super()._get_ls_params(stop=stop, **kwargs)
        ls["ls_provider"] = f"tg_bridge:{self.engine_id.split(':', 1)[0]}"
        ls["ls_model_name"] = self.model_name
        return ls

    # -- generation -----------------------------------------------------------------------
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        msgs, params = self._request(messages, stop, kwargs)
        completion = self._engine.complete(msgs, **params)
        return self._result(completion, params.get("stop"))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        msgs, params = self._request(messages, stop, kwargs)
        completion = await self._engine.acomplete(msgs, **params)
        return self._result(completion, params.get("stop"))

    def _request(
        self, messages: Sequence[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> tuple[list[dict[str, str]], dict[str, Any]]:
        params = {**self.params, **kwargs}
        if stop:
            params["stop"] = list(stop)
        return [to_engine_message(m) for m in messages], params

    def _result(self, completion: Completion, stop: Sequence[str] | None) -> ChatResult:
        text = _cut_at_stop(completion.text, stop)
        usage = UsageMetadata(
            input_tokens=completion.prompt_tokens,
            output_tokens=completion.completion_tokens,
            total_tokens=completion.total_tokens,
        )
        model = completion.model or self.model_name
        message = AIMessage(
            content=text,
            usage_metadata=usage,
            response_metadata={
                "model_name": model,
                "engine": self.engine_id,
                "cached": completion.cached,
            },
        )
        token_usage = {
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "total_tokens": completion.total_tokens,
        }
        return ChatResult(
            generations=[ChatGeneration(message=message)],
            llm_output={"token_usage": token_usage, "model_name": model},
        )


def to_engine_message(message: BaseMessage) -> dict[str, str]:
    """A LangChain message as an engine ``{"role", "content"}`` dict.

    Tool results become user messages naming the tool (engines speak plain chat), and an
    assistant turn that only called tools is rendered as the calls' JSON.
    """
    text = message_content(message)
    if message.type == "tool":
        name = getattr(message, "name", None) or getattr(message, "tool_call_id", "") or "tool"
        return {"role": "user", "content": f"Result of tool {name}:\n{text}"}
    if isinstance(message, AIMessage) and not text and message.tool_calls:
        calls = [{"name": c.get("name"), "args": c.get("args")} for c in message.tool_calls]
        text = json.dumps(calls, ensure_ascii=False, default=str)
    role = _ROLES.get(message.type, "user")
    if message.type == "chat":  # ChatMessage carries a free-form role
        role = _ROLES.get(str(getattr(message, "role", "")).lower(), "user")
        role = {"assistant": "assistant", "system": "system"}.get(
            str(getattr(message, "role", "")).lower(), role
        )
    return {"role": role, "content": text}


def _cut_at_stop(text: str, stop: Sequence[str] | None) -> str:
    """Cut ``text`` at the first stop sequence (some backends include or ignore them)."""
    if not stop:
        return text
    cut = len(text)
    for token in stop:
        if token:
            at = text.find(token)
            if 0 <= at < cut:
                cut = at
    return text[:cut]
