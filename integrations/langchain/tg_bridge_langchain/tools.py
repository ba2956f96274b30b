"""Tool descriptions as parameters (opt-in) and tool span attributes.

For agents a tool's description is a prompt: the model reads it to decide when to call the
tool. Two places hold one:

- a ``BaseTool`` object (``tool.description``): used by ``create_agent``, which binds tools
  on every model call, and by tool spans;
- the tool schemas already bound to a model (``model.bind_tools(...)`` keeps converted dicts
  in ``RunnableBinding.kwargs["tools"]``): writing the BaseTool does not reach those, so they
  get bindings of their own (``<binding key>/tools[i].description``).

Descriptions are plain text (format ``"none"``). Writes take effect on the next call.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping, MutableMapping
from typing import Any

from tg_bridge import semconv as sc
from tg_bridge.capturing import register_binding
from tg_bridge.exceptions import BindingError

from . import registry

__all__ = ["BoundToolBinding", "ToolDescriptionBinding", "bound_tool_bindings", "tool_attributes"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(eq=False)
class ToolDescriptionBinding:
    """The ``description`` of a live ``BaseTool``, and of the schema dicts of the same tool
    already bound to a model (:meth:`link`): a write updates them together."""

    key: str
    tool: Any
    template_format: str = "none"
    linked: list[MutableMapping[str, Any]] = dataclasses.field(default_factory=list, repr=False)

    def read(self) -> str:
        return str(self.tool.description)

    def link(self, schema: MutableMapping[str, Any]) -> None:
        """Also write ``schema``'s description (a bound copy of this tool's schema)."""
        if all(schema is not s for s in self.linked):
            self.linked.append(schema)

    def write(self, value: str) -> None:
        if not isinstance(value, str):
            raise BindingError(f"{self.key}: a description must be a str")
        try:
            self.tool.description = value
            for schema in self.linked:
                _slot(schema)["description"] = value
        except Exception as exc:
            raise BindingError(f"cannot write {self.key}: {exc}") from exc


def _slot(schema: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    inner = schema.get("function")
    return inner if isinstance(inner, MutableMapping) else schema


@dataclasses.dataclass(eq=False)
class BoundToolBinding:
    """The description inside a tool schema dict bound to a model (OpenAI function format
    ``{"type": "function", "function": {"description": ...}}`` or a flat ``{"description"}``)."""

    key: str
    schema: MutableMapping[str, Any]
    template_format: str = "none"

    @property
    def name(self) -> str:
        """The tool's name in the schema ('' when it has none)."""
        return str(self._slot().get("name", ""))

    def _slot(self) -> MutableMapping[str, Any]:
        return _slot(self.schema)

    def read(self) -> str:
        return str(self._slot().get("description", ""))

    def write(self, value: str) -> None:
        if not isinstance(value, str):
            raise BindingError(f"{self.key}: a description must be a str")
        self._slot()["description"] = value


def tool_binding(tool: Any) -> ToolDescriptionBinding | None:
    """The description binding of ``tool`` (tagging it with a key). None if impossible."""
    key = registry.ensure_key(tool, "tool:")
    if key is None:
        return None
    cache = registry.extras(key)
    found = cache.get("binding")
    if found is None:
        found = cache["binding"] = ToolDescriptionBinding(f"{key}/description", tool)
    return found


def bound_tool_bindings(prefix: str, tools: Any) -> list[BoundToolBinding]:
    """Bindings for the tool schema dicts bound to a model (``prefix`` names the binding)."""
    found = []
    for i, schema in enumerate(tools if isinstance(tools, list) else ()):
        if isinstance(schema, MutableMapping) and (
            "description" in schema or isinstance(schema.get("function"), Mapping)
        ):
            found.append(BoundToolBinding(f"{prefix}/tools[{i}].description", schema))
    return found


def tool_attributes(metadata: Mapping[str, Any] | None, with_bindings: bool) -> dict[str, Any]:
    """``tool.parameters`` (and ``tg_bridge.tool_bindings`` when opted in) for a tool run."""
    key = metadata.get(registry.META_KEY) if metadata else None
    if not isinstance(key, str) or not key.startswith("langchain:tool:"):
        return {}
    tool = registry.lookup(key)
    if tool is None:
        return {}
    attrs: dict[str, Any] = {}
    cache = registry.extras(key)
    params = cache.get("parameters")
    if params is None:
        try:
            params = json.dumps(tool.tool_call_schema.model_json_schema(), ensure_ascii=False)
        except Exception:  # a tool without a pydantic schema
            params = json.dumps(getattr(tool, "args", {}), default=str)
        cache["parameters"] = params
    attrs[sc.TOOL_PARAMETERS] = params
    if with_bindings:
        binding = tool_binding(tool)
        if binding is not None:
            attrs[sc.TOOL_BINDINGS] = json.dumps(
                [{"binding": binding.key, "name": tool.name, "description": binding.read()}],
                ensure_ascii=False,
            )
            register_binding(binding)
    return attrs
