"""A value parsed out of an earlier LLM output (a question generator's JSON -> a sub query)
is that output's child, so feedback on the later step reaches the prompt that produced it."""

from __future__ import annotations

import json

from tg_bridge import reconstruct

SUB = "What is the height of the Eiffel Tower?"


def _spans(make_span, generated: str):
    return [
        make_span("SubQuestion.query", "r", start=0, **{"openinference.span.kind": "CHAIN",
                                                       "input.value": "How tall is it?", "output.value": "330 m"}),
        make_span("gen", "g", "r", start=1, **{
            "openinference.span.kind": "LLM", "llm.input_messages.0.message.role": "system",
            "llm.input_messages.0.message.content": "Split the question into sub questions as JSON.",
            "llm.input_messages.1.message.role": "user", "llm.input_messages.1.message.content": "How tall is it?",
            "output.value": generated}),
        make_span("answer", "a", "r", start=2, **{
            "openinference.span.kind": "LLM", "llm.input_messages.0.message.role": "user",
            "llm.input_messages.0.message.content": SUB, "output.value": "330 m"}),
    ]


def test_sub_query_parsed_from_an_llm_output_hangs_below_it(make_span):
    graph = reconstruct(_spans(make_span, json.dumps([{"sub_question": SUB, "tool_name": "facts"}])))
    answer = graph.outputs[0]
    assert answer.value == "330 m"
    ancestors, stack = [], list(answer.parents)
    while stack:
        node = stack.pop()
        ancestors.append(node)
        stack.extend(node.parents)
    assert any(n.kind == "llm_output" and SUB in n.value for n in ancestors)
    assert any(p.value.startswith("Split the question") for p in ancestors if p.kind == "parameter")


def test_short_texts_are_not_taken_from_outputs(make_span):
    spans = _spans(make_span, "Height?")
    spans[2] = make_span("answer", "a", "r", start=2, **{
        "openinference.span.kind": "LLM", "llm.input_messages.0.message.role": "user",
        "llm.input_messages.0.message.content": "Height", "output.value": "330 m"})
    graph = reconstruct(spans)
    assert all(p.kind != "llm_output" for p in graph.outputs[0].parents)
