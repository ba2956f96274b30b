"""LlamaIndex's OpenAI-compatible model pointed at the loopback OpenAI stub (tests/support/
openai_stub.py), as the corpus apps build it."""

from __future__ import annotations

from typing import Any

from tests.support.openai_stub import OpenAIStub

__all__ = ["openai_like"]


def openai_like(stub: OpenAIStub, **kwargs: Any) -> Any:
    """An ``OpenAILike`` chat model on ``stub`` (model ``stub-model``, a fake key); ``kwargs``
    add or override settings (``is_function_calling_model=True`` for agents)."""
    from llama_index.llms.openai_like import OpenAILike

    settings: dict[str, Any] = {"model": "stub-model", "api_base": stub.base_url, "api_key": "fake",
                                "is_chat_model": True, **kwargs}
    return OpenAILike(**settings)
