"""Tool descriptions as prompts (opt-in): a tool's description is what the model reads to
decide whether and how to call it, so it can be optimized like a system prompt.

Opt in with ``tg_bridge_llamaindex.adapter.tool_descriptions = True`` or the core's
``tool_descriptions`` setting (``tg_bridge.context(tool_descriptions=True)``, where the core
has it): tool spans then carry ``tg_bridge.tool_bindings`` and the adapter's ``bindings()`` lists one
:class:`ToolDescriptionBinding` per tool. Off by default: rewording a tool contract changes
behaviour beyond one prompt.
"""

from __future__ import annotations

import json
from typing import Any

from llama_index.core.tools.types import BaseTool, ToolMetadata

from tg_bridge import semconv as sc
from tg_bridge.exceptions import BindingError

from .bindings import _OwnerRef
from .hooks import register_binding
from .registry import owner_key, register

__all__ = ["ToolDescriptionBinding", "enabled", "tool_binding", "tool_binding_attributes"]


def enabled() -> bool:
    """Whether tool descriptions are parameters now: the adapter's flag or the core setting."""
    import tg_bridge_llamaindex

    if tg_bridge_llamaindex.adapter.tool_descriptions:
        return True
    try:
        from tg_bridge.config import get_settings

        return bool(getattr(get_settings(), "tool_descriptions", False))
    except Exception:  # an older core without the setting
        return False


class ToolDescriptionBinding(_OwnerRef):
    """``tool.metadata.description`` of a LlamaIndex tool. Agents rebuild the tool schema
    they send from the metadata on every call, so a write shows in the next request."""

    template_format = "none"
    role = "tool description"

    def __init__(self, tool: BaseTool) -> None:
        super().__init__(tool)
        self.key = f"{owner_key(tool)}/description"

    def _metadata(self) -> ToolMetadata:
        metadata = getattr(self.owner, "metadata", None)
        if not isinstance(metadata, ToolMetadata):
            raise BindingError(f"{self.key}: the tool has no ToolMetadata")
        return metadata

    def read(self) -> str:
        return str(self._metadata().description or "")

    def write(self, value: str) -> None:
        try:
            self._metadata().description = value
        except Exception as exc:
            raise BindingError(f"{self.key}: cannot set the description: {exc}") from exc

    def __repr__(self) -> str:
        return f"<ToolDescriptionBinding {self.key}>"


def tool_binding(obj: object) -> ToolDescriptionBinding | None:
    """A binding for ``obj``'s description when it is a tool that has one, else None."""
    if not isinstance(obj, BaseTool):
        return None
    metadata = getattr(obj, "metadata", None)
    if not isinstance(metadata, ToolMetadata) or not isinstance(metadata.description, str):
        return None
    if not metadata.description.strip():
        return None
    return ToolDescriptionBinding(obj)


def tool_binding_attributes(tool: Any) -> dict[str, Any]:
    """``tg_bridge.tool_bindings`` for a tool span (registers the binding on the Run)."""
    binding = tool_binding(tool)
    if binding is None:
        return {}
    register(binding)
    register_binding(binding)
    record = {"binding": binding.key, "name": str(tool.metadata.name or ""), "description": binding.read()}
    return {sc.TOOL_BINDINGS: json.dumps([record], ensure_ascii=False)}
