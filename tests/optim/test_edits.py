"""Minimal edits (issue 16.4): the optimizer answers with operations, applied to the current
value; the Change differs from the old value only where the edits are."""

from __future__ import annotations

import difflib

import pytest

from tg_bridge.engines.base import Completion
from tg_bridge.exceptions import OptimizerOutputError, UsageError
from tg_bridge.optim.edits import MAX_EDITS, Edit, apply_edits, read_edits
from tg_bridge.optim.tgd import TGD, gradient_part
from tg_bridge.testing import FakeEngine
from tg_bridge.variable import Variable

VALUE = "You are an assistant.\nAnswer the question {q}.\nBe polite."


def param(value: str = VALUE) -> Variable:
    p = Variable(value, role="prompt template", requires_grad=True, kind="parameter", name="t",
                 metadata={"template_format": "f-string"})
    p.add_gradient("The answers contain extra words; ask for the bare number.")
    return p


def answer(data) -> Completion:
    import json

    return Completion(text=json.dumps(data))


def test_append_goes_at_the_end_and_keeps_the_rest_byte_for_byte():
    new, problem = apply_edits(VALUE + "\n", [Edit("append", "  Reply with the number only. ")])
    assert problem == ""
    assert new == VALUE + "\nReply with the number only.\n"
    assert apply_edits("Answer {q}", [Edit("append", "Be brief.")])[0] == "Answer {q} Be brief."


def test_replace_needs_exactly_one_occurrence():
    missing, problem = apply_edits(VALUE, [Edit("replace", old="Be brief.", new="Be polite.")])
    assert missing is None and "does not occur" in problem
    new, _ = apply_edits(VALUE, [Edit("replace", old="Be polite.", new="")])
    assert new == "You are an assistant.\nAnswer the question {q}.\n"  # an empty new deletes
    twice, problem = apply_edits("Say a. Say b.", [Edit("replace", old="Say", new="Write")])
    assert twice is None and "occurs 2 times" in problem


@pytest.mark.parametrize("data, problem", [
    ({"improved_value": "x"}, "no JSON object with an 'edits' list"),
    ({"edits": [{"op": "delete", "new": ""}]}, "use one of"),
    ({"edits": [{"op": "replace", "new": "x"}]}, "replaces nothing"),
    ({"edits": [{"op": "append", "new": "  "}]}, "appends nothing"),
    ({"edits": [{"op": "append", "new": 3}]}, "must be strings"),
    ({"edits": [{"op": "append", "new": "x"}] * (MAX_EDITS + 1)}, f"at most {MAX_EDITS}"),
    ({"edits": ["append x"]}, "not an object"),
])
def test_unreadable_edits_are_problems_not_exceptions(data, problem):
    edits, why = read_edits(answer(data))
    assert edits is None and problem in why


def test_tgd_edit_style_returns_the_minimal_change():
    ops = [{"op": "replace", "old": "Be polite.", "new": "Reply with the bare number only."}]
    engine = FakeEngine(lambda m, fmt: {"edits": ops})
    patch = TGD([param()], engine=engine, style="edit").propose()
    (change,) = patch.changes
    diff = [line for line in difflib.ndiff(VALUE.splitlines(), change.new.splitlines())
            if line[:1] in "+-"]
    assert diff == ["- Be polite.", "+ Reply with the bare number only."]
    assert change.provenance["edits"] == ops and change.provenance["style"] == "edit"
    assert patch.metadata["style"] == "edit"
    messages, fmt, _ = engine.calls[0]
    assert "edits" in fmt["properties"] and "Do not rewrite the whole value" in messages[-1]["content"]
    assert "smallest change" in messages[0]["content"]


def test_edits_changing_nothing_produce_no_change():
    engine = FakeEngine(lambda m, fmt: {"edits": [{"op": "replace", "old": "polite", "new": "polite"}]})
    p = param()
    patch = TGD([p], engine=engine, style="edit").propose()
    assert not patch.changes and patch.metadata["unchanged"] == [p.key]
    empty = TGD([param()], engine=FakeEngine([{"edits": []}]), style="edit").propose()
    assert not empty.changes


def test_a_bad_quote_gets_one_retry_then_an_error():
    good = [{"op": "append", "new": "Reply with the bare number only."}]
    engine = FakeEngine([{"edits": [{"op": "replace", "old": "Be nice.", "new": "x"}]},
                         {"edits": good}])
    (change,) = TGD([param()], engine=engine, style="edit").propose().changes
    assert change.new == VALUE + "\nReply with the bare number only."
    assert "does not occur" in engine.calls[1][0][-1]["content"]
    failing = FakeEngine([{"edits": [{"op": "replace", "old": "nope", "new": "x"}]}] * 2)
    with pytest.raises(OptimizerOutputError, match="usable edits"):
        TGD([param()], engine=failing, style="edit").propose()


def test_edited_values_are_validated_like_rewrites():
    """Edits cannot drop a placeholder or smuggle in a training label."""
    drop = FakeEngine([{"edits": [{"op": "replace", "old": " {q}", "new": ""}]}])
    patch = TGD([param()], engine=drop, style="edit").propose()
    assert not patch.changes and patch.metadata["rejected"][0]["reason"] == "placeholders"
    leak = FakeEngine([{"edits": [{"op": "append", "new": "The answer is 1789."}]}])
    patch = TGD([param()], engine=leak, style="edit", labels=["1789"]).propose()
    assert [r["reason"] for r in patch.metadata["rejected"]] == ["label_leak"]


def test_sampling_parameters_and_feedback_parts():
    engine = FakeEngine(lambda m, fmt: {"improved_value": "Reply with the number {q}."})
    TGD([param()], engine=engine, temperature=0.7, seed=12).propose()
    assert engine.calls[0][2] == {"temperature": 0.7, "seed": 12}
    TGD([param()], engine=engine).propose()
    assert engine.calls[1][2] == {}  # greedy: the engine's own defaults
    grads = list(range(5))
    assert gradient_part(grads, (1, 2)) == [1, 3] and gradient_part(grads, None) == grads
    assert gradient_part(grads[:1], (1, 3)) == [0]  # an empty part shows all
    with pytest.raises(UsageError):
        TGD([param()], engine=engine, gradient_part=(2, 2))
    with pytest.raises(UsageError):
        TGD([param()], engine=engine, style="diff")  # type: ignore[arg-type]
