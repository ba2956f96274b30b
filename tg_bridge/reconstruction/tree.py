"""The span tree of a set of span records: parents, roots, execution order.

Robust by construction: duplicate span ids keep the first record, a parent that is missing
makes the span a root, and parent cycles are broken (the span that closes the cycle becomes a
root). Everything is iterative and linear in the number of spans, so no input can hang it.
Pure; not shared across threads.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable

from .. import semconv as sc
from ..spans import SpanRecord
from .nested_calls import merge_nested_calls
from .spanview import SpanView

__all__ = ["SpanNode", "SpanTree"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(eq=False)
class SpanNode:
    """One span in the tree. ``order`` is its position in execution (pre-)order."""

    record: SpanRecord
    index: int  # position in the input
    parent: SpanNode | None = None
    children: list[SpanNode] = dataclasses.field(default_factory=list)
    order: int = -1

    @property
    def name(self) -> str:
        return self.record.name

    def ancestors(self) -> list[SpanNode]:
        """Parent first, root last."""
        found: list[SpanNode] = []
        node = self.parent
        while node is not None:
            found.append(node)
            node = node.parent
        return found


@dataclasses.dataclass
class SpanTree:
    """Roots in start order and all nodes in execution order (pre-order, children by start)."""

    roots: list[SpanNode]
    nodes: list[SpanNode]
    duplicates: int = 0
    missing_parents: int = 0
    cycles: int = 0
    internal: int = 0
    #: Span views already read while building (id(node) -> view): see merge_nested_calls.
    views: dict[int, SpanView] = dataclasses.field(default_factory=dict)

    @classmethod
    def build(cls, spans: Iterable[SpanRecord]) -> SpanTree:
        by_id: dict[str, SpanNode] = {}
        by_node_id: dict[str, SpanNode] = {}
        ordered: list[SpanNode] = []
        duplicates = 0
        for i, record in enumerate(spans):
            key = f"{record.trace_id}/{record.span_id}"
            if key in by_id:
                duplicates += 1
                continue
            node = SpanNode(record, i)
            by_id[key] = node
            ordered.append(node)
            node_id = record.attributes.get(sc.NODE_ID)
            if isinstance(node_id, str) and node_id:
                by_node_id.setdefault(node_id, node)
        if duplicates:
            logger.warning("skipped %d span(s) with a duplicate span id", duplicates)

        missing = 0
        for node in ordered:
            parent = _parent_of(node, by_id, by_node_id)
            if parent is None and node.record.parent_id:
                missing += 1
            node.parent = parent
        cycles = _break_cycles(ordered)

        kept, internal = _drop_internal(ordered)
        views: dict[int, SpanView] = {}
        kept, _ = merge_nested_calls(kept, views)  # one model call seen as nested spans: one LLM span
        for node in kept:
            if node.parent is not None:
                node.parent.children.append(node)
        roots = [n for n in kept if n.parent is None]
        tree = cls(roots=_by_start(roots), nodes=[], duplicates=duplicates,
                   missing_parents=missing, cycles=cycles, internal=internal, views=views)  # fmt: skip
        tree.nodes = tree._preorder()
        return tree

    def _preorder(self) -> list[SpanNode]:
        out: list[SpanNode] = []
        stack = list(reversed(self.roots))
        while stack:
            node = stack.pop()
            node.order = len(out)
            out.append(node)
            node.children = _by_start(node.children)
            stack.extend(reversed(node.children))
        return out

    def descendants(self, node: SpanNode) -> list[SpanNode]:
        """All spans below ``node`` in execution order (not including it)."""
        out: list[SpanNode] = []
        stack = list(reversed(node.children))
        while stack:
            child = stack.pop()
            out.append(child)
            stack.extend(reversed(child.children))
        return out


def _parent_of(
    node: SpanNode, by_id: dict[str, SpanNode], by_node_id: dict[str, SpanNode]
) -> SpanNode | None:
    # The framework's own parent id wins: OTel context is lost across raw thread pools.
    framework_parent = node.record.attributes.get(sc.PARENT_NODE_ID)
    if isinstance(framework_parent, str) and framework_parent:
        found = by_node_id.get(framework_parent)
        if found is not None and found is not node:
            return found
    if node.record.parent_id:
        found = by_id.get(f"{node.record.trace_id}/{node.record.parent_id}")
        if found is not None and found is not node:
            return found
    return None


def _break_cycles(nodes: list[SpanNode]) -> int:
    """Cut parent links that close a cycle; returns how many were cut. Linear time."""
    state: dict[int, int] = {}  # id(node) -> 1 on the current walk, 2 known acyclic
    cut = 0
    for start in nodes:
        path: list[SpanNode] = []
        node: SpanNode | None = start
        while node is not None and state.get(id(node)) is None:
            state[id(node)] = 1
            path.append(node)
            node = node.parent
        if node is not None and state.get(id(node)) == 1:
            # the walk met itself: the last node walked points back into the path
            path[-1].parent = None
            cut += 1
        for walked in path:
            state[id(walked)] = 2
    if cut:
        logger.warning("broke %d parent cycle(s) among spans", cut)
    return cut


def _drop_internal(nodes: list[SpanNode]) -> tuple[list[SpanNode], int]:
    """Remove tg_bridge's own engine spans and everything below them (never graphed)."""
    hidden: dict[int, bool] = {}
    for node in nodes:  # memoized walk up: linear even for very deep chains
        path: list[SpanNode] = []
        cur: SpanNode | None = node
        verdict = False
        while cur is not None:
            known = hidden.get(id(cur))
            if known is not None:
                verdict = known
                break
            if cur.record.attributes.get(sc.INTERNAL) is True:
                verdict = True
                hidden[id(cur)] = True
                break
            path.append(cur)
            cur = cur.parent
        for walked in path:
            hidden[id(walked)] = verdict
    kept = [n for n in nodes if not hidden.get(id(n))]
    return kept, len(nodes) - len(kept)


def _by_start(nodes: list[SpanNode]) -> list[SpanNode]:
    return sorted(nodes, key=lambda n: (n.record.start_ns, n.index))
