"""EngineLLM: a LlamaIndex LLM over any tg_bridge Engine (the embedded model, an OpenAI-compatible
endpoint, a FakeEngine in tests), so a query engine can run fully offline.

This is the reverse of :class:`~tg_bridge_llamaindex.engine.LlamaIndexEngine` (an Engine over a
LlamaIndex LLM). Calls made through EngineLLM are the APP's calls: LlamaIndex's dispatcher opens
their LLM spans (``llm_chat_callback`` / ``llm_completion_callback``) before the engine runs, so
capture records them like any other model. The engine itself marks only its own inner request
internal (``tg_bridge._internal.internal_call``); that scope opens after the app's LLM span
started and closes before it ends, so it hides nothing of the app.

Usage counted by the engine (``tg_bridge.usage()``) is reported in the response's
``raw["usage"]`` too, so the span carries ``llm.token_count.*``.

Streaming: the Engine protocol returns whole answers, so the stream methods yield one chunk
with the complete text (enough for ``streaming=True`` query engines and chat engines).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator, Sequence
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.llm import LLM, default_completion_to_prompt
from pydantic import ConfigDict, Field, PrivateAttr

from tg_bridge.exceptions import UsageError

__all__ = ["EngineLLM"]

DEFAULT_CONTEXT_WINDOW = 8192
DEFAULT_NUM_OUTPUT = 256
#: Per-call keywords passed on to the engine (others are LlamaIndex's own and dropped).
SAMPLING_KWARGS = ("temperature", "max_tokens", "top_p", "stop", "seed")


class EngineLLM(LLM):
    """A chat LLM for LlamaIndex whose every call is ``engine.acomplete(messages, **params)``.

    ``engine``: ``"local"`` (default, the embedded SmolLM2), any spec ``tg_bridge.engine()``
    accepts (``"openai:MODEL"`` with ``OPENAI_BASE_URL``), or an Engine object. ``params`` are
    sent with every call (``max_tokens=64``, ``temperature=0``...). The engine is built when
    the LLM is created (cheap: no model is loaded and no connection opened before the first
    call). Errors of the engine (:class:`tg_bridge.EngineError`) propagate to the caller, as a
    hosted model's errors would. Thread-safe as far as the engine is (all tg_bridge engines are).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    engine_spec: str = Field(default="local", description="How the engine was given (a spec or its id).")
    params: dict[str, Any] = Field(default_factory=dict, description="Sent with every engine call.")
    context_window: int = Field(default=DEFAULT_CONTEXT_WINDOW, gt=0)
    num_output: int = Field(default=DEFAULT_NUM_OUTPUT, gt=0)
    _engine: Any = PrivateAttr(default=None)

    def __init__(
        self,
        engine: Any = "local",
        *,
        context_window: int = DEFAULT_CONTEXT_WINDOW,
        num_output: int | None = None,
        llm_kwargs: dict[str, Any] | None = None,
        **params: Any,
    ) -> None:
        """``llm_kwargs`` go to LlamaIndex's ``LLM`` (``system_prompt``, ``callback_manager``...);
        every other keyword is an engine call parameter. Raises ConfigurationError for a bad
        spec (from ``tg_bridge.engine``)."""
        import tg_bridge

        resolved = tg_bridge.engine(engine)
        if num_output is None:
            max_tokens = params.get("max_tokens")
            num_output = max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else DEFAULT_NUM_OUTPUT
        # Passed as one mapping: mypy types super().__init__ as LLM's own (dataclass_transform)
        # constructor, which cannot know the fields this subclass declares above.
        fields: dict[str, Any] = {
            "engine_spec": engine if isinstance(engine, str) else str(getattr(resolved, "id", "engine")),
            "params": dict(params),
            "context_window": context_window,
            "num_output": num_output,
        }
        clashes = sorted(set(fields) & set(llm_kwargs or {}))
        if clashes:  # silently preferring either value would hide the caller's mistake
            raise UsageError(f"EngineLLM: give {clashes} as EngineLLM arguments, not in llm_kwargs")
        super().__init__(**{**(llm_kwargs or {}), **fields})
        self._engine = resolved

    @classmethod
    def class_name(cls) -> str:
        return "EngineLLM"

    @property
    def engine(self) -> Any:
        """The tg_bridge Engine every call goes to."""
        return self._engine

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(
            context_window=self.context_window,
            num_output=self.num_output,
            is_chat_model=True,
            model_name=str(getattr(self._engine, "model", "") or self.engine_spec),
        )

    # -- chat -----------------------------------------------------------------------------
    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        completion = self._engine.complete(_to_dicts(messages), **self._call_params(kwargs))
        return _chat_response(completion)

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        completion = await self._engine.acomplete(_to_dicts(messages), **self._call_params(kwargs))
        return _chat_response(completion)

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        response = self.chat(messages, **kwargs)

        def gen() -> Generator[ChatResponse, None, None]:
            yield _as_delta(response)

        return gen()

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        response = await self.achat(messages, **kwargs)

        async def gen() -> AsyncGenerator[ChatResponse, None]:
            yield _as_delta(response)

        return gen()

    # -- completion (one user message) ----------------------------------------------------
    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        messages = self._prompt_messages(prompt, formatted)
        completion = self._engine.complete(messages, **self._call_params(kwargs))
        return _completion_response(completion)

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        messages = self._prompt_messages(prompt, formatted)
        completion = await self._engine.acomplete(messages, **self._call_params(kwargs))
        return _completion_response(completion)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        response = self.complete(prompt, formatted=formatted, **kwargs)

        def gen() -> Generator[CompletionResponse, None, None]:
            yield CompletionResponse(text=response.text, delta=response.text, raw=response.raw)

        return gen()

    @llm_completion_callback()
    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        response = await self.acomplete(prompt, formatted=formatted, **kwargs)

        async def gen() -> AsyncGenerator[CompletionResponse, None]:
            yield CompletionResponse(text=response.text, delta=response.text, raw=response.raw)

        return gen()

    # -- helpers --------------------------------------------------------------------------
    def _prompt_messages(self, prompt: str, formatted: bool) -> list[dict[str, str]]:
        # LLM's field validator replaces a None completion_to_prompt with this same default;
        # the field is still typed Optional, so the fallback is spelled out here.
        to_prompt = self.completion_to_prompt or default_completion_to_prompt
        text = prompt if formatted else to_prompt(prompt)
        return [{"role": "user", "content": text}]

    def _call_params(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        # LlamaIndex passes framework keywords (tools, tool_choice...) through **kwargs; only
        # sampling parameters reach the engine, so an engine that validates its parameters
        # (LocalEngine rejects unknown names) never sees a LlamaIndex-only one.
        params = dict(self.params)
        params.update((k, v) for k, v in kwargs.items() if k in SAMPLING_KWARGS)
        return params


def _to_dicts(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    out = []
    for message in messages:
        role = message.role.value if isinstance(message.role, MessageRole) else str(message.role)
        if role not in ("system", "user", "assistant"):
            role = "user"  # tool/function/chatbot roles: the engine protocol knows three
        out.append({"role": role, "content": message.content or ""})
    return out


def _usage(completion: Any) -> dict[str, int]:
    prompt = int(getattr(completion, "prompt_tokens", 0) or 0)
    answer = int(getattr(completion, "completion_tokens", 0) or 0)
    return {"prompt_tokens": prompt, "completion_tokens": answer, "total_tokens": prompt + answer}


def _chat_response(completion: Any) -> ChatResponse:
    return ChatResponse(
        message=ChatMessage(role=MessageRole.ASSISTANT, content=completion.text),
        raw={"usage": _usage(completion), "model": getattr(completion, "model", "")},
    )


def _completion_response(completion: Any) -> CompletionResponse:
    return CompletionResponse(
        text=completion.text,
        raw={"usage": _usage(completion), "model": getattr(completion, "model", "")},
    )


def _as_delta(response: ChatResponse) -> ChatResponse:
    return ChatResponse(message=response.message, delta=response.message.content or "", raw=response.raw)
