"""GenAI / OpenLLMetry spans and our own tg_bridge.* spans (hand-written per semconv.py)."""

from __future__ import annotations

import json

from tg_bridge import semconv as sc
from tg_bridge.patching.binding import CallableBinding
from tg_bridge.reconstruction import load_traces, reconstruct
from tg_bridge.traces import read_spans


def test_genai_agent_same_system_prompt_in_three_traces_is_one_parameter(fixtures):
    pool = {}
    graphs = load_traces(fixtures / "genai_weather_agent.json", parameters=pool)
    assert len(graphs) == 3
    assert len(pool) == 1
    (system,) = pool.values()
    assert system.value.startswith("You are a weather assistant.")
    assert system.requires_grad and system.kind == "parameter"
    for graph, city in zip(graphs, ["Paris", "Tokyo", "Lima"]):
        assert graph.parameters() == [system]
        first, second = [n for n in graph.nodes if n.kind == "llm_output"]
        (tool,) = [n for n in graph.nodes if n.kind == "tool_result"]
        assert tool.parents == (first,) and tool.op.attrs["tool"] == "get_weather"
        assert f'"city": "{city}"' in tool.op.attrs["arguments"]
        assert system in first.parents and tool in second.parents and first in second.parents
        (question,) = [n for n in graph.nodes if n.kind == "input"]
        assert question.value == f"What is the weather in {city}?" and not question.trusted
        assert graph.metadata["input"] == question.value
        assert graph.outputs[0] is second and city in second.value
        assert graph.metadata["spans"] == 4


def test_genai_system_prompt_shared_through_reconstruct_calls(fixtures):
    spans = read_spans(fixtures / "genai_weather_agent.json")
    pool = {}
    by_trace = {}
    for s in spans:
        by_trace.setdefault(s.trace_id, []).append(s)
    graphs = [reconstruct(group, parameters=pool) for group in by_trace.values()]
    assert len({id(g.parameters()[0]) for g in graphs}) == 1
    assert pool[graphs[0].parameters()[0].key].metadata["uses"] == 6  # 2 chat calls x 3 traces


def test_openllmetry_indexed_prompt_attributes(make_span):
    attrs = {
        "gen_ai.prompt.0.role": "system",
        "gen_ai.prompt.0.content": "Answer in French.",
        "gen_ai.prompt.1.role": "user",
        "gen_ai.prompt.1.content": "Hello there",
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": "Bonjour",
        "llm.request.type": "chat",
        "gen_ai.request.model": "m1",
    }
    root = make_span("workflow", "a1", **{"traceloop.span.kind": "workflow",
                                         "traceloop.entity.input": "Hello there"})
    llm = make_span("openai.chat", "a2", "a1", start=1)
    llm = type(llm)(**{**llm.__dict__, "attributes": attrs})
    g = reconstruct([root, llm])
    (param,) = g.parameters()
    assert param.value == "Answer in French."
    out = g.outputs[0]
    assert out.value == "Bonjour" and out.op.attrs["model"] == "m1"
    assert [p.kind for p in out.parents] == ["parameter", "input"]


def _tg_spans(make_span, *, trace="t1", question="Who built it?", answer="Gustave Eiffel."):
    templates = [
        {"binding": "langchain:rag/prompt.messages[0]", "name": "rag.prompt[0]", "role": "system",
         "template": "You are an expert on {topic}.", "format": "f-string", "index": 0},
        {"binding": "langchain:rag/prompt.messages[1]", "name": "rag.prompt[1]", "role": "user",
         "template": "Context:\n{context}\n\nQ: {question}", "format": "f-string", "index": 1},
    ]
    doc = "The Eiffel Tower was built by Gustave Eiffel's company."
    # OTel parents are lost (thread pool): only the framework ids link the spans
    return [
        make_span("rag", f"{trace}r", trace=trace, start=0, **{
            sc.SPAN_KIND: "CHAIN", sc.NODE_ID: f"{trace}-run-root", sc.FRAMEWORK: "langchain",
            sc.INPUT_VALUE: json.dumps({"question": question, "topic": "towers"}),
            sc.OUTPUT_VALUE: answer}),
        make_span("Retriever", f"{trace}d", trace=trace, start=1, **{
            sc.SPAN_KIND: "RETRIEVER", sc.NODE_ID: f"{trace}-run-ret", sc.PARENT_NODE_ID: f"{trace}-run-root",
            sc.INPUT_VALUE: question, "retrieval.documents.0.document.content": doc,
            "retrieval.documents.0.document.id": "doc-1"}),
        make_span("ChatPromptTemplate", f"{trace}p", trace=trace, start=2, **{
            sc.SPAN_KIND: "PROMPT", sc.NODE_ID: f"{trace}-run-prompt", sc.PARENT_NODE_ID: f"{trace}-run-root",
            sc.TEMPLATES: templates,
            sc.TEMPLATE_VARIABLES: {"topic": "towers", "context": doc, "question": question}}),
        make_span("ChatOpenAI", f"{trace}l", trace=trace, start=3, **{
            sc.SPAN_KIND: "LLM", sc.NODE_ID: f"{trace}-run-llm", sc.PARENT_NODE_ID: f"{trace}-run-root",
            sc.LLM_MODEL_NAME: "gpt-x",
            "llm.input_messages.0.message.role": "system",
            "llm.input_messages.0.message.content": "You are an expert on towers.",
            "llm.input_messages.1.message.role": "user",
            "llm.input_messages.1.message.content": "earlier question",
            "llm.input_messages.2.message.role": "user",
            "llm.input_messages.2.message.content": f"Context:\n{doc}\n\nQ: {question}",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": answer}),
    ]


def test_tg_bridge_spans_with_bindings_and_framework_parents(make_span):
    store = {"v": "You are an expert on {topic}."}
    binding = CallableBinding("langchain:rag/prompt.messages[0]", lambda: store["v"],
                              lambda v: store.update(v=v), "f-string")
    pool = {}
    g = reconstruct(_tg_spans(make_span), bindings={binding.key: binding}, parameters=pool)
    assert g.metadata["missing_parents"] == 0 and g.metadata["root"] == "rag"
    system, user = g.parameters()
    assert system.binding is binding and system.key == binding.key
    assert user.binding is None and user.key == "langchain:rag/prompt.messages[1]"
    assert user.name == "rag.prompt[1]" and user.metadata["format"] == "f-string"
    assert system.role == "system prompt of LLM step 'ChatOpenAI' in chain 'rag'"
    out = g.outputs[0]
    assert out.value == "Gustave Eiffel." and out.op.attrs["model"] == "gpt-x"
    # message 1 was inserted by a placeholder (history): an input, not a template
    kinds = [(p.kind, p.op.kind if p.op else None) for p in out.parents]
    assert kinds == [("value", "format"), ("input", None), ("value", "format")]
    user_msg = out.parents[2]
    doc = [p for p in user_msg.parents if p.kind == "document"]
    assert len(doc) == 1 and doc[0].parents[0].value == "Who built it?"
    assert set(pool) == {binding.key, "langchain:rag/prompt.messages[1]"}


def test_tg_bridge_spans_across_traces_share_bound_parameters(make_span):
    pool = {}
    g1 = reconstruct(_tg_spans(make_span, trace="a"), parameters=pool)
    g2 = reconstruct(_tg_spans(make_span, trace="b", question="How tall?", answer="330 m"), parameters=pool)
    assert [id(p) for p in g1.parameters()] == [id(p) for p in g2.parameters()]
    both = reconstruct(_tg_spans(make_span, trace="a") + _tg_spans(make_span, trace="b"), parameters={})
    assert both.metadata["trace_ids"] == ["a", "b"] and len(both.outputs) == 2
    assert len(both.parameters()) == 2


def test_internal_spans_are_not_graphed(make_span):
    spans = _tg_spans(make_span)
    spans.append(make_span("tg_bridge.engine", "x1", "t1r", start=9, **{
        sc.INTERNAL: True, sc.SPAN_KIND: "LLM",
        "llm.input_messages.0.message.role": "user", "llm.input_messages.0.message.content": "critique",
        "llm.output_messages.0.message.content": "feedback"}))
    g = reconstruct(spans)
    assert all(n.value != "feedback" for n in g.nodes)
    assert g.metadata["spans"] == 5


def test_opted_in_tool_descriptions_become_parameters_of_the_llm_that_chose_the_tool(make_span):
    store = {"v": "Look up facts about the company."}
    binding = CallableBinding("langchain:tool:search#1", lambda: store["v"], lambda v: store.update(v=v))
    record = [{"binding": binding.key, "name": "search", "description": store["v"]}]
    spans = [
        make_span("agent", "r", **{sc.SPAN_KIND: "CHAIN", sc.INPUT_VALUE: "Where is Lumen?",
                                   sc.OUTPUT_VALUE: "Tampere"}),
        make_span("ChatModel", "l1", "r", start=1, **{
            sc.SPAN_KIND: "LLM",
            "llm.input_messages.0.message.role": "system",
            "llm.input_messages.0.message.content": "Use tools.",
            "llm.input_messages.1.message.role": "user",
            "llm.input_messages.1.message.content": "Where is Lumen?",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": "",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "search",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"q": "Lumen"}'}),
        make_span("search", "t", "r", start=2, **{
            sc.SPAN_KIND: "TOOL", sc.TOOL_NAME: "search", sc.INPUT_VALUE: '{"q": "Lumen"}',
            sc.OUTPUT_VALUE: "Lumen is in Tampere.", sc.TOOL_BINDINGS: record}),
        make_span("search", "bad", "r", start=3, **{
            sc.SPAN_KIND: "TOOL", sc.TOOL_NAME: "search", sc.INPUT_VALUE: "x",
            sc.OUTPUT_VALUE: "y", sc.TOOL_BINDINGS: "{not json"}),
    ]
    g = reconstruct(spans, bindings={binding.key: binding})
    (tool_param,) = [p for p in g.parameters() if p.key == binding.key]
    assert tool_param.binding is binding and tool_param.role.startswith("description of tool 'search'")
    chooser = next(n for n in g.nodes if n.kind == "llm_output" and tool_param in n.parents)
    assert tool_param in chooser.op.inputs
    result = next(n for n in g.nodes if n.kind == "tool_result" and n.value == "Lumen is in Tampere.")
    assert chooser in result.parents


def test_one_flow_links_separate_root_traces_of_one_capture(make_span):
    """A hand-written loop: the model call and the tool call are separate root traces."""
    llm = make_span("Model", "l1", trace="a", start=1, **{
        sc.SPAN_KIND: "LLM",
        "llm.input_messages.0.message.role": "user",
        "llm.input_messages.0.message.content": "What is 2+2?",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": "",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "calc",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": "2+2"})
    tool = make_span("calc", "t1", trace="b", start=2, **{
        sc.SPAN_KIND: "TOOL", sc.TOOL_NAME: "calc", sc.INPUT_VALUE: "2+2", sc.OUTPUT_VALUE: "4"})
    apart = reconstruct([llm, tool])
    together = reconstruct([llm, tool], one_flow=True)
    result_apart = next(n for n in apart.nodes if n.kind == "tool_result")
    result_together = next(n for n in together.nodes if n.kind == "tool_result")
    assert result_apart.parents[0].kind == "input"
    assert result_together.parents[0].kind == "llm_output"
    assert apart.metadata["trace_ids"] == ["a", "b"] and together.metadata["trace_ids"] == ["a"]
