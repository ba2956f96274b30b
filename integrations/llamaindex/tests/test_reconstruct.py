"""Our spans feed tg_bridge.reconstruct: parameters carry live bindings; fixtures stay readable."""

from __future__ import annotations

import pathlib

import pytest

from tg_bridge.capturing import capture
from tg_bridge.reconstruction import load_traces

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"


@pytest.mark.parametrize(
    ("mode", "slots"),
    [("compact", ["text_qa_template"]), ("refine", ["refine_template", "text_qa_template"])],
)
def test_run_graph_has_live_prompt_parameters(index, llm, mode, slots):
    engine = index.as_query_engine(llm=llm, similarity_top_k=2, response_mode=mode)
    with capture() as run:
        engine.query("How tall is the Eiffel Tower?")
    graph = run.graph()
    params = graph.parameters()
    assert sorted(p.key.rsplit("/", 1)[-1] for p in params) == [f"response_synthesizer:{s}" for s in slots]
    for param in params:
        assert param.binding is not None
        assert param.binding.read() == param.value
    # writing through the parameter's binding changes what the app sends next
    qa = next(p for p in params if p.key.endswith("text_qa_template"))
    qa.binding.write("FACTS {context_str} ASK {query_str}")
    engine.query("again")
    assert any(prompt.startswith("FACTS ") for prompt in llm.received[-2:])


@pytest.mark.parametrize(
    ("name", "traces", "keys"),
    [
        ("tgb_llamaindex_query_engine.jsonl", 2, ["response_synthesizer:text_qa_template"]),
        ("tgb_llamaindex_refine.jsonl", 1, ["response_synthesizer:refine_template", "response_synthesizer:text_qa_template"]),
        ("tgb_llamaindex_react_agent.jsonl", 1, ["react_header", "system_prompt"]),
    ],
)
def test_recorded_fixtures_load(name, traces, keys):
    graphs = load_traces(FIXTURES / name)
    assert len(graphs) == traces
    for graph in graphs:
        assert sorted(p.key.rsplit("/", 1)[-1] for p in graph.parameters()) == keys
