"""The graph drawn as SVG: geometry inside the viewBox, no overlapping boxes, parents above
children, hostile text escaped, deterministic; Graphviz output sanitized or replaced.

Geometry is checked on the SVG itself (parsed with xml.etree), as a viewer would see it.
"""

from __future__ import annotations

import re
import sys
import unicodedata
import xml.etree.ElementTree as ET
from itertools import pairwise
from pathlib import Path

import pytest

from tests.test_views import HOSTILE, build
from tg_bridge import Graph, Variable
from tg_bridge.variable import Operation
from tg_bridge.views_svg import (
    LINE_CHARS,
    MAX_DRAWN_NODES,
    MAX_PLACEHOLDERS,
    NODE_GAP,
    graph_to_svg,
    layout_graph,
    sanitize_svg,
    xml_text,
)

NS = "{http://www.w3.org/2000/svg}"
NUM = re.compile(r"-?\d+(?:\.\d+)?(?:e-?\d+)?")


def llm(name: str, parents: list[Variable], value: str = "out") -> Variable:
    out = Variable(value, role=f"answer of {name}", kind="llm_output", parents=parents)
    out.op = Operation("llm_call", tuple(parents), out, {}, name)
    return out


def param(name: str, value: str = "prompt") -> Variable:
    return Variable(value, role=f"prompt {name}", requires_grad=True, kind="parameter", name=name,
                    key=f"app:{name}")


def agent() -> Graph:
    """Edges skipping layers, shared parents, a tool, several outputs into one loss."""
    p1, p2, p3 = param("planner"), param("writer", HOSTILE), param("style", "x" * 500)
    task = Variable("task", role="task", kind="input", name="task")
    plan = llm("planner", [p1, task])
    tool = Variable("[1, 2]", role="tool", kind="tool_result", name="search", parents=[plan])
    group = llm("grouper", [p1, tool])
    draft = llm("writer", [p2, p3, group, task])
    review = llm("reviewer", [draft, p3])
    final = llm("final", [draft, review, p2])
    loss = Variable("meh", role="evaluation", kind="loss", parents=[final, task])
    loss.op = Operation("loss", (final, task), loss, {})
    return Graph([loss])


def chain(n: int) -> Graph:
    node = param("p0")
    for i in range(1, n):
        node = llm(f"s{i}", [node])
    return Graph([node])


def fan(n: int) -> Graph:
    inputs = [Variable(f"doc {i} " * 5, role="doc", kind="document", name=f"d{i}") for i in range(n)]
    return Graph([llm("join", [param("sys"), *inputs])])


def view_box(root: ET.Element) -> tuple[float, float, float, float]:
    x, y, w, h = (float(v) for v in root.get("viewBox", "").split())
    assert float(root.get("width")) >= w - 1 and float(root.get("height")) >= h - 1
    return x, y, x + w, y + h


def points_of(el: ET.Element) -> list[tuple[float, float]]:
    """Every coordinate pair an element puts on the canvas."""
    tag = el.tag.replace(NS, "")
    a = el.attrib
    if tag == "rect":
        x, y, w, h = (float(a[k]) for k in ("x", "y", "width", "height"))
        return [(x, y), (x + w, y + h)]
    if tag in ("polygon", "polyline"):
        nums = [float(v) for v in NUM.findall(a["points"])]
        return list(zip(nums[::2], nums[1::2]))
    if tag == "path" and "data-source" in a:
        nums = [float(v) for v in NUM.findall(a["d"])]
        return list(zip(nums[::2], nums[1::2]))
    if tag == "text":
        return [(float(a["x"]), float(a["y"]))]
    if tag == "circle":
        r = float(a["r"])
        return [(float(a["cx"]) - r, float(a["cy"]) - r), (float(a["cx"]) + r, float(a["cy"]) + r)]
    if tag == "line":
        return [(float(a["x1"]), float(a["y1"])), (float(a["x2"]), float(a["y2"]))]
    return []


def assert_inside(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    x0, y0, x1, y1 = view_box(root)
    count = 0
    for el in root.iter():
        if el.tag == f"{NS}marker" or el in root.findall(f".//{NS}marker/*"):
            continue
        for x, y in points_of(el):
            count += 1
            assert x0 <= x <= x1 and y0 <= y <= y1, (el.tag, el.attrib, (x0, y0, x1, y1))
    assert count > 0
    return root


def node_boxes(root: ET.Element) -> dict[str, tuple[float, float, float, float]]:
    boxes = {}
    for g in root.iter(f"{NS}g"):
        if g.get("class") != "node":
            continue
        pts = [p for child in g if child.tag in (f"{NS}rect", f"{NS}polygon") for p in points_of(child)]
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        boxes[g.get("id")] = (min(xs), min(ys), max(xs), max(ys))
    return boxes


def shared_prompt_chain(n: int) -> Graph:
    """One prompt feeding every step of a deep chain: placeholders grow quadratically."""
    prompt = param("shared")
    node = prompt
    for i in range(1, n):
        node = llm(f"s{i}", [node, prompt])
    return Graph([node])


GRAPHS = {"small": build, "hostile": lambda: build(HOSTILE), "agent": agent,
          "chain30": lambda: chain(30), "fan40": lambda: fan(40),
          "shared120": lambda: shared_prompt_chain(120)}


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_builtin_drawing_stays_in_view_box_without_overlaps(name):
    graph = GRAPHS[name]()
    root = assert_inside(graph.to_svg(engine="builtin"))
    boxes = node_boxes(root)
    assert len(boxes) == len(graph.nodes)
    items = sorted(boxes.items())
    for i, (ka, a) in enumerate(items):  # no two node boxes overlap anywhere
        for kb, b in items[i + 1:]:
            apart = a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
            assert apart, (ka, a, kb, b)


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_every_edge_runs_from_parent_bottom_down_to_child_top(name):
    graph = GRAPHS[name]()
    root = ET.fromstring(graph.to_svg(engine="builtin"))
    boxes = node_boxes(root)
    edges = [p for p in root.iter(f"{NS}path") if p.get("data-source")]
    expected = {(f"n{graph.nodes.index(p) + 1}", f"n{i}")
                for i, node in enumerate(graph.nodes, start=1) for p in node.parents}
    assert {(e.get("data-source"), e.get("data-target")) for e in edges} == expected
    for e in edges:
        pts = points_of(e)
        src, dst = boxes[f"tgb-{e.get('data-source')}"], boxes[f"tgb-{e.get('data-target')}"]
        assert pts[0][1] == pytest.approx(src[3], abs=0.2)  # leaves the parent's bottom
        assert pts[-1][1] == pytest.approx(dst[1], abs=0.2)  # enters the child's top
        assert src[0] <= pts[0][0] <= src[2] and dst[0] <= pts[-1][0] <= dst[2]
        assert src[3] < dst[1]  # parents drawn above children


def test_layers_are_longest_paths_and_keep_their_gaps():
    graph = agent()
    lay = layout_graph(graph)
    for node, key in zip(graph.nodes, (f"n{i}" for i in range(1, 99))):
        expected = 1 + max((lay.boxes[f"n{graph.nodes.index(p) + 1}"].layer for p in node.parents),
                           default=-1)
        assert lay.boxes[key].layer == expected
    for layer in lay.layers:  # placeholders included: left to right with the minimum gap
        boxes = [lay.boxes[k] for k in layer]
        for a, b in pairwise(boxes):
            assert a.x + a.width / 2 + NODE_GAP <= b.x - b.width / 2 + 0.2
    # an edge skipping layers gets one placeholder per layer it crosses, so no edge cuts a box
    dummies = [b for b in lay.boxes.values() if b.node is None]
    assert dummies and all(0 < b.layer < len(lay.layers) - 1 for b in dummies)


def test_placeholders_stay_within_budget():
    lay = layout_graph(shared_prompt_chain(120))  # would need 119*118/2 = 7021 placeholders
    assert sum(1 for b in lay.boxes.values() if b.node is None) <= MAX_PLACEHOLDERS
    assert len(lay.edges) == 2 * 119 - 1  # every edge is still drawn


def test_builtin_drawing_is_deterministic():
    assert agent().to_svg(engine="builtin") == agent().to_svg(engine="builtin")
    assert fan(12).to_svg(engine="builtin") == fan(12).to_svg(engine="builtin")


def test_hostile_text_is_escaped_and_shortened():
    nasty = HOSTILE + " ]]> \x00\x1b\x07 \ud800 ' end " + "w" * 400
    graph = build(nasty)
    svg = graph.to_svg(engine="builtin")
    assert "<script>" not in svg and "]]>" not in svg and "\x00" not in svg
    root = ET.fromstring(svg)  # well-formed despite control characters and quotes
    texts = [t.text or "" for t in root.iter(f"{NS}text")]
    assert any("<script>alert(1)</script>" in t for t in texts)  # shown as text, not markup
    assert all(len(t) <= LINE_CHARS for t in texts)
    assert any(t.endswith("...") for t in texts)  # long value visibly cut
    title = next(root.iter(f"{NS}title")).text
    assert "\"all\"" in title and len(title) < 600
    assert xml_text("a<b>&\"'") == "a&lt;b&gt;&amp;&quot;&#39;"


def test_wrap_is_bounded_and_marks_every_cut():
    from tg_bridge.views_svg import wrap_text

    assert wrap_text("short text", 20, 2) == ["short text"]
    assert wrap_text("a " * 5000, 20, 2) == ["a a a a a a a a a a", "a a a a a a a a a..."]
    assert wrap_text(" " * 10_000 + "hidden", 20, 2) == ["..."]  # cut shows, even if blank
    lines = wrap_text("x" * 5_000_000, 34, 2)  # a huge document: only its head is looked at
    assert lines == ["x" * 34, "x" * 31 + "..."]


def test_wide_characters_count_double():
    graph = build("\u4f60\u597d" * 60)
    root = ET.fromstring(graph.to_svg(engine="builtin"))
    value_lines = [t.text for t in root.iter(f"{NS}text") if t.text and "\u4f60" in t.text]
    def units(t: str) -> int:
        return sum(2 if unicodedata.east_asian_width(c) == "W" else 1 for c in t)

    assert value_lines and all(units(t) <= LINE_CHARS for t in value_lines)
    assert max(len(t) for t in value_lines) < LINE_CHARS  # not counted as narrow


def test_empty_and_oversized_graphs():
    assert_inside(Graph([]).to_svg(engine="builtin"))
    big = fan(MAX_DRAWN_NODES + 5)
    svg = big.to_svg(engine="builtin")
    assert "too many to draw" in svg and 'class="node"' not in svg
    ET.fromstring(svg)


def test_graph_html_shows_the_svg_and_keeps_mermaid_as_text():
    page = build(HOSTILE)._repr_html_()
    assert page.index("<svg") < page.index("Mermaid source")
    assert "<details><summary>Mermaid source</summary><pre class='mermaid'>" in page


# -- Graphviz -------------------------------------------------------------------------------
def fake_dot(tmp_path: Path, monkeypatch, body: str) -> Path:
    """Put an executable ``dot`` first on PATH running the Python ``body``."""
    exe = tmp_path / "bin" / "dot"
    exe.parent.mkdir()
    exe.write_text(f"#!{sys.executable}\nimport sys, time\n{body}\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{exe.parent}")
    return exe


EVIL_SVG = """<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"
     width="100pt" height="50pt" viewBox="0 0 100 50" onload="alert(1)">
<script>alert(2)</script>
<g id="graph0" class="graph"><title>tg_bridge</title>
<a xlink:href="javascript:alert(3)"><text x="5" y="20" onclick="alert(4)">n1</text></a>
<a href="#n2"><text x="5" y="40">ok</text></a>
<foreignObject><div xmlns="http://www.w3.org/1999/xhtml">hi</div></foreignObject>
<image href="http://example.invalid/x.png" x="0" y="0"/>
<polygon fill="url(http://example.invalid/p#g)" style="fill:url('//example.invalid/q')"
 stroke="none" points="0,50 0,0 100,0 100,50"/>
<polygon fill="url(#local)" points="0,0 1,1 1,0"/>
</g></svg>"""


def test_dot_output_is_sanitized(tmp_path, monkeypatch):
    fake_dot(tmp_path, monkeypatch,
             f"sys.stdin.read()\nsys.stdout.write({EVIL_SVG!r})")
    svg = build().to_svg()
    low = svg.lower()
    for bad in ("<script", "onload", "onclick", "javascript:", "foreignobject", "<image",
                "example.invalid", "<?xml"):
        assert bad not in low, bad
    root = ET.fromstring(svg)
    assert root.get("class") == "tg-bridge-graph-svg"
    assert any(t.text == "ok" for t in root.iter(f"{NS}text"))  # the drawing itself is kept
    assert 'href="#n2"' in svg and 'fill="url(#local)"' in svg  # in-document links survive


@pytest.mark.parametrize("body", [
    "sys.stdin.read()\nsys.exit(3)",  # graphviz error
    "sys.stdin.read()\nsys.stdout.write('not svg at all')",
    "sys.stdin.read()\nsys.stdout.write('<!DOCTYPE svg [<!ENTITY a \"aaaa\">]><svg>&a;</svg>')",
    "time.sleep(60)",  # hangs: killed at the timeout
])
def test_broken_dot_falls_back_to_builtin(tmp_path, monkeypatch, body):
    fake_dot(tmp_path, monkeypatch, body)
    from tg_bridge.views_svg import graph_to_svg as draw

    svg = draw(build(), timeout=1.0)
    assert 'marker id="tgb-arrow"' in svg  # the built-in drawing
    assert svg == build().to_svg(engine="builtin")


def test_builtin_engine_never_runs_dot(tmp_path, monkeypatch):
    ran = tmp_path / "ran"
    fake_dot(tmp_path, monkeypatch, f"open({str(ran)!r}, 'w').close()\nsys.stdout.write({EVIL_SVG!r})")
    graph_to_svg(build(), engine="builtin")
    assert not ran.exists()
    graph_to_svg(build(), engine="auto")
    assert ran.exists()  # the fake was reachable: the check above means something


def test_unknown_engine_is_a_usage_error():
    from tg_bridge.exceptions import UsageError

    with pytest.raises(UsageError, match="engine must be"):
        build().to_svg(engine="neato")


def test_sanitize_rejects_non_svg():
    for text in ("<html/>", "plain", "<svg><g></svg>"):
        with pytest.raises((ValueError, ET.ParseError)):
            sanitize_svg(text)


def test_sanitize_drops_foreign_namespaces_and_keeps_plain_svg():
    text = ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:x="urn:evil" viewBox="0 0 10 10">'
            '<x:payload>boom</x:payload><g x:attr="1" fill="red"><text x="1" y="2">hi</text></g>'
            '<!-- comment --></svg>')
    out = sanitize_svg(text)
    assert "urn:evil" not in out and "boom" not in out and "ns0" not in out and "comment" not in out
    root = ET.fromstring(out)
    assert root.tag == f"{NS}svg" and root.find(f"{NS}g").get("fill") == "red"
    with pytest.raises(ValueError):
        sanitize_svg('<svg xmlns="urn:not-svg"/>')


@pytest.mark.skipif(__import__("shutil").which("dot") is None, reason="Graphviz not installed")
def test_real_graphviz_drawing_is_used_and_safe():
    svg = agent().to_svg(engine="dot")
    assert 'marker id="tgb-arrow"' not in svg  # Graphviz's drawing, not the fallback
    root = ET.fromstring(svg)
    assert root.get("class") == "tg-bridge-graph-svg"
    assert "<script>" not in svg and "]]>" not in svg
    texts = " ".join(t.text or "" for t in root.iter(f"{NS}text"))
    assert "<script>alert(1)</script>" in texts  # hostile text arrives as text
    titles = {t.text for t in root.iter(f"{NS}title")}
    assert {f"n{i}" for i in range(1, len(agent().nodes) + 1)} <= titles


def test_dot_wrap_splits_values_into_escaped_lines():
    from tg_bridge.views import graph_to_dot

    line = next(x for x in graph_to_dot(build('say "hi" ' * 10), wrap=20).splitlines()
                if x.startswith("  n1 "))
    label = line.split('label="', 1)[1].split('", shape=')[0]
    parts = label.split("\\n")
    assert parts[0] == "parameter system" and len(parts) == 3
    assert all(len(p.replace('\\"', '"')) <= 20 for p in parts[1:]) and parts[2].endswith("...")
