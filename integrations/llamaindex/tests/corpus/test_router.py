"""RouterQueryEngine, as in LlamaIndex's "Router Query Engine" example
(https://docs.llamaindex.ai/en/stable/examples/query_engine/RouterQueryEngine/)::

    summary_index = SummaryIndex(nodes, storage_context=storage_context)
    vector_index = VectorStoreIndex(nodes, storage_context=storage_context)
    list_query_engine = summary_index.as_query_engine(response_mode="tree_summarize", use_async=True)
    vector_query_engine = vector_index.as_query_engine()
    list_tool = QueryEngineTool.from_defaults(
        query_engine=list_query_engine,
        description="Useful for summarization questions related to Paul Graham eassy on What I Worked On.",
    )
    vector_tool = QueryEngineTool.from_defaults(
        query_engine=vector_query_engine,
        description="Useful for retrieving specific context from Paul Graham essay on What I Worked On.",
    )
    query_engine = RouterQueryEngine(
        selector=PydanticSingleSelector.from_defaults(), query_engine_tools=[list_tool, vector_tool]
    )
    query_engine = RouterQueryEngine(
        selector=LLMSingleSelector.from_defaults(), query_engine_tools=[list_tool, vector_tool]
    )

The router's own summarizer and the list engine's synthesizer hold the same default
summary template: the saved patch must land on the sub engine that was optimized (issue 12).
"""

from __future__ import annotations

import pytest
from llama_index.core import Document, SummaryIndex, VectorStoreIndex
from llama_index.core.query_engine import RouterQueryEngine
from llama_index.core.selectors import LLMSingleSelector, PydanticSingleSelector
from llama_index.core.tools import QueryEngineTool

from tests.support.llamaindex_stub import openai_like

DOCS = ("The Eiffel Tower is 330 metres tall and stands in Paris.", "The Louvre is a museum in Paris.")
SUB_SYSTEM = "query_engines[0]/response_synthesizer:summary_template.conditionals[0].messages[0]"
OWN_SYSTEM = "summarizer:summary_template.conditionals[0].messages[0]"
SELECTORS = {"llm": ("selector:prompt", LLMSingleSelector),
             "pydantic": ("selector.selector_program/prompt", PydanticSingleSelector)}


def build_with(selector_cls):
    def build(stub):
        llm = openai_like(stub, is_function_calling_model=True)
        documents = [Document(text=t) for t in DOCS]
        summary_index = SummaryIndex.from_documents(documents)
        vector_index = VectorStoreIndex.from_documents(documents)
        list_query_engine = summary_index.as_query_engine(response_mode="tree_summarize", llm=llm)
        vector_query_engine = vector_index.as_query_engine(llm=llm)
        list_tool = QueryEngineTool.from_defaults(
            query_engine=list_query_engine,
            description="Useful for summarization questions related to Paris.",
        )
        vector_tool = QueryEngineTool.from_defaults(
            query_engine=vector_query_engine,
            description="Useful for retrieving specific context about Paris.",
        )
        return RouterQueryEngine(selector=selector_cls.from_defaults(llm=llm),
                                 query_engine_tools=[list_tool, vector_tool], llm=llm)

    return build


def run(query_engine, question):
    return str(query_engine.query("Summarize: " + question))


@pytest.mark.parametrize("kind", sorted(SELECTORS))
def test_router_query_engine(corpus, stub, tmp_path, kind):
    selector_path, selector_cls = SELECTORS[kind]
    build = build_with(selector_cls)
    router = build(stub)
    live = corpus.paths_of(router)
    assert live[SUB_SYSTEM].read() == live[OWN_SYSTEM].read()  # the trap: one default text twice
    corpus.check_app(corpus.AppCase(
        build=build, run=run, expected=(selector_path, SUB_SYSTEM), target=SUB_SYSTEM,
        chosen=lambda old: old.startswith("You are an expert Q&A system"), untouched=(OWN_SYSTEM,),
    ), stub, tmp_path)


def test_hash_only_patch_with_two_candidates_is_a_conflict_naming_them(corpus, stub):
    from tg_bridge import apply_patch
    from tg_bridge.exceptions import PatchConflictError
    from tg_bridge.patching.patch import Change, Patch
    from tg_bridge.variable import content_hash

    router = build_with(LLMSingleSelector)(stub)
    live = corpus.paths_of(router)
    old = live[SUB_SYSTEM].read()
    # a patch from traces (no key, no path of this app): the text alone is no address
    patch = Patch([Change("system#0123", "replace", old, old + " Be brief.", content_hash(old), {})])
    with pytest.raises(PatchConflictError) as info:
        apply_patch(router, patch)
    assert live[SUB_SYSTEM].key in info.value.candidates and live[OWN_SYSTEM].key in info.value.candidates
    assert live[SUB_SYSTEM].read() == old and live[OWN_SYSTEM].read() == old


def test_captured_bindings_carry_paths_from_the_app_root(corpus, stub):
    # the sub engine is an app object of its own too: its discovery must not re-root the paths
    # the run (and so TGD's patches) carry
    from tg_bridge import TGD, apply_patch, capture
    from tg_bridge.testing import FakeEngine

    build = build_with(LLMSingleSelector)
    router = build(stub)
    with capture() as run:
        router.query("Summarize: how tall is the Eiffel Tower?")
    paths = {getattr(b, "app_path", None) for b in run.bindings.values()}
    assert SUB_SYSTEM in paths and "response_synthesizer:summary_template.conditionals[0].messages[0]" not in paths
    graph = run.graph()
    [param] = [p for p in graph.parameters() if p.binding is not None and p.binding.app_path == SUB_SYSTEM]
    param.gradients.clear()
    from tg_bridge.variable import Gradient

    param.gradients.append(Gradient("Ask the model to cite the source."))
    patch = TGD([param], engine=FakeEngine([{"improved_value": param.value + " Be brief."}])).propose()
    assert patch.changes[0].provenance["path"] == SUB_SYSTEM
    fresh = build(stub)
    assert apply_patch(fresh, patch.to_json(), dry_run=True) == {patch.changes[0].target: SUB_SYSTEM}
