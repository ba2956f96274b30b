"""The TypedDicts that describe JSON records stay in step with the code that builds them."""

from __future__ import annotations

import dataclasses
import json
import typing

from tg_bridge import Graph, Patch, Variable
from tg_bridge.patching.patch import Change
from tg_bridge.patching.patch_io import ChangeFields, parse_patch
from tg_bridge.variable import Gradient, Operation, content_hash
from tg_bridge.views import EdgeJSON, GraphJSON, NodeJSON, graph_to_json


def _small_graph() -> Graph:
    prompt = Variable("Answer briefly.", role="system prompt", requires_grad=True, kind="parameter")
    question = Variable("What is 2+2?", role="question", kind="input")
    op = Operation("llm_call", (prompt, question), attrs={"model": "m"}, name="llm")
    answer = Variable("4", role="answer", parents=(prompt, question), kind="llm_output", op=op)
    op.output = answer
    answer.gradients.append(Gradient("fine"))
    return Graph([answer])


def test_graph_json_has_exactly_the_typed_keys():
    data = graph_to_json(_small_graph())
    assert set(data) == set(typing.get_type_hints(GraphJSON))
    assert data["nodes"] and data["edges"]
    for node in data["nodes"]:
        assert set(node) == set(typing.get_type_hints(NodeJSON))
    for edge in data["edges"]:
        assert set(edge) == set(typing.get_type_hints(EdgeJSON))
    json.dumps(data)  # still plain JSON


def test_loaded_change_fields_are_exactly_the_change_fields():
    change = Change("k", "replace", "old", "new", content_hash("old"), {"role": "r"})
    fields, _ = parse_patch(Patch([change]).to_json())
    assert set(typing.get_type_hints(ChangeFields)) == {f.name for f in dataclasses.fields(Change)}
    assert set(fields[0]) == set(typing.get_type_hints(ChangeFields))
    assert Change(**fields[0]) == change
