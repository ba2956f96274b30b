"""The graph as an SVG picture, drawn locally: Graphviz ``dot`` when installed, else a
built-in layered layout in pure Python.

Contract of :func:`graph_to_svg`:

* Nothing touches the network. ``dot`` runs as a subprocess with a timeout; its output is
  parsed and sanitized (no scripts, no event handlers, no external links) before use. Any
  failure (missing, non-zero exit, timeout, unparsable output) falls back to the built-in
  layout, which never fails on a valid graph.
* The built-in layout is deterministic (same graph -> byte-identical SVG): nodes are layered
  by longest path from the sources (parents above children), ordered within a layer by
  barycenter sweeps, and edges are smooth curves through placeholder points for edges that
  span several layers, so no edge cuts through a node box (within a budget of
  :data:`MAX_PLACEHOLDERS`; past it, the remaining long edges are direct curves).
* Node text is hostile: it is shortened, stripped of characters XML cannot hold and escaped;
  the full (shortened) value is in a ``<title>`` tooltip. Every coordinate lies inside the
  ``viewBox``.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import unicodedata
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING, Literal

from ._utf8 import utf8_safe
from .exceptions import UsageError
from .variable import Variable

if TYPE_CHECKING:
    from .graph import Graph

__all__ = [
    "MAX_DRAWN_NODES", "graph_to_svg", "layout_graph", "sanitize_svg", "wrap_text", "xml_text",
]

log = logging.getLogger(__name__)

SvgEngine = Literal["auto", "dot", "builtin"]

MAX_DRAWN_NODES = 400  # beyond this a picture is unreadable; the text listing stays
# placeholders for edges that skip layers (one per crossed layer) cost time and bytes
# quadratically when one prompt feeds every step of a deep chain; past this budget the
# remaining long edges are drawn as direct curves
MAX_PLACEHOLDERS = 1500
DOT_TIMEOUT_S = 10.0

FONT_PX = 11
CHAR_W = FONT_PX * 0.62  # monospace advance; wide (CJK) characters count twice
LINE_H = 15
PAD_X, PAD_Y = 10, 8
LINE_CHARS = 34  # characters per text line in a box
MIN_BOX_W = 90
LAYER_GAP = 56  # vertical space between layers (room for edges)
NODE_GAP = 22  # horizontal space between boxes of one layer
DUMMY_W = 12  # width reserved for an edge passing through a layer
MARGIN = 16
SWEEPS = 6

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"

# kind -> (fill, stroke, shape)
_STYLE: dict[str, tuple[str, str, str]] = {
    "parameter": ("#fde68a", "#b45309", "note"),
    "input": ("#bfdbfe", "#1d4ed8", "pill"),
    "document": ("#e5e7eb", "#4b5563", "rect"),
    "tool_result": ("#e5e7eb", "#4b5563", "slant"),
    "llm_output": ("#bbf7d0", "#15803d", "round"),
    "output": ("#bbf7d0", "#15803d", "round"),
    "loss": ("#fecaca", "#b91c1c", "hexagon"),
}
_DEFAULT_STYLE = ("#ffffff", "#374151", "rect")

# characters XML 1.0 cannot carry at all (even escaped), plus lone surrogates
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def xml_text(text: str) -> str:
    """``text`` safe inside XML/HTML text and quoted attributes: invalid characters dropped,
    ``& < > " '`` escaped (so ``<script>`` and ``]]>`` arrive as plain text)."""
    text = _XML_BAD.sub("", str(text))
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;"))


def _char_units(ch: str) -> int:
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def _units(text: str) -> int:
    return sum(_char_units(c) for c in text)


def _cut(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` display units, ending in ``...`` when cut."""
    if _units(text) <= limit:
        return text
    out, used = [], 0
    for ch in text:
        u = _char_units(ch)
        if used + u > limit - 3:
            break
        out.append(ch)
        used += u
    return "".join(out) + "..."


def wrap_text(text: str, width: int, max_lines: int) -> list[str]:
    """``text`` on at most ``max_lines`` lines of ``width`` display units, broken at spaces
    when one is near (long words are split); the last line ends in ``...`` when cut."""
    text = str(text)
    budget = 4 * width * max_lines + 64  # a huge document costs no more than a short one
    truncated = len(text) > budget
    rest = " ".join(_XML_BAD.sub("", text[:budget]).split())
    lines: list[str] = []
    while rest and len(lines) < max_lines:
        if _units(rest) <= width:
            lines.append(rest)
            rest = ""
            break
        take, used = 0, 0
        for ch in rest:
            if used + _char_units(ch) > width:
                break
            used += _char_units(ch)
            take += 1
        piece = rest[:take]
        space = piece.rfind(" ")
        if space > width // 3:
            piece = piece[:space]
        lines.append(piece.rstrip())
        rest = rest[len(piece):].lstrip()
    if (rest or truncated) and lines:
        lines[-1] = _cut(lines[-1] + " " + (rest or "..."), width)
    return lines or ["..." if truncated else ""]


# -- layout -------------------------------------------------------------------------------
@dataclass
class Box:
    """A node of the drawing (``node`` is None for an edge placeholder)."""

    key: str
    node: Variable | None
    lines: list[str]
    width: float
    height: float
    layer: int = 0
    x: float = 0.0  # centre
    y: float = 0.0  # top
    ups: list[str] = field(default_factory=list)  # keys of boxes in the layer above
    downs: list[str] = field(default_factory=list)  # keys of boxes in the layer below


@dataclass
class Layout:
    """Positions of every box and the point lists of every edge; ``width``/``height`` is the
    canvas (the viewBox is ``0 0 width height``)."""

    boxes: dict[str, Box]
    layers: list[list[str]]
    edges: list[tuple[str, str, list[tuple[float, float]]]]
    width: float
    height: float


def _head(node: Variable) -> str:
    head: str = node.kind
    if node.op is not None:
        head += f" = {node.op.kind}" + (f" {node.op.name}" if node.op.name else "")
    elif node.name:
        head += f" {node.name}"
    return head


def _box_for(key: str, node: Variable) -> Box:
    head = _cut(" ".join(_XML_BAD.sub("", _head(node)).split()), LINE_CHARS)
    lines = [head] + wrap_text(str(node.value), LINE_CHARS, 2)
    width = max(MIN_BOX_W, max(_units(line) for line in lines) * CHAR_W + 2 * PAD_X)
    height = len(lines) * LINE_H + 2 * PAD_Y
    return Box(key, node, lines, width, height)


def layout_graph(graph: Graph) -> Layout:
    """Sugiyama-lite: longest-path layers, placeholders on long edges, barycenter ordering,
    then x by averaging over neighbours with a minimum separation. Deterministic."""
    nodes = graph.nodes
    ids = {id(n): f"n{i}" for i, n in enumerate(nodes, start=1)}
    boxes: dict[str, Box] = {}
    for node in nodes:  # topological order: parents first
        box = _box_for(ids[id(node)], node)
        box.layer = 1 + max((boxes[ids[id(p)]].layer for p in node.parents), default=-1)
        boxes[box.key] = box
    n_layers = 1 + max((b.layer for b in boxes.values()), default=-1)
    layers: list[list[str]] = [[] for _ in range(n_layers)]
    for key in boxes:
        layers[boxes[key].layer].append(key)

    chains: list[tuple[str, str, list[str]]] = []  # (source, target, [source, dummies.., target])
    seen_edges: set[tuple[str, str]] = set()
    placeholders = 0
    for node in nodes:
        target = ids[id(node)]
        for parent in node.parents:
            source = ids[id(parent)]
            if (source, target) in seen_edges:  # the same input twice: one arrow
                continue
            seen_edges.add((source, target))
            chain = [source]
            span = boxes[target].layer - boxes[source].layer - 1
            if placeholders + span > MAX_PLACEHOLDERS:
                span = 0  # over budget: this edge is drawn as one direct curve
            placeholders += span
            for layer in range(boxes[source].layer + 1, boxes[source].layer + 1 + span):
                dummy = Box(f"d{len(chains)}_{layer}", None, [], DUMMY_W, 0.0, layer)
                boxes[dummy.key] = dummy
                layers[layer].append(dummy.key)
                chain.append(dummy.key)
            chain.append(target)
            for a, b in pairwise(chain):
                boxes[a].downs.append(b)
                boxes[b].ups.append(a)
            chains.append((source, target, chain))

    _order_layers(layers, boxes)
    _place_x(layers, boxes)
    _straighten(chains, layers, boxes)

    # y: each layer as tall as its tallest box; boxes centred vertically in their band
    y = float(MARGIN)
    for keys in layers:
        tall = max((boxes[k].height for k in keys), default=0.0)
        for k in keys:
            box = boxes[k]
            box.y = y + (tall - box.height) / 2 if box.node is not None else y
            if box.node is None:
                box.height = tall
        y += tall + LAYER_GAP
    height = (y - LAYER_GAP + MARGIN) if layers else 2.0 * MARGIN
    width = max((b.x + b.width / 2 for b in boxes.values()), default=0.0) + MARGIN
    width = max(width, 2.0 * MARGIN)

    # ports: several edges leaving (entering) one box spread along its bottom (top) side,
    # ordered by where their other end is, so arrows do not pile onto one point
    out_x: dict[tuple[str, str], float] = {}
    in_x: dict[tuple[str, str], float] = {}
    for key, box in boxes.items():
        if box.node is None:
            continue
        for side, ports in (("downs", out_x), ("ups", in_x)):
            others = sorted(getattr(box, side), key=lambda k: (boxes[k].x, k))
            step = min(24.0, box.width * 0.7 / max(1, len(others)))
            for i, other in enumerate(others):
                ports[(key, other)] = box.x + (i - (len(others) - 1) / 2) * step
    edges = []
    for source, target, chain in chains:
        points = [(out_x[(source, chain[1])], boxes[source].y + boxes[source].height)]
        for key in chain[1:-1]:
            points.append((boxes[key].x, boxes[key].y))
            points.append((boxes[key].x, boxes[key].y + boxes[key].height))
        points.append((in_x[(target, chain[-2])], boxes[target].y))
        edges.append((source, target, points))
    return Layout(boxes, layers, edges, round(width, 1), round(height, 1))


def _order_layers(layers: list[list[str]], boxes: dict[str, Box]) -> None:
    """Barycenter heuristic, down and up sweeps; ties keep the current order (stable)."""

    def sweep(index: int, neighbours: str, ref: list[str]) -> None:
        pos = {k: i for i, k in enumerate(ref)}
        current = layers[index]
        keyed = []
        for i, k in enumerate(current):
            adj = [pos[n] for n in getattr(boxes[k], neighbours) if n in pos]
            keyed.append((sum(adj) / len(adj) if adj else float(i), i, k))
        layers[index] = [k for _, _, k in sorted(keyed)]

    for _ in range(SWEEPS):
        for i in range(1, len(layers)):
            sweep(i, "ups", layers[i - 1])
        for i in range(len(layers) - 2, -1, -1):
            sweep(i, "downs", layers[i + 1])


def _place_x(layers: list[list[str]], boxes: dict[str, Box]) -> None:
    """Pack each layer left to right, then pull boxes toward the mean x of their
    neighbours while keeping the minimum gap; finally shift everything right of MARGIN."""

    def gap(a: Box, b: Box) -> float:
        return a.width / 2 + NODE_GAP + b.width / 2

    for layer in layers:
        x = 0.0
        prev: Box | None = None
        for k in layer:
            box = boxes[k]
            x = box.width / 2 if prev is None else x + gap(prev, box)
            box.x = x
            prev = box

    def relax(index: int, neighbours: str) -> None:
        keys = layers[index]
        if not keys:
            return
        desired = []
        for k in keys:
            adj = [boxes[n].x for n in getattr(boxes[k], neighbours)]
            desired.append(sum(adj) / len(adj) if adj else boxes[k].x)
        placed = list(desired)
        for i in range(1, len(keys)):
            placed[i] = max(placed[i], placed[i - 1] + gap(boxes[keys[i - 1]], boxes[keys[i]]))
        shift = sum(d - p for d, p in zip(desired, placed)) / len(keys)
        for k, p in zip(keys, placed):
            boxes[k].x = p + shift

    for _ in range(SWEEPS):
        for i in range(1, len(layers)):
            relax(i, "ups")
        for i in range(len(layers) - 2, -1, -1):
            relax(i, "downs")
    left = min((b.x - b.width / 2 for b in boxes.values()), default=0.0)
    for box in boxes.values():
        box.x = round(box.x - left + MARGIN, 1)


def _straighten(chains: list[tuple[str, str, list[str]]], layers: list[list[str]],
                boxes: dict[str, Box]) -> None:
    """Move the placeholders of each long edge toward one common x (their mean), each only
    as far as its layer neighbours allow: long edges become near-vertical runs instead of
    zigzags, and order and gaps within every layer are kept."""
    where = {k: (i, j) for i, layer in enumerate(layers) for j, k in enumerate(layer)}
    for _, _, chain in chains:
        dummies = chain[1:-1]
        if not dummies:
            continue
        goal = sum(boxes[k].x for k in dummies) / len(dummies)
        for k in dummies:
            i, j = where[k]
            layer = layers[i]
            lo, hi = float("-inf"), float("inf")
            box = boxes[k]
            if j > 0:
                left = boxes[layer[j - 1]]
                lo = left.x + left.width / 2 + NODE_GAP + box.width / 2
            if j + 1 < len(layer):
                right = boxes[layer[j + 1]]
                hi = right.x - right.width / 2 - NODE_GAP - box.width / 2
            if lo <= hi:
                box.x = round(min(hi, max(lo, goal)), 1)


# -- built-in drawing -----------------------------------------------------------------------
def _shape(kind: str, box: Box, fill: str, stroke: str) -> str:
    x0, y0 = box.x - box.width / 2, box.y
    w, h = box.width, box.height
    x1, y1 = x0 + w, y0 + h
    common = f'fill="{fill}" stroke="{stroke}"'
    if kind == "pill":
        return f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{w:.1f}" height="{h:.1f}" rx="{h / 2:.1f}" {common}/>'
    if kind == "round":
        return f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{w:.1f}" height="{h:.1f}" rx="8" {common}/>'
    if kind == "note":  # a sheet with a folded corner, thick border: the prompts we train
        f = 10.0
        pts = [(x0, y0), (x1 - f, y0), (x1, y0 + f), (x1, y1), (x0, y1)]
        return (_poly(pts, f'{common} stroke-width="2.5"')
                + f'<polyline points="{x1 - f:.1f},{y0:.1f} {x1 - f:.1f},{y0 + f:.1f} '
                f'{x1:.1f},{y0 + f:.1f}" fill="none" stroke="{stroke}"/>')
    if kind == "hexagon":
        c = min(12.0, w / 4)
        pts = [(x0 + c, y0), (x1 - c, y0), (x1, y0 + h / 2), (x1 - c, y1), (x0 + c, y1), (x0, y0 + h / 2)]
        return _poly(pts, common)
    if kind == "slant":
        s = 8.0
        return _poly([(x0 + s, y0), (x1, y0), (x1 - s, y1), (x0, y1)], common)
    return f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{w:.1f}" height="{h:.1f}" rx="2" {common}/>'


def _poly(points: list[tuple[float, float]], attrs: str) -> str:
    pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    return f'<polygon points="{pts}" {attrs}/>'


def _edge_path(points: list[tuple[float, float]]) -> str:
    """Vertical-tangent cubic curves between consecutive points (control points stay in
    each segment's bounding box, hence inside the canvas)."""
    (x, y), rest = points[0], points[1:]
    parts = [f"M{x:.1f},{y:.1f}"]
    for nx, ny in rest:
        if nx == x:
            parts.append(f"L{nx:.1f},{ny:.1f}")
        else:
            my = (y + ny) / 2
            parts.append(f"C{x:.1f},{my:.1f} {nx:.1f},{my:.1f} {nx:.1f},{ny:.1f}")
        x, y = nx, ny
    return " ".join(parts)


def builtin_svg(graph: Graph) -> str:
    """The built-in layered drawing as a standalone SVG document (no XML declaration)."""
    if not graph.nodes:
        return (f'<svg xmlns="{SVG_NS}" class="tg-bridge-graph-svg" width="240" height="40" '
                'viewBox="0 0 240 40"><text x="12" y="24" font-family="sans-serif" '
                'font-size="12" fill="#6b7280">empty graph</text></svg>')
    lay = layout_graph(graph)
    out = [
        (f'<svg xmlns="{SVG_NS}" class="tg-bridge-graph-svg" width="{lay.width:.0f}" '
         f'height="{lay.height:.0f}" viewBox="0 0 {lay.width:.1f} {lay.height:.1f}" '
         'role="img" aria-label="computation graph">'),
        ('<defs><marker id="tgb-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
         'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
         'fill="#6b7280"/></marker></defs>'),
        '<g class="edges" fill="none" stroke="#6b7280" stroke-width="1.3">',
    ]
    for source, target, points in lay.edges:
        out.append(f'<path class="edge" data-source="{source}" data-target="{target}" '
                   f'd="{_edge_path(points)}" marker-end="url(#tgb-arrow)"/>')
    out.append("</g>")
    out.append('<g class="nodes" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" '
               f'font-size="{FONT_PX}">')
    for key in (k for layer in lay.layers for k in layer):
        box = lay.boxes[key]
        node = box.node
        if node is None:
            continue
        fill, stroke, shape = _STYLE.get(node.kind, _DEFAULT_STYLE)
        title = xml_text(f"{key} [{node.kind}] {node.role}\n" + _cut(" ".join(str(node.value)[:2000].split()), 400))
        out.append(f'<g class="node" id="tgb-{key}" data-kind="{xml_text(node.kind)}">'
                   f"<title>{title}</title>{_shape(shape, box, fill, stroke)}")
        for i, line in enumerate(box.lines):
            ty = box.y + PAD_Y + (i + 1) * LINE_H - 4
            weight = ' font-weight="bold"' if i == 0 else ""
            out.append(f'<text x="{box.x:.1f}" y="{ty:.1f}" text-anchor="middle"{weight} '
                       f'fill="#111827">{xml_text(line)}</text>')
        out.append("</g>")
    out.append("</g></svg>")
    return "".join(out)


# -- graphviz -----------------------------------------------------------------------------
_SAFE_HREF = re.compile(r"^#[A-Za-z0-9_.:-]*$")
_EXTERNAL_URL = re.compile(r"url\(\s*(?!['\"]?\s*#)", re.IGNORECASE)  # url(...) not to #id
_DROP_TAGS = {"script", "foreignObject", "iframe", "object", "embed", "image", "use", "style"}


def sanitize_svg(text: str) -> str:
    """Parse SVG from an external program and keep only drawing: no DOCTYPE/entities, no
    scripts, styles or embedded documents, no ``on*`` handlers or ``style`` attributes, no
    links or ``url(...)`` except to in-document ``#id``, no ``javascript:`` anywhere. Raises ValueError when it is not a plain SVG document."""
    start = text.find("<svg")
    if start < 0:
        raise ValueError("no <svg> element")
    if "<!ENTITY" in text or "<!DOCTYPE" in text[start:]:
        raise ValueError("entity declarations are not allowed")
    root = ET.fromstring(text[start:])

    def clean(el: ET.Element) -> None:
        el.tag = _local(el.tag)  # plain names: serialized without ns0: prefixes
        for child in list(el):
            if (not isinstance(child.tag, str) or not child.tag.startswith(f"{{{SVG_NS}}}")
                    or _local(child.tag) in _DROP_TAGS):
                el.remove(child)  # comments, foreign XML, scripts, embedded documents
                continue
            clean(child)
        for name in list(el.attrib):
            value = el.attrib.pop(name)
            if name.startswith("{") and not name.startswith(f"{{{XLINK_NS}}}"):
                continue  # attributes of foreign namespaces
            local = _local(name).lower()
            if (local.startswith("on") or local == "style"
                    or "javascript:" in re.sub(r"\s", "", value.lower())
                    or _EXTERNAL_URL.search(value)
                    or (local == "href" and not _SAFE_HREF.match(value))):
                continue
            el.set(_local(name), value)

    if root.tag != f"{{{SVG_NS}}}svg":
        raise ValueError("root element is not an SVG <svg>")
    clean(root)
    root.set("xmlns", SVG_NS)
    root.set("class", "tg-bridge-graph-svg")
    return ET.tostring(root, encoding="unicode")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def dot_svg(graph: Graph, *, timeout: float = DOT_TIMEOUT_S) -> str | None:
    """Graphviz's drawing of ``graph.to_dot()``, sanitized; None when ``dot`` is missing or
    fails (the reason is logged at debug level)."""
    exe = shutil.which("dot")
    if exe is None:
        return None
    from .views import graph_to_dot

    try:
        proc = subprocess.run(
            [exe, "-Tsvg"], input=utf8_safe(graph_to_dot(graph, wrap=LINE_CHARS + 10)).encode("utf-8"),
            capture_output=True,
            timeout=timeout, check=False,
        )
        if proc.returncode != 0:
            log.debug("dot exited %s: %.300s", proc.returncode, proc.stderr)
            return None
        return sanitize_svg(proc.stdout.decode("utf-8", errors="replace"))
    except (OSError, subprocess.SubprocessError, ValueError, ET.ParseError) as exc:
        log.debug("dot unusable: %s: %s", type(exc).__name__, exc)
        return None


def graph_to_svg(graph: Graph, *, engine: SvgEngine = "auto", timeout: float = DOT_TIMEOUT_S) -> str:
    """The graph as one ``<svg>`` element (standalone: it carries its namespace).

    ``engine="auto"`` uses Graphviz when ``dot`` is on PATH and works, else the built-in
    layout; ``"builtin"`` never runs a program; ``"dot"`` falls back too (a picture is
    always returned); anything else raises UsageError. Graphs above
    :data:`MAX_DRAWN_NODES` nodes get a short notice instead.
    """
    if engine not in ("auto", "dot", "builtin"):
        raise UsageError(f"engine must be 'auto', 'dot' or 'builtin', got {engine!r}")
    if len(graph.nodes) > MAX_DRAWN_NODES:
        return (f'<svg xmlns="{SVG_NS}" class="tg-bridge-graph-svg" width="420" height="40" '
                'viewBox="0 0 420 40"><text x="12" y="24" font-family="sans-serif" font-size="12" '
                f'fill="#6b7280">{len(graph.nodes)} nodes: too many to draw; see the node '
                "listing</text></svg>")
    if engine in ("auto", "dot"):
        drawn = dot_svg(graph, timeout=timeout)
        if drawn is not None:
            return drawn
    return builtin_svg(graph)
