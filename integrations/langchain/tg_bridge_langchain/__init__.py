"""tg_bridge for LangChain: capture hooks, live prompt bindings, write-back, host-model engine.

Found by tg_bridge through the entry point ``tg_bridge.adapters: langchain =
tg_bridge_langchain:adapter``. Importing this package installs nothing: hooks go in with
``tg_bridge.instrument()`` / ``tg_bridge.capture()`` (or ``adapter.instrument()``).
"""

from __future__ import annotations

from .adapter import LangChainAdapter
from .bindings import PromptBinding
from .chat_model import EngineChatModel
from .engine import LangChainEngine
from .handler import SpanHandler
from .tools import BoundToolBinding, ToolDescriptionBinding

__all__ = [
    "BoundToolBinding",
    "EngineChatModel",
    "LangChainAdapter",
    "LangChainEngine",
    "PromptBinding",
    "SpanHandler",
    "ToolDescriptionBinding",
    "adapter",
]

#: the process-wide adapter the entry point names
adapter = LangChainAdapter()
