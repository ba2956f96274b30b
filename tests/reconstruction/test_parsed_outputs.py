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


def test_a_short_tool_result_pasted_into_the_next_prompt_is_consumed(make_span):
    # ReAct: "Observation: 42" carries the tool's result; it must not stay a dangling output
    spans = [
        make_span("Agent.run", "r", start=0, **{"openinference.span.kind": "AGENT",
                                               "input.value": "What is 6 * 7?", "output.value": "Answer: 42"}),
        make_span("multiply", "t", "r", start=1, **{"openinference.span.kind": "TOOL", "tool.name": "multiply",
                                                   "input.value": '{"a": 6, "b": 7}', "output.value": "42"}),
        make_span("llm", "l", "r", start=2, **{
            "openinference.span.kind": "LLM", "llm.input_messages.0.message.role": "system",
            "llm.input_messages.0.message.content": "You are designed to help with a variety of tasks.",
            "llm.input_messages.1.message.role": "user", "llm.input_messages.1.message.content": "Observation: 42",
            "output.value": "Answer: 42"}),
    ]
    graph = reconstruct(spans)
    assert [o.kind for o in graph.outputs] == ["llm_output"]
    [observation] = [p for p in graph.outputs[0].parents if p.value == "Observation: 42"]
    assert [p.kind for p in observation.parents] == ["tool_result"]
