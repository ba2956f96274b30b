"""Renderings of a :class:`~tg_bridge.graph.Graph`: JSON, Mermaid, Graphviz DOT, text, SVG, HTML.

Every function is pure and deterministic: nodes are numbered ``n1, n2, ...`` in the graph's
topological order (parents first), edges are listed child by child in parent order. Values are
complete in JSON and shortened (whitespace collapsed, cut with ``...``) in the diagrams and
the text view. Everything user-supplied is escaped for the target syntax. The SVG drawing
(:mod:`tg_bridge.views_svg`, shown by :func:`graph_to_html`) may run Graphviz ``dot`` when it
is installed; ``engine="builtin"`` keeps it pure Python.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, TypedDict

from .variable import Variable, VariableKind
from .views_svg import SvgEngine, graph_to_svg

if TYPE_CHECKING:
    from .graph import Graph

__all__ = [
    "EdgeJSON", "GraphJSON", "NodeJSON", "graph_to_dot", "graph_to_html", "graph_to_json",
    "graph_to_mermaid", "graph_to_svg", "graph_to_text", "shorten",
]

DIAGRAM_VALUE_CHARS = 60
TEXT_VALUE_CHARS = 100

# kind -> (mermaid open, mermaid close, dot shape, fill colour)
_SHAPES: dict[str, tuple[str, str, str, str]] = {
    "parameter": ('[["', '"]]', "note", "#fde68a"),
    "input": ('(["', '"])', "oval", "#bfdbfe"),
    "document": ('[("', '")]', "cylinder", "#e5e7eb"),
    "tool_result": ('[/"', '"/]', "parallelogram", "#e5e7eb"),
    "llm_output": ('("', '")', "box", "#bbf7d0"),
    "output": ('("', '")', "box", "#bbf7d0"),
    "loss": ('{{"', '"}}', "hexagon", "#fecaca"),
}
_DEFAULT_SHAPE = ('["', '"]', "box", "#ffffff")


def shorten(text: str, limit: int = DIAGRAM_VALUE_CHARS) -> str:
    """``text`` on one line (whitespace collapsed), cut to ``limit`` characters with ``...``."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: max(0, limit - 3)] + "..."


def _ids(graph: Graph) -> dict[int, str]:
    return {id(node): f"n{i}" for i, node in enumerate(graph.nodes, start=1)}


def _edges(graph: Graph, ids: dict[int, str]) -> list[tuple[str, str]]:
    edges: list[tuple[str, str]] = []
    for node in graph.nodes:
        for parent in node.parents:
            edges.append((ids[id(parent)], ids[id(node)]))
    return edges


def _is_parameter(node: Variable) -> bool:
    return node.requires_grad and node.op is None


class NodeJSON(TypedDict):
    """One node of :func:`graph_to_json` (``op*`` are None for a leaf)."""

    id: str
    kind: VariableKind
    role: str
    name: str | None
    key: str
    value: str
    requires_grad: bool
    trusted: bool
    op: str | None
    op_name: str | None
    op_attrs: object
    inputs: list[str]
    gradients: list[str]
    metadata: object


class EdgeJSON(TypedDict):
    source: str
    target: str


class GraphJSON(TypedDict):
    """What :func:`graph_to_json` returns; node references are node ids."""

    nodes: list[NodeJSON]
    edges: list[EdgeJSON]
    parameters: list[str]
    outputs: list[str]
    metadata: object


def _jsonable(value: object, ids: dict[int, str], depth: int = 0) -> object:
    """Plain JSON data: Variables become their node id, unknown objects their repr."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Variable):
        return ids.get(id(value), repr(value))
    if depth > 20:
        return repr(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, ids, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, ids, depth + 1) for v in value]
    return repr(value)


# -- JSON ---------------------------------------------------------------------------------
def graph_to_json(graph: Graph) -> GraphJSON:
    """A JSON-serializable dict: ``nodes`` (id, kind, role, name, key, value, requires_grad,
    trusted, op, op_name, op_attrs, inputs, gradients, metadata), ``edges`` (parent -> child),
    ``parameters`` and ``outputs`` (node ids) and the graph ``metadata``."""
    ids = _ids(graph)
    nodes: list[NodeJSON] = []
    for node in graph.nodes:
        op = node.op
        nodes.append(
            {
                "id": ids[id(node)],
                "kind": node.kind,
                "role": node.role,
                "name": node.name,
                "key": node.key,
                "value": node.value,
                "requires_grad": node.requires_grad,
                "trusted": node.trusted,
                "op": op.kind if op is not None else None,
                "op_name": op.name if op is not None else None,
                "op_attrs": _jsonable(op.attrs, ids) if op is not None else None,
                "inputs": [ids[id(p)] for p in node.parents],
                "gradients": [g.text for g in node.gradients],
                "metadata": _jsonable(node.metadata, ids),
            }
        )
    return {
        "nodes": nodes,
        "edges": [{"source": s, "target": t} for s, t in _edges(graph, ids)],
        "parameters": [ids[id(p)] for p in graph.parameters()],
        "outputs": [ids[id(o)] for o in graph.outputs],
        "metadata": _jsonable(graph.metadata, ids),
    }


# -- Mermaid ------------------------------------------------------------------------------
_MERMAID_ESCAPES = {'"': "#quot;", "#": "#35;", "<": "#lt;", ">": "#gt;", "&": "#amp;", "`": "#96;"}
_MERMAID_RE = re.compile("[" + re.escape("".join(_MERMAID_ESCAPES)) + "]")


def _mermaid_escape(text: str) -> str:
    return _MERMAID_RE.sub(lambda m: _MERMAID_ESCAPES[m.group(0)], text)


def _label_parts(node: Variable) -> tuple[str, str]:
    head: str = node.kind
    if node.op is not None:
        head += f" = {node.op.kind}" + (f" {node.op.name}" if node.op.name else "")
    elif node.name:
        head += f" {node.name}"
    return shorten(head, DIAGRAM_VALUE_CHARS), shorten(node.value)


def graph_to_mermaid(graph: Graph) -> str:
    """A Mermaid ``flowchart TD``: one node per variable (shape by kind), parameters styled."""
    ids = _ids(graph)
    lines = ["flowchart TD"]
    for node in graph.nodes:
        opening, closing, _, _ = _SHAPES.get(node.kind, _DEFAULT_SHAPE)
        head, value = _label_parts(node)
        label = _mermaid_escape(head) + "<br/>" + _mermaid_escape(value)
        lines.append(f"    {ids[id(node)]}{opening}{label}{closing}")
    for source, target in _edges(graph, ids):
        lines.append(f"    {source} --> {target}")
    params = [ids[id(p)] for p in graph.parameters()]
    if params:
        lines.append("    classDef param fill:#fde68a,stroke:#b45309,stroke-width:2px")
        lines.append(f"    class {','.join(params)} param")
    return "\n".join(lines) + "\n"


# -- DOT ----------------------------------------------------------------------------------
def _dot_escape(text: str) -> str:
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return re.sub(r"[\r\n\t]", " ", text)


def graph_to_dot(graph: Graph, *, wrap: int | None = None) -> str:
    """A Graphviz ``digraph`` (parents above children); parameters drawn bold.

    With ``wrap`` (characters per line) values are shown on up to two wrapped lines instead
    of one line of :data:`DIAGRAM_VALUE_CHARS` (used for the SVG drawing: narrower boxes).
    """
    ids = _ids(graph)
    lines = [
        "digraph tg_bridge {",
        "  rankdir=TB;",
        '  node [fontname="Helvetica", fontsize=10, style=filled];',
    ]
    for node in graph.nodes:
        _, _, shape, fill = _SHAPES.get(node.kind, _DEFAULT_SHAPE)
        head, value = _label_parts(node)
        if wrap is not None:
            from .views_svg import wrap_text

            value = "\n".join(wrap_text(str(node.value), wrap, 2))
        label = "\\n".join(_dot_escape(part) for part in [head, *value.split("\n")])
        bold = ", penwidth=2" if _is_parameter(node) else ""
        lines.append(f'  {ids[id(node)]} [label="{label}", shape={shape}, fillcolor="{fill}"{bold}];')
    for source, target in _edges(graph, ids):
        lines.append(f"  {source} -> {target};")
    lines.append("}")
    return "\n".join(lines) + "\n"


# -- text ---------------------------------------------------------------------------------
def graph_to_text(graph: Graph) -> str:
    """A readable listing: parameters first (role, key, value), then every node in
    topological order with its operation and inputs."""
    ids = _ids(graph)
    params = graph.parameters()
    lines = [f"Graph: {len(graph.nodes)} nodes, {len(params)} parameters"]
    lines.append("Parameters:" if params else "Parameters: none")
    for p in params:
        lines.append(f"  {ids[id(p)]}  {p.role}")
        lines.append(f"      key: {p.key}")
        lines.append(f"      value: {json.dumps(shorten(p.value, TEXT_VALUE_CHARS), ensure_ascii=False)}")
    lines.append("Nodes:")
    for node in graph.nodes:
        nid = ids[id(node)]
        if node.op is not None:
            args = ", ".join(ids[id(p)] for p in node.parents)
            name = f" {node.op.name!r}" if node.op.name else ""
            how = f"= {node.op.kind}{name}({args})"
        elif node.parents:
            how = "<- " + ", ".join(ids[id(p)] for p in node.parents)
        else:
            how = "(trainable)" if node.requires_grad else "(leaf)"
        lines.append(f"  {nid} [{node.kind}] {how}")
        lines.append(f"      role: {shorten(node.role, TEXT_VALUE_CHARS)}")
        lines.append(f"      value: {json.dumps(shorten(node.value, TEXT_VALUE_CHARS), ensure_ascii=False)}")
        if node.gradients:
            lines.append(f"      gradients: {len(node.gradients)}")
    return "\n".join(lines) + "\n"


# -- HTML ---------------------------------------------------------------------------------
def graph_to_html(graph: Graph, *, mermaid_js: str | None = None, engine: SvgEngine = "auto") -> str:
    """Self-contained HTML for notebooks: the graph drawn as SVG (:func:`graph_to_svg`:
    Graphviz when installed, else the built-in layered layout), the parameter table, and in
    collapsed blocks the text listing and the Mermaid source. Everything is escaped.

    Nothing is fetched by default. Pass ``mermaid_js`` (a URL of the mermaid ESM bundle) to add
    a script that also renders the Mermaid source where scripts may run.
    """
    esc = html.escape
    ids = _ids(graph)
    rows = "".join(
        f"<tr><td>{ids[id(p)]}</td><td>{esc(p.role)}</td><td><code>{esc(p.key)}</code></td>"
        f"<td>{esc(shorten(p.value, TEXT_VALUE_CHARS))}</td></tr>"
        for p in graph.parameters()
    )
    table = (
        "<table><thead><tr><th>id</th><th>role</th><th>key</th><th>value</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        if rows
        else "<p>No parameters.</p>"
    )
    script = ""
    if mermaid_js:
        script = (
            f'<script type="module">import mermaid from {json.dumps(mermaid_js)};'
            "mermaid.initialize({startOnLoad: false});"
            "mermaid.run({querySelector: '.tg-bridge-graph pre.mermaid'});</script>"
        )
    return (
        "<div class='tg-bridge-graph'>"
        f"<p><b>Graph</b>: {len(graph.nodes)} nodes, {len(graph.parameters())} parameters</p>"
        f"<div style='overflow:auto;max-width:100%'>{graph_to_svg(graph, engine=engine)}</div>"
        f"{table}"
        f"<details><summary>nodes</summary><pre>{esc(graph_to_text(graph))}</pre></details>"
        f"<details><summary>Mermaid source</summary><pre class='mermaid'>"
        f"{esc(graph_to_mermaid(graph))}</pre></details>"
        f"{script}</div>"
    )
