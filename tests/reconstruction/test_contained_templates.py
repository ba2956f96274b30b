"""Fixed-text prompts pasted INSIDE a larger rendered message become parameters."""

from __future__ import annotations

import json
import pathlib

from tg_bridge.reconstruction import reconstruct
from tg_bridge.reconstruction.claims import contained
from tg_bridge.reconstruction.messages import view_of
from tg_bridge.reconstruction.templates import render
from tg_bridge.reconstruction.tree import SpanTree
from tg_bridge.traces import read_spans

REACT = (pathlib.Path(__file__).resolve().parents[2] / "integrations" / "llamaindex" / "tests"
         / "fixtures" / "tgb_llamaindex_react_agent.jsonl")  # fmt: skip
SYSTEM = "You are a careful calculator. Always double-check sums."
HEADER = "## Rules\nUse tools when needed.\n\n"
FOOTER = "\n\n## Conversation\nThe user speaks next."


def _agent_spans(make_span, *, templates, system_text, extra=None):
    """An agent span offering templates and one LLM call whose system message holds ``system_text``."""
    return [
        make_span("Agent.run", "a", start=0, openinference__span__kind="AGENT", input__value="What is 2+3?",
                  output__value="5", tg_bridge__templates=templates),
        make_span("LLM.chat", "b", "a", start=1, openinference__span__kind="LLM",
                  **{"llm.input_messages.0.message.role": "system",
                     "llm.input_messages.0.message.content": system_text,
                     "llm.input_messages.1.message.role": "user",
                     "llm.input_messages.1.message.content": "What is 2+3?",
                     "llm.output_messages.0.message.role": "assistant",
                     "llm.output_messages.0.message.content": "5"}),
        *(extra or []),
    ]


def test_react_fixture_system_prompt_is_a_bound_parameter_feeding_the_header():
    graph = reconstruct(read_spans(REACT))
    keys = [p.key for p in graph.parameters()]
    assert keys == ["llamaindex:ReActAgent#3/react_header", "llamaindex:ReActAgent#3/system_prompt"]
    system = graph.find("llamaindex:ReActAgent#3/system_prompt")
    assert system is not None and system.value == "You are a careful calculator."
    assert system.requires_grad and system.metadata["format"] == "none"
    header = graph.find("llamaindex:ReActAgent#3/react_header")
    formats = [n for n in graph.nodes if n.op is not None and n.op.kind == "format"]
    assert len(formats) == 2  # one rendered header per LLM call
    for fmt in formats:
        assert fmt.parents[0] is header
        assert any(p is system for p in fmt.parents)
        # the header's {context} placeholder is filled by the system prompt parameter
        assert fmt.parents[fmt.op.attrs["variables"]["context"]] is system
        assert "You are a careful calculator." in fmt.value
    # no longer a plain run input
    assert not [n for n in graph.nodes if n.kind == "input" and n.value == system.value]


def test_fixed_text_inside_an_unclaimed_message_becomes_a_format_of_the_parameter(make_span):
    records = json.dumps([{"template": SYSTEM, "format": "none", "role": "system", "name": "system_prompt",
                           "binding": "app:agent/system_prompt"}])  # fmt: skip
    text = HEADER + SYSTEM + FOOTER
    graph = reconstruct(_agent_spans(make_span, templates=records, system_text=text))
    [param] = graph.parameters()
    assert param.key == "app:agent/system_prompt" and param.value == SYSTEM
    [message] = [n for n in graph.nodes if n.op is not None and n.op.kind == "format"]
    assert message.value == text
    assert message.parents == (param,)
    attrs = message.op.attrs
    assert attrs["variables"] == {"part0": 0}
    # the recorded template re-renders the exact message from the parameter
    assert render(attrs["template"], {"part0": SYSTEM}) == text
    [llm] = [n for n in graph.nodes if n.kind == "llm_output"]
    assert llm.parents[0] is message
    assert param.role.startswith("system prompt of LLM step 'LLM.chat'")


def test_exact_fixed_template_still_claims_the_whole_message(make_span):
    records = json.dumps([{"template": SYSTEM, "format": "none", "role": "system", "name": "system_prompt"}])
    graph = reconstruct(_agent_spans(make_span, templates=records, system_text=SYSTEM))
    [param] = graph.parameters()
    [llm] = [n for n in graph.nodes if n.kind == "llm_output"]
    assert llm.parents[0] is param  # directly, no format op
    assert not [n for n in graph.nodes if n.op is not None and n.op.kind == "format"]
    assert "contained" not in param.metadata


def test_short_or_absent_fixed_text_is_not_matched(make_span):
    records = json.dumps([
        {"template": "Be brief.", "format": "none", "role": "system", "name": "short"},  # under 12 chars
        {"template": "Text that the message does not hold.", "format": "none", "role": "system", "name": "absent"},
    ])  # fmt: skip
    text = HEADER + "Be brief." + FOOTER
    graph = reconstruct(_agent_spans(make_span, templates=records, system_text=text))
    # the whole system message is its own (unbound) fixed-text parameter, as before
    [param] = graph.parameters()
    assert param.value == text and param.key.startswith("Agent.run/LLM.chat/system[0]#")


def test_two_contained_prompts_and_overlap_keeps_the_longer(make_span):
    other = "Answer in one number, nothing else."
    records = json.dumps([
        {"template": SYSTEM, "format": "none", "role": "system", "name": "system_prompt"},
        {"template": other, "format": "none", "role": "system", "name": "style"},
        {"template": "careful calculator", "format": "none", "role": "system", "name": "inner"},
    ])  # fmt: skip
    text = HEADER + other + "\n" + SYSTEM + FOOTER
    graph = reconstruct(_agent_spans(make_span, templates=records, system_text=text))
    names = sorted(p.name for p in graph.parameters())
    assert names == ["style", "system_prompt"]  # "inner" overlaps the longer system prompt
    [message] = [n for n in graph.nodes if n.op is not None and n.op.kind == "format"]
    assert [p.name for p in message.parents] == ["style", "system_prompt"]  # order in the text


def test_contained_respects_scope_and_bounds(make_span):
    records = json.dumps([{"template": SYSTEM, "format": "none", "name": "system_prompt"}])
    spans = _agent_spans(make_span, templates="[]", system_text=HEADER + SYSTEM)
    # an offer in an unrelated subtree (child of a sibling's child) is out of scope
    spans.append(make_span("Other", "c", "a", start=2))
    spans.append(make_span("Other.inner", "d", "c", start=3, tg_bridge__templates=records))
    tree = SpanTree.build(spans)
    views = {id(n): view_of(n.name, n.record.attributes) for n in tree.nodes}
    offers = [n for n in tree.nodes if views[id(n)].templates]
    llm = next(n for n in tree.nodes if n.name == "LLM.chat")
    assert contained(offers, views, llm, HEADER + SYSTEM) == []
    root = next(n for n in tree.nodes if n.name == "Other.inner")
    assert [i.name for i, _ in contained(offers, views, root, "x" + SYSTEM)] == ["system_prompt"]
    assert contained(offers, views, root, SYSTEM + "x" * 200_001) == []  # too large to scan
    info = views[id(root)].templates[0]
    assert contained(offers, views, root, "x" + SYSTEM, taken=[info]) == []


def test_shared_pool_keeps_one_parameter_across_runs(make_span):
    records = json.dumps([{"template": SYSTEM, "format": "none", "role": "system", "name": "system_prompt",
                           "binding": "app:agent/system_prompt"}])  # fmt: skip
    pool: dict = {}
    g1 = reconstruct(_agent_spans(make_span, templates=records, system_text=HEADER + SYSTEM), parameters=pool)
    g2 = reconstruct(_agent_spans(make_span, templates=records, system_text=SYSTEM + FOOTER), parameters=pool)
    assert g1.parameters()[0] is g2.parameters()[0]
    assert list(pool) == ["app:agent/system_prompt"]
