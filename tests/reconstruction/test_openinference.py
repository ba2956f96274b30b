"""Graphs rebuilt from spans recorded from real LangChain / LlamaIndex apps by OpenInference."""

from __future__ import annotations

from tg_bridge.graph import Graph
from tg_bridge.reconstruction import load_traces


def _kinds(graph: Graph, kind: str):
    return [n for n in graph.nodes if n.kind == kind]


def test_rag_with_query_rewriting_snapshot(fixtures, summarize):
    pool = {}
    graphs = load_traces(fixtures / "oi_langchain_rag.jsonl", parameters=pool)
    assert len(graphs) == 2
    g = graphs[0]
    assert g.metadata["root"] == "rag"
    assert g.metadata["output"] == "It is 330 metres tall."
    assert g.metadata["spans"] == 16
    assert summarize(g) == [
        ("parameter", "You answer questions about {topic} using", None, []),
        ("input", "travel", None, []),
        ("value", "You answer questions about travel using ", "format", [0, 1]),
        ("parameter", "Context:\n{context}\n\nQuestion: {question}", None, []),
        ("parameter", "Rewrite the user's question as a short s", None, []),
        ("parameter", "Question: {question}", None, []),
        ("input", "How tall is the Eiffel Tower?", None, []),
        ("value", "Question: How tall is the Eiffel Tower?", "format", [5, 6]),
        ("llm_output", "height of the Eiffel Tower Paris", "llm_call", [4, 7]),
        ("document", "The Eiffel Tower is 330 metres tall and ", "retrieval", [8]),
        ("document", "The Louvre in Paris is the most visited ", "retrieval", [8]),
        ("value", "The Eiffel Tower is 330 metres tall and ", "function", [9, 10]),
        ("value", "Context:\nThe Eiffel Tower is 330 metres ", "format", [3, 11, 6]),
        ("llm_output", "It is 330 metres tall.", "llm_call", [2, 12]),
    ]
    assert g.outputs[0].value == "It is 330 metres tall."


def test_rag_parameters_roles_keys_and_sharing(fixtures):
    pool = {}
    g1, g2 = load_traces(fixtures / "oi_langchain_rag.jsonl", parameters=pool)
    roles = sorted(p.role for p in g1.parameters())
    assert roles == [
        "system prompt of LLM step 'GenericFakeChatModel' in chain 'rag'",
        "system prompt of LLM step 'GenericFakeChatModel' in chain 'rewrite'",
        "user message template of LLM step 'GenericFakeChatModel' in chain 'rag'",
        "user message template of LLM step 'GenericFakeChatModel' in chain 'rewrite'",
    ]
    # the recovered (non-first) message templates are real templates
    values = {p.value for p in g1.parameters()}
    assert "Context:\n{context}\n\nQuestion: {question}" in values
    assert "Question: {question}" in values
    # one parameter per prompt across both traces, keyed by identity name#hash
    assert len(pool) == 4
    assert [id(p) for p in g1.parameters()] == [id(p) for p in g2.parameters()]
    for key, param in pool.items():
        assert param.key == key and "#" in key and param.binding is None
        assert param.metadata["uses"] == 2
    assert pool[next(k for k in pool if k.startswith("rag/ChatPromptTemplate[1]#"))] is not None


def test_rag_format_op_maps_placeholders(fixtures):
    g = load_traces(fixtures / "oi_langchain_rag.jsonl")[1]
    fmt = [n for n in g.nodes if n.op is not None and n.op.kind == "format" and "Context" in n.value][0]
    names = fmt.op.attrs["variables"]
    assert set(names) == {"context", "question"}
    assert fmt.op.inputs[names["question"]].value == "What is the highest mountain in Japan?"
    context = fmt.op.inputs[names["context"]]
    assert all(p.kind == "document" for p in context.parents)
    llm = g.outputs[0]
    assert llm.op.kind == "llm_call" and llm.op.attrs["name"] == "GenericFakeChatModel"
    assert [m["role"] for m in llm.op.attrs["messages"]] == ["system", "user"]


def test_tool_calling_agent_loop(fixtures):
    pool = {}
    (g,) = load_traces(fixtures / "oi_langchain_agent.jsonl", parameters=pool)
    calls = [n for n in g.nodes if n.kind == "llm_output"]
    assert len(calls) == 2
    first, second = calls
    assert "[tool call] lookup_height" in first.value
    (result,) = _kinds(g, "tool_result")
    assert result.value == "330" and result.op.kind == "tool_call"
    assert result.parents == (first,)
    assert result.op.attrs["tool"] == "lookup_height"
    assert result.op.attrs["description"] == "Look up the height of a landmark in metres."
    # the second call saw the first call's tool request and the tool's result
    assert first in second.parents and result in second.parents
    # the agent's system prompt is ONE parameter used by both calls
    (system,) = g.parameters()
    assert system.value == "You are a helpful travel agent. Use tools for facts."
    assert system in first.parents and system in second.parents
    assert g.outputs[0] is second and g.metadata["output"] == second.value


def test_llamaindex_query_engine(fixtures, summarize):
    pool = {}
    g1, g2 = load_traces(fixtures / "oi_llamaindex_query.jsonl", parameters=pool)
    assert summarize(g1) == [
        ("parameter", "Context information is below.\n----------", None, []),
        ("input", "How tall is the Eiffel Tower?", None, []),
        ("document", "The Eiffel Tower is 330 metres tall and ", "retrieval", [1]),
        ("document", "Mount Fuji is the highest mountain in Ja", "retrieval", [1]),
        ("value", "The Eiffel Tower is 330 metres tall and ", "function", [2, 3]),
        ("value", "Context information is below.\n----------", "format", [0, 4, 1]),
        ("llm_output", "Answer: The Eiffel Tower is 330 metres t", "llm_call", [5]),
    ]
    (param,) = g1.parameters()
    assert "{context_str}" in param.value and "{query_str}" in param.value
    assert param.role == "prompt template of LLM step 'EchoLLM.complete' in chain 'RetrieverQueryEngine.query'"
    assert g2.parameters() == [param] and len(pool) == 1
    assert g2.metadata["input"] == "Which museum in Paris is famous?"
