"""Graph: a deterministic view over the variables reachable from some outputs.

Topological order is computed iteratively (a chain 10,000 deep is fine) and is stable:
parents before children, ties broken by first discovery from ``outputs`` in parent order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from .exceptions import GraphError, UsageError
from .variable import Variable

if TYPE_CHECKING:
    from .views import GraphJSON

__all__ = ["Graph", "topological_order"]


def topological_order(outputs: Sequence[Variable]) -> list[Variable]:
    """All variables reachable from ``outputs`` through ``parents``, parents first.

    Iterative depth-first post-order; raises :class:`GraphError` on a cycle.
    """
    order: list[Variable] = []
    done: set[int] = set()  # ids only for membership; order comes from the list
    on_stack: set[int] = set()
    for root in outputs:
        if id(root) in done:
            continue
        stack: list[tuple[Variable, int]] = [(root, 0)]
        on_stack.add(id(root))
        while stack:
            node, next_parent = stack[-1]
            if next_parent < len(node.parents):
                stack[-1] = (node, next_parent + 1)
                parent = node.parents[next_parent]
                if id(parent) in done:
                    continue
                if id(parent) in on_stack:
                    raise GraphError(f"cycle in graph through {parent!r}")
                on_stack.add(id(parent))
                stack.append((parent, 0))
            else:
                stack.pop()
                on_stack.discard(id(node))
                done.add(id(node))
                order.append(node)
    return order


class Graph:
    """The variables reachable from ``outputs``, plus run metadata.

    ``metadata`` holds things like ``trace_id``, ``run_id`` and the inputs of the run.
    Graphs share variables with whoever built them; they do not copy.
    """

    def __init__(
        self, outputs: Sequence[Variable] = (), *, metadata: Mapping[str, Any] | None = None
    ) -> None:
        for out in outputs:
            if not isinstance(out, Variable):
                raise UsageError(f"Graph outputs must be Variables, got {type(out).__name__}")
        self.outputs: tuple[Variable, ...] = tuple(outputs)
        self.metadata: dict[str, Any] = dict(metadata or {})  # free-form, like Variable.metadata
        self._nodes: list[Variable] | None = None

    @property
    def nodes(self) -> tuple[Variable, ...]:
        """Every reachable variable in topological order (parents first)."""
        if self._nodes is None:
            self._nodes = topological_order(self.outputs)
        return tuple(self._nodes)

    def invalidate(self) -> None:
        """Forget the cached order after the graph's edges were changed."""
        self._nodes = None

    def __iter__(self) -> Iterator[Variable]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def parameters(self) -> list[Variable]:
        """Trainable leaves (prompts the app owns), in topological order, each once."""
        return [v for v in self.nodes if v.requires_grad and v.op is None]

    def find(self, key: str) -> Variable | None:
        """The first variable whose ``key`` equals ``key``, or None."""
        for node in self.nodes:
            if node.key == key:
                return node
        return None

    def reverse_levels(self) -> list[list[Variable]]:
        """Variables grouped by longest distance from any output (outputs first).

        Variables of one level never depend on each other, so their backward calls can run
        concurrently; level ``i+1`` only needs the gradients produced by levels ``<= i``.
        """
        depth: dict[int, int] = {}
        order = self.nodes
        for node in reversed(order):  # children before parents
            d = depth.setdefault(id(node), 0)
            for parent in node.parents:
                if depth.get(id(parent), -1) < d + 1:
                    depth[id(parent)] = d + 1
        levels: list[list[Variable]] = []
        for node in reversed(order):
            d = depth[id(node)]
            while len(levels) <= d:
                levels.append([])
            levels[d].append(node)
        return levels

    @classmethod
    def merge(cls, graphs: Iterable[Graph]) -> Graph:
        """One graph over several runs in which each parameter key appears once.

        The first parameter object seen for a key becomes canonical; every other graph's
        duplicate is replaced in the ``parents`` and ``op.inputs`` of its children (the input
        graphs are edited in place and should not be used separately afterwards). A prompt
        shared by B runs is then ONE parameter that receives B gradients.
        """
        graphs = list(graphs)
        canonical: dict[str, Variable] = {}
        outputs: list[Variable] = []
        for graph in graphs:
            for node in graph.nodes:
                if node.requires_grad and node.op is None:
                    canonical.setdefault(node.key, node)
        for graph in graphs:
            for node in graph.nodes:
                if not node.parents:
                    continue
                new_parents = tuple(_canonical(p, canonical) for p in node.parents)
                if any(a is not b for a, b in zip(new_parents, node.parents)):
                    node.parents = new_parents
                    if node.op is not None:
                        node.op.inputs = tuple(_canonical(p, canonical) for p in node.op.inputs)
            graph.invalidate()
            outputs.extend(graph.outputs)
        merged = cls(outputs, metadata={"merged_from": len(graphs)})
        merged.metadata["graphs"] = [g.metadata for g in graphs]
        return merged

    # -- views (implemented in tg_bridge.views) --------------------------------------------
    def to_json(self) -> GraphJSON:
        """A JSON-serializable description: nodes, edges, parameters, metadata."""
        from .views import graph_to_json

        return graph_to_json(self)

    def to_mermaid(self) -> str:
        """A Mermaid ``flowchart`` of the graph."""
        from .views import graph_to_mermaid

        return graph_to_mermaid(self)

    def to_dot(self) -> str:
        """A Graphviz DOT rendering of the graph."""
        from .views import graph_to_dot

        return graph_to_dot(self)

    def to_svg(self, *, engine: Literal["auto", "dot", "builtin"] = "auto") -> str:
        """The graph drawn as one ``<svg>`` element, without network: Graphviz ``dot`` when
        installed (``engine="auto"``), else a built-in layered layout."""
        from .views_svg import graph_to_svg

        return graph_to_svg(self, engine=engine)

    def __str__(self) -> str:
        from .views import graph_to_text

        return graph_to_text(self)

    def _repr_html_(self) -> str:
        from .views import graph_to_html

        return graph_to_html(self)

    def __repr__(self) -> str:
        return f"<Graph {len(self.nodes)} nodes, {len(self.parameters())} parameters>"


def _canonical(var: Variable, canonical: dict[str, Variable]) -> Variable:
    if var.requires_grad and var.op is None:
        return canonical.get(var.key, var)
    return var
