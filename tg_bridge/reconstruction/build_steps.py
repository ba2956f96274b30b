"""The retrieval and tool steps of :class:`~.build.TraceBuilder`, kept in their own mixin.

A retriever span becomes one ``document`` Variable per returned document (a ``retrieval`` op
from the query); a tool span becomes a ``tool_result`` Variable (a ``tool_call`` op) fed by
the LLM output that requested the call, or by where its arguments came from, plus any tool
descriptions an adapter opted in as parameters. The mixin uses the builder's state
(``flow``, ``pool``, ``bindings``, ``done_kinds``, ``tool_calls``); it is not used alone. Pure.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, MutableMapping
from typing import TYPE_CHECKING

from .. import semconv as sc
from ..variable import Operation, Variable
from .params import get_parameter

if TYPE_CHECKING:
    from ..patching.binding import Binding
    from .dataflow import Flow
    from .skips import SkipReason
    from .spanview import SpanView, ToolCall
    from .tree import SpanNode

__all__ = ["RetrievalToolSteps"]


class RetrievalToolSteps:
    """Mixin: ``_retriever`` and ``_tool`` steps (and the ``_inside`` guard) of a builder."""

    flow: Flow
    pool: MutableMapping[str, Variable]
    bindings: Mapping[str, Binding] | None
    done_kinds: dict[int, str]
    tool_calls: list[tuple[Variable, ToolCall]]
    skip: Callable[[SpanNode, SkipReason], None]  # the builder's skipped-span counter

    def _inside(self, node: SpanNode, kind: str) -> bool:
        return any(self.done_kinds.get(id(a)) == kind for a in node.ancestors())

    # -- retrieval and tools ----------------------------------------------------------------
    def _retriever(self, node: SpanNode, view: SpanView) -> None:
        if self._inside(node, "retriever"):
            return
        if not view.documents:
            self.skip(node, "retriever_without_documents")
            return
        self.done_kinds[id(node)] = "retriever"
        query = self.flow.use(self.flow.source_or_input(view.input_text or "", hint="query"))
        for i, doc in enumerate(view.documents):
            var = Variable(doc.content, role=f"document {i + 1} retrieved by '{node.name}'",
                           kind="document", parents=(query,), name=node.name,
                           metadata={"id": doc.id, "score": doc.score, "rank": i})  # fmt: skip
            var.op = Operation("retrieval", (query,), var, {"retriever": node.name, "rank": i}, node.name)
            self.flow.add(var)

    def _tool(self, node: SpanNode, view: SpanView) -> None:
        if self._inside(node, "tool"):
            return
        if view.tool_result is None:
            self.skip(node, "tool_without_result")
            return
        self.done_kinds[id(node)] = "tool"
        name = view.tool_name or node.name
        args = view.tool_args or ""
        source = None
        for i, (llm_out, call) in enumerate(self.tool_calls):
            # requested by name, or (exporters that name tools differently) by identical arguments
            if call.name == name or (view.tool_args and call.arguments.strip() == view.tool_args.strip()):
                source = llm_out
                args = call.arguments or args
                del self.tool_calls[i]
                break
        if source is None:
            source = self.flow.source_or_input(args, hint=f"arguments of tool '{name}'")
        self.flow.use(source)
        parents: tuple[Variable, ...] = (source,)
        for param in self._tool_description_params(node, name):
            if source.op is not None and source.op.kind == "llm_call":
                # the description steered the LLM that chose this tool: an input of that call
                if all(param is not p for p in source.parents):
                    source.parents = (*source.parents, param)
                    source.op.inputs = (*source.op.inputs, param)
            else:
                parents = (*parents, param)
        var = Variable(view.tool_result, role=f"result of tool '{name}'", kind="tool_result",
                       parents=parents, name=name, metadata={"arguments": args})  # fmt: skip
        var.op = Operation("tool_call", parents, var,
                           {"tool": name, "description": view.tool_description or "", "arguments": args}, name)  # fmt: skip
        self.flow.add(var)

    def _tool_description_params(self, node: SpanNode, tool: str) -> list[Variable]:
        """Parameters for the tool descriptions an adapter opted in (``tg_bridge.tool_bindings``).

        Malformed records are skipped: span content is untrusted input.
        """
        raw = node.record.attributes.get(sc.TOOL_BINDINGS)
        try:
            records = json.loads(raw) if isinstance(raw, str) else []
        except (ValueError, RecursionError):
            records = []
        params = []
        for rec in records if isinstance(records, list) else []:
            if not isinstance(rec, dict) or not isinstance(rec.get("description"), str):
                continue
            if not rec["description"].strip():
                continue
            key = rec.get("binding") if isinstance(rec.get("binding"), str) else None
            params.append(get_parameter(
                self.pool, template=rec["description"], name=f"tool:{rec.get('name') or tool}",
                role=f"description of tool '{rec.get('name') or tool}' shown to the model",
                fmt="none", binding_key=key, bindings=self.bindings,
                metadata={"tool": rec.get("name") or tool, "span": node.name},
            ))  # fmt: skip
        return params
