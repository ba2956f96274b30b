"""Graph views: exact snapshots on a small hand-built graph, escaping, determinism."""

from __future__ import annotations

import json

from tg_bridge import Graph, Variable
from tg_bridge.variable import Operation
from tg_bridge.views import (
    graph_to_dot,
    graph_to_html,
    graph_to_json,
    graph_to_mermaid,
    graph_to_text,
    shorten,
)


def build(system_text: str = "You are terse.") -> Graph:
    system = Variable(system_text, role="system prompt of LLM step 'chat'", requires_grad=True,
                      kind="parameter", name="system", key="app:system")
    question = Variable("What is 2+2?", role="user question", kind="input", name="question")
    doc = Variable("2+2 is 4", role="retrieved document", kind="document", name="doc")
    answer = Variable("4", role="answer of LLM step 'chat'", kind="llm_output",
                      parents=[system, question, doc])
    answer.op = Operation("llm_call", (system, question, doc), answer,
                          {"model": "m", "messages": [{"role": "system", "content": system_text}]}, "chat")
    loss = Variable("correct", role="evaluation of the answer", kind="loss", parents=[answer])
    loss.op = Operation("loss", (answer,), loss, {"instruction": "is it right?"})
    return Graph([loss], metadata={"trace_id": "ab" * 16, "root": answer})


MERMAID = """flowchart TD
    n1[["parameter system<br/>You are terse."]]
    n2(["input question<br/>What is 2+2?"])
    n3[("document doc<br/>2+2 is 4")]
    n4("llm_output = llm_call chat<br/>4")
    n5{{"loss = loss<br/>correct"}}
    n1 --> n4
    n2 --> n4
    n3 --> n4
    n4 --> n5
    classDef param fill:#fde68a,stroke:#b45309,stroke-width:2px
    class n1 param
"""

DOT = """digraph tg_bridge {
  rankdir=TB;
  node [fontname="Helvetica", fontsize=10, style=filled];
  n1 [label="parameter system\\nYou are terse.", shape=note, fillcolor="#fde68a", penwidth=2];
  n2 [label="input question\\nWhat is 2+2?", shape=oval, fillcolor="#bfdbfe"];
  n3 [label="document doc\\n2+2 is 4", shape=cylinder, fillcolor="#e5e7eb"];
  n4 [label="llm_output = llm_call chat\\n4", shape=box, fillcolor="#bbf7d0"];
  n5 [label="loss = loss\\ncorrect", shape=hexagon, fillcolor="#fecaca"];
  n1 -> n4;
  n2 -> n4;
  n3 -> n4;
  n4 -> n5;
}
"""

TEXT = """Graph: 5 nodes, 1 parameters
Parameters:
  n1  system prompt of LLM step 'chat'
      key: app:system
      value: "You are terse."
Nodes:
  n1 [parameter] (trainable)
      role: system prompt of LLM step 'chat'
      value: "You are terse."
  n2 [input] (leaf)
      role: user question
      value: "What is 2+2?"
  n3 [document] (leaf)
      role: retrieved document
      value: "2+2 is 4"
  n4 [llm_output] = llm_call 'chat'(n1, n2, n3)
      role: answer of LLM step 'chat'
      value: "4"
  n5 [loss] = loss(n4)
      role: evaluation of the answer
      value: "correct"
"""


def test_mermaid_snapshot():
    assert graph_to_mermaid(build()) == MERMAID
    assert build().to_mermaid() == MERMAID


def test_dot_snapshot():
    assert graph_to_dot(build()) == DOT
    assert build().to_dot() == DOT


def test_text_snapshot_lists_parameters_first():
    assert graph_to_text(build()) == TEXT
    assert str(build()) == TEXT


def test_json_structure_and_complete_values():
    long_text = "Be precise. " * 50
    data = graph_to_json(build(long_text))
    json.dumps(data)  # serializable
    assert [n["id"] for n in data["nodes"]] == ["n1", "n2", "n3", "n4", "n5"]
    n1 = data["nodes"][0]
    assert n1["value"] == long_text  # never shortened in JSON
    assert n1["kind"] == "parameter" and n1["key"] == "app:system" and n1["requires_grad"] is True
    assert data["nodes"][2]["trusted"] is False
    n4 = data["nodes"][3]
    assert n4["op"] == "llm_call" and n4["op_name"] == "chat" and n4["inputs"] == ["n1", "n2", "n3"]
    assert n4["op_attrs"]["messages"][0]["content"] == long_text
    assert data["edges"][0] == {"source": "n1", "target": "n4"} and len(data["edges"]) == 4
    assert data["parameters"] == ["n1"] and data["outputs"] == ["n5"]
    assert data["metadata"] == {"trace_id": "ab" * 16, "root": "n4"}  # Variables -> node ids
    assert build().to_json() == graph_to_json(build())  # deterministic


def test_gradients_appear_in_json_and_text():
    graph = build()
    graph.parameters()[0].add_gradient("Say why.")
    assert graph_to_json(graph)["nodes"][0]["gradients"] == ["Say why."]
    assert "gradients: 1" in graph_to_text(graph)


HOSTILE = 'Ignore "all" <script>alert(1)</script> `code` #1 & {x}\nnew line \\ end'


def test_mermaid_escapes_label_syntax():
    out = graph_to_mermaid(build(HOSTILE))
    line = out.splitlines()[1]
    assert line.startswith('    n1[["') and line.endswith('"]]')
    inner = line[len('    n1[["'):-len('"]]')]
    for raw in ('"', "<script>", "`", "\n"):
        assert raw not in inner
    assert "#quot;all#quot;" in inner and "#lt;script#gt;" in inner and "#35;1" in inner
    assert "#amp;" in inner and "#96;code#96;" in inner


def test_dot_escapes_quotes_backslashes_and_newlines():
    out = graph_to_dot(build('say "hi" \\ then\nstop'))
    line = next(line for line in out.splitlines() if line.startswith("  n1 "))
    assert 'say \\"hi\\" \\\\ then stop"' in line
    label = line.split('label="', 1)[1].split('", shape=')[0]
    assert '"' not in label.replace('\\"', "")
    assert "\n" not in line


def test_diagrams_shorten_long_values():
    out = graph_to_mermaid(build("word " * 100))
    assert "word " * 20 not in out and "..." in out
    assert shorten("a  b\n\nc") == "a b c"
    assert shorten("x" * 100, 10) == "xxxxxxx..."


def test_html_is_escaped_and_self_contained():
    page = graph_to_html(build(HOSTILE))
    assert "<script>" not in page and "&lt;script&gt;" in page
    # nothing fetched by default: the only URL is the SVG namespace name (never loaded)
    assert "http" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "<svg" in page and "src=" not in page
    assert "<pre class='mermaid'>flowchart TD" in page  # the source, kept as text
    assert "app:system" in page
    with_js = graph_to_html(build(), mermaid_js="https://example.invalid/mermaid.esm.mjs")
    assert '<script type="module">' in with_js and "example.invalid" in with_js
    assert build()._repr_html_() == graph_to_html(build())


def test_empty_graph_views():
    graph = Graph([])
    assert graph_to_mermaid(graph) == "flowchart TD\n"
    assert graph_to_text(graph).startswith("Graph: 0 nodes, 0 parameters\nParameters: none")
    assert graph_to_json(graph)["nodes"] == []
    assert "No parameters." in graph_to_html(graph)
