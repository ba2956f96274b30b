"""One model call recorded as nested spans (LlamaIndex ``OpenAILike.chat`` -> ``super().chat()``):
the outer LLM span has only the output, an inner non-LLM span has the messages."""

from __future__ import annotations

from tg_bridge import reconstruct

SYSTEM = "You are a terse assistant. Answer in one sentence."
USER = "How tall is the Eiffel Tower?"
ANSWER = "It is 330 metres tall."


def _nested(make_span, *, inner_name="OpenAILike.chat", inner_output=ANSWER, inner_kind="CHAIN"):
    inner_attrs = {
        "openinference.span.kind": inner_kind,
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": SYSTEM,
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.content": USER,
        "input.value": USER,
    }
    if inner_output is not None:
        inner_attrs["output.value"] = inner_output
    return [
        make_span("QueryEngine.query", "r", start=0, **{"openinference.span.kind": "CHAIN",
                                                         "input.value": USER, "output.value": ANSWER}),
        make_span("OpenAILike.chat", "outer", "r", start=1,
                  **{"openinference.span.kind": "LLM", "output.value": ANSWER}),
        make_span(inner_name, "inner", "outer", start=2, **inner_attrs),
    ]


def test_inner_span_with_the_messages_is_merged_into_the_llm_call(make_span):
    graph = reconstruct(_nested(make_span))
    params = graph.parameters()
    assert [p.value for p in params] == [SYSTEM]
    calls = [n for n in graph.nodes if n.op is not None and n.op.kind == "llm_call"]
    assert len(calls) == 1
    assert calls[0].value == ANSWER
    assert [m["content"] for m in calls[0].op.attrs["messages"]] == [SYSTEM, USER]
    assert graph.outputs[0] is calls[0]


def test_same_call_recognised_by_output_when_names_differ(make_span):
    spans = _nested(make_span, inner_name="OpenAI.chat")
    assert [p.value for p in reconstruct(spans).parameters()] == [SYSTEM]


def test_unrelated_span_with_messages_is_not_merged(make_span):
    # a different step (other name, other output) below an LLM span stays what it was
    spans = _nested(make_span, inner_name="Formatter.render", inner_output="something else")
    graph = reconstruct(spans)
    assert graph.parameters() == []
    assert not [n for n in graph.nodes if n.op is not None and n.op.kind == "llm_call"]


def test_children_of_the_merged_span_move_up(make_span):
    spans = _nested(make_span)
    spans.append(make_span("HTTP POST", "http", "inner", start=3, **{"input.value": "{}", "output.value": "{}"}))
    from tg_bridge.reconstruction.tree import SpanTree

    tree = SpanTree.build(spans)
    outer = next(n for n in tree.nodes if n.record.span_id == "outer")
    assert [c.record.span_id for c in outer.children] == ["http"]
    assert "inner" not in {n.record.span_id for n in tree.nodes}
    assert outer.record.attributes["openinference.span.kind"] == "LLM"
    assert outer.record.attributes["llm.input_messages.0.message.content"] == SYSTEM


def test_template_followed_by_format_instructions_the_framework_appended(make_span):
    # LlamaIndex selectors / question generators: predict(template) + the output parser's
    # format block after a line break is what the model receives
    import json

    template = "Pick the choice most relevant to the question: '{query_str}'"
    sent = "Pick the choice most relevant to the question: 'sum up'\n\nThe output should be ONLY JSON."
    record = [{"binding": None, "name": "selector:prompt", "role": None, "template": template,
               "format": "f-string", "index": 0}]
    spans = [
        make_span("Router.query", "r", start=0, **{"openinference.span.kind": "CHAIN", "input.value": "sum up"}),
        make_span("LLM.predict", "p", "r", start=1, **{
            "openinference.span.kind": "CHAIN", "tg_bridge.templates": json.dumps(record),
            "tg_bridge.template.variables": json.dumps({"query_str": "sum up"})}),
        make_span("LLM.chat", "c", "p", start=2, **{
            "openinference.span.kind": "LLM", "llm.input_messages.0.message.role": "user",
            "llm.input_messages.0.message.content": sent, "output.value": '[{"choice": 1}]'}),
    ]
    assert [p.value for p in reconstruct(spans).parameters()] == [template]
    spans[2] = make_span("LLM.chat", "c", "p", start=2, **{  # glued on without a break: no claim
        "openinference.span.kind": "LLM", "llm.input_messages.0.message.role": "user",
        "llm.input_messages.0.message.content": sent.replace("\n\n", " "), "output.value": "x"})
    assert [p.value for p in reconstruct(spans).parameters()] != [template]
