"""Foundation Variable/Graph: deep chains, merge of batch graphs, deterministic order."""

from __future__ import annotations

import pytest

from tg_bridge.exceptions import GraphError, UsageError
from tg_bridge.graph import Graph
from tg_bridge.variable import Operation, Variable


def _run(system_text: str, question: str) -> Graph:
    system = Variable(system_text, role="system prompt", requires_grad=True, name="sys")
    q = Variable(question, role="question", kind="input")
    out = Variable("a", role="answer", parents=(system, q), op=Operation("llm_call", (system, q)))
    return Graph([out], metadata={"q": question})


def test_deep_chain_orders_and_levels():
    node = Variable("leaf", role="leaf", requires_grad=True)
    for i in range(10_000):
        node = Variable(str(i), role="v", parents=(node,), op=Operation("function", (node,)))
    graph = Graph([node])
    assert len(graph.nodes) == 10_001 and graph.nodes[0].value == "leaf" and graph.nodes[-1] is node
    levels = graph.reverse_levels()
    assert len(levels) == 10_001 and levels[0] == [node]
    assert [p.value for p in graph.parameters()] == ["leaf"]


def test_merge_makes_one_parameter_per_key():
    graphs = [_run("Be brief.", f"q{i}") for i in range(3)]
    merged = Graph.merge(graphs)
    params = merged.parameters()
    assert len(params) == 1 and len(merged.outputs) == 3
    assert all(g.outputs[0].parents[0] is params[0] for g in graphs)
    assert all(g.outputs[0].op.inputs[0] is params[0] for g in graphs)
    assert merged.metadata["graphs"] == [{"q": "q0"}, {"q": "q1"}, {"q": "q2"}]
    # a different prompt text stays a different parameter
    assert len(Graph.merge([_run("A", "q"), _run("B", "q")]).parameters()) == 2


def test_order_is_deterministic_and_parents_first():
    def build():
        a = Variable("a", role="a")
        b = Variable("b", role="b")
        c = Variable("c", role="c", parents=(b, a))
        d = Variable("d", role="d", parents=(a, c))
        return Graph([d])

    assert [v.value for v in build().nodes] == [v.value for v in build().nodes] == ["a", "b", "c", "d"]


def test_cycle_and_bad_inputs():
    a = Variable("a", role="a")
    b = Variable("b", role="b", parents=(a,))
    a.parents = (b,)
    with pytest.raises(GraphError):
        _ = Graph([b]).nodes
    with pytest.raises(UsageError):
        Variable(3, role="x")  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        Variable("x", role=" ")


def test_keys_and_gradients():
    v = Variable("text", role="r", name="n")
    assert v.key == v.identity and v.key.startswith("n#")
    assert Variable("text", role="r", key="explicit").key == "explicit"
    v.add_gradient("  ")
    v.add_gradient(" one ")
    v.add_gradient("two")
    assert v.gradient_text(" | ") == "one | two"
    v.zero_grad()
    assert v.gradients == []
