"""TGD: update prompt contents, output parsing and retry, validation outcomes, momentum, step."""

from __future__ import annotations

import asyncio

import pytest

from tg_bridge.engines.base import Completion
from tg_bridge.exceptions import OptimizerOutputError, PatchValidationError, UsageError
from tg_bridge.losses import feedback
from tg_bridge.optim import TGD
from tg_bridge.optim.parsing import read_improved_value
from tg_bridge.patching.binding import CallableBinding
from tg_bridge.testing import FakeEngine
from tg_bridge.variable import Operation, Variable

LONG = " ".join(f"word{i}" for i in range(200))


def param(value: str = "Answer briefly.", **kw) -> Variable:
    kw.setdefault("name", "sys")
    return Variable(value, role="system prompt", requires_grad=True, kind="parameter", **kw)


def test_update_prompt_shows_full_value_feedback_context_and_constraints():
    p = param("Start. " + LONG + " End.")
    p.add_gradient("Mention units.", context="the step context")
    engine = FakeEngine([{"improved_value": "Better."}])
    patch = TGD([p], engine=engine, constraints=["Keep it polite."]).propose()
    prompt = engine.prompts()[0]
    assert "Start. " + LONG + " End." in prompt  # the whole value, not first/last words
    assert "Mention units." in prompt and "the step context" in prompt and "- Keep it polite." in prompt
    assert engine.calls[0][1]["required"] == ["improved_value"]
    assert patch.changes[0].new == "Better." and p.value.startswith("Start.")  # propose is pure


def test_tag_output_when_no_structured_output():
    p = param()
    p.add_gradient("fb")
    engine = FakeEngine(["Sure!\n<IMPROVED_VALUE>\nLine one.\n  Line two.\n</IMPROVED_VALUE>\nbye"], supports_structured=False)
    patch = TGD([p], engine=engine).propose()
    assert engine.calls[0][1] is None and "<IMPROVED_VALUE>" in engine.prompts()[0]
    assert patch.changes[0].new == "Line one.\n  Line two."


def test_parsing_cases():
    ok = read_improved_value(Completion('```json\n{"improved_value": "v"}\n```'))
    assert ok == ("v", "")
    assert read_improved_value(Completion("<IMPROVED_VALUE>open only"))[0] is None
    assert "no string field" in read_improved_value(Completion('{"value": 1}'))[1]
    assert read_improved_value(Completion("", parsed={"improved_value": "p"})) == ("p", "")


def test_one_retry_then_optimizer_output_error():
    p = param()
    p.add_gradient("fb")
    engine = FakeEngine(["no tags here", "<IMPROVED_VALUE>fixed</IMPROVED_VALUE>"], supports_structured=False)
    assert TGD([p], engine=engine).propose().changes[0].new == "fixed"
    retry_messages = engine.calls[1][0]
    assert retry_messages[-2] == {"role": "assistant", "content": "no tags here"}
    assert "could not be read" in retry_messages[-1]["content"]

    engine = FakeEngine(["garbage 1", "garbage 2", "never asked"], supports_structured=False)
    with pytest.raises(OptimizerOutputError) as info:
        TGD([p], engine=engine).propose()
    assert engine.call_count == 2 and info.value.raw == "garbage 2"


def test_placeholder_rejection_keeps_parameter_and_reports():
    store = {"t": "Q: {question}\nC: {context}"}
    binding = CallableBinding("app/tpl", lambda: store["t"], lambda v: store.update(t=v), "f-string")
    tpl = Variable(store["t"], role="prompt template", requires_grad=True, binding=binding)
    ok = param()
    for v in (tpl, ok):
        v.add_gradient("fb")

    def answer(messages):
        if "prompt template" in messages[1]["content"]:
            return {"improved_value": "Q: {question}"}  # lost {context}
        return {"improved_value": "Fine."}

    engine = FakeEngine(answer)
    patch = TGD([tpl, ok], engine=engine).propose()
    assert [c.target for c in patch.changes] == [ok.key]
    [rejected] = patch.metadata["rejected"]
    assert rejected["target"] == "app/tpl" and rejected["reason"] == "placeholders"
    assert rejected["proposed"] == "Q: {question}"
    assert "{question}, {context}" in engine.prompts()[0]  # the prompt named the placeholders
    patch.apply()
    assert store["t"] == "Q: {question}\nC: {context}" and ok.value == "Fine."
    with pytest.raises(PatchValidationError) as info:
        TGD([tpl], engine=FakeEngine(answer), strict=True).propose()
    assert info.value.reason == "placeholders"


def test_copy_guard_uses_untrusted_content_of_the_run():
    doc = Variable(LONG, role="retrieved document", kind="document")
    p = param()
    out = Variable("answer", role="answer", parents=(p, doc), op=Operation("llm_call", (p, doc)))
    p.add_gradient("use the document", source=out)
    engine = FakeEngine([{"improved_value": "Always say: " + LONG[:300]}])
    patch = TGD([p], engine=engine).propose()
    assert not patch.changes and patch.metadata["rejected"][0]["reason"] == "copy_guard"
    assert p.value == "Answer briefly."


def test_empty_and_unchanged_and_skipped():
    a, b, c = param("A", name="a"), param("B", name="b"), param("C", name="c")
    a.add_gradient("x")
    b.add_gradient("y")
    engine = FakeEngine(lambda m: {"improved_value": "  " if "A" in m[1]["content"].split("</current_value>")[0] else "B"})
    patch = TGD([a, b, c], engine=engine).propose()
    assert not patch.changes
    assert patch.metadata["rejected"][0]["reason"] == "empty"
    assert patch.metadata["unchanged"] == [b.key] and patch.metadata["skipped"] == [c.key]
    assert engine.call_count == 2  # no call for a parameter without feedback


def test_step_applies_and_zero_grad():
    p = param()
    feedback(p, "shorter")
    opt = TGD([p], engine=FakeEngine([{"improved_value": "Short."}]))
    patch = opt.step()
    assert patch.applied and p.value == "Short."
    opt.zero_grad()
    assert not p.gradients
    patch.revert()
    assert p.value == "Answer briefly."


def test_momentum_shows_past_values():
    p = param("v1")
    engine = FakeEngine(lambda m: {"improved_value": "v" + str(int(m[1]["content"].split("<current_value>\n")[1][1]) + 1)})
    opt = TGD([p], engine=engine, momentum=2)
    for i in range(3):
        feedback(p, f"feedback round {i}", trusted=True)  # developer feedback: verbatim
        opt.step()
        opt.zero_grad()
    assert p.value == "v4"
    last = engine.prompts()[-1]
    assert "Earlier values" in last and "<past 1>\nv1\nFeedback: feedback round 0" in last
    assert "<past 2>\nv2\nFeedback: feedback round 1" in last
    no_momentum = FakeEngine([{"improved_value": "x"}])
    q = param("q")
    feedback(q, "f")
    TGD([q], engine=no_momentum).propose()
    assert "Earlier values" not in no_momentum.prompts()[0]


class _GatheringEngine(FakeEngine):
    """Answers only once ``n`` calls are in flight together: sequential updates never get
    there and time out (a bound for failure only, not a timing assertion)."""

    def __init__(self, n: int) -> None:
        super().__init__(lambda m: {"improved_value": "new " + m[1]["content"].split("\n")[2]})
        self.n, self.waiting, self.all_in = n, 0, asyncio.Event()

    async def _call(self, messages, response_format, params):
        self.waiting += 1
        if self.waiting >= self.n:
            self.all_in.set()
        await asyncio.wait_for(self.all_in.wait(), timeout=30)
        return await super()._call(messages, response_format, params)


async def test_updates_run_concurrently():
    params = [param(f"p{i}", name=f"p{i}") for i in range(5)]
    for p in params:
        p.add_gradient("fb")
    engine = _GatheringEngine(5)
    patch = await TGD(params, engine=engine).apropose()
    assert len(patch.changes) == 5 and engine.all_in.is_set()
    assert [c.target for c in patch.changes] == [p.key for p in params]


def test_usage_errors():
    with pytest.raises(UsageError):
        TGD([], engine=FakeEngine())
    with pytest.raises(UsageError):
        TGD(["not a variable"], engine=FakeEngine())
    with pytest.raises(UsageError, match="share the key"):
        TGD([param("same"), param("same")], engine=FakeEngine())
    with pytest.raises(UsageError):
        TGD([param()], engine=FakeEngine(), momentum=-1)
