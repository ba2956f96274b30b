"""General, not memorized (issue 16.3): proposals carrying a training example's answer, input
or output are rejected, in TGD and through optimize(); the update prompt asks for general
instructions."""

from __future__ import annotations

import pytest

from tg_bridge.loop import Example, optimize
from tg_bridge.optim.tgd import TGD, guard_data
from tg_bridge.testing import FakeApp, FakeEngine
from tg_bridge.variable import Variable

ORIGINAL = "You are an assistant. Answer the arithmetic question {q}."


def system(value: str = "You are an assistant. Answer the question.") -> Variable:
    p = Variable(value, role="system prompt", requires_grad=True, kind="parameter", name="sys")
    p.add_gradient("The answers contain extra words; ask for the bare number.")
    return p


def propose(value: str, **kw):
    p = system()
    engine = FakeEngine(lambda m, fmt: {"improved_value": value})
    return TGD([p], engine=engine, **kw).propose(), engine


def test_guard_data_collects_inputs_outputs_and_labels():
    data = guard_data([Example({"q": "What is 3+4?", "n": None}, 7),
                       Example({"q": "Capital of France?"}, ["Paris", "paris"]),
                       Example({"q": "Is it?"}, True), Example({"q": "x"}, {"a": 1})],
                      ["It is 7.", ""])
    assert data["untrusted_texts"] == ["What is 3+4?", "Capital of France?", "Is it?", "x", "It is 7."]
    assert data["labels"] == ["7", "Paris", "paris"]  # bools and mappings are not labels


@pytest.mark.parametrize("leaky", [
    "You are an assistant. Please answer only the numerical value '7' without any additional words.",
    "You are an assistant. Answer with the number only, e.g. 7.",
    "You are an assistant. The answer is Paris unless told otherwise.",
])
def test_a_proposal_with_a_training_answer_is_rejected(leaky):
    patch, _ = propose(leaky, labels=["7", "Paris", "12"])
    assert not patch.changes
    assert [r["reason"] for r in patch.metadata["rejected"]] == ["label_leak"]


def test_class_names_and_function_words_are_not_leaks():
    # "yes" is the answer of one example of the batch but a class of the training set
    data = guard_data([Example({"q": "Is 4 even?"}, "yes")], ["yes"],
                      labels_of=[Example({"q": "a"}, "yes"), Example({"q": "b"}, "no"),
                                 Example({"q": "c"}, "yes"), Example({"q": "d"}, "Paris")])
    assert data["labels"] == ["yes", "no", "yes", "Paris"]
    assert data["untrusted_texts"] == ["Is 4 even?", "yes"]
    patch, _ = propose("You are an assistant. Reply with yes or no only.", **data)
    assert patch.changes
    patch, _ = propose("You are an assistant. Reply yes, or name the city (e.g. Paris).", **data)
    assert [r["reason"] for r in patch.metadata["rejected"]] == ["label_leak"]  # Paris is unique
    patch, _ = propose("You are an assistant. Reply with yes, or with nothing at all.",
                       labels=["yes", "yes", "all"])
    assert patch.changes  # "yes" is a class name; "all" identifies no example


def test_a_proposal_with_a_training_input_is_rejected():
    question = "A farmer has three cows, two pigs and a goat. How many animals are on the farm?"
    patch, _ = propose(f"You are an assistant. Example: {question} Answer: count them.",
                       untrusted_texts=[question])
    assert [r["reason"] for r in patch.metadata["rejected"]] == ["copy_guard"]


def test_a_general_proposal_passes_and_the_prompt_asks_for_generality():
    patch, engine = propose("You are an assistant. Reply with the bare number and nothing else.",
                            labels=["7", "17"], untrusted_texts=["What is 3+4?"])
    assert [c.new for c in patch.changes] == [
        "You are an assistant. Reply with the bare number and nothing else."]
    assert "general instructions" in engine.prompts()[0]


def test_optimize_never_keeps_a_prompt_that_memorized_a_label(fake_app_adapter, tmp_path):
    """Through the loop: the step passes its examples to TGD, so a proposal that hard-codes a
    training answer is rejected even though it would score perfectly on that example."""
    def model(prompt: str) -> str:
        return "7" if "'7'" in prompt else "The answer is 7, since 3 + 4 = 7."

    app = FakeApp(ORIGINAL, model)
    leaky = "You are an assistant. Answer the arithmetic question {q} with only the numerical value '7'."

    def respond(messages, fmt):
        if isinstance(fmt, dict) and "improved_value" in fmt.get("properties", {}):
            return {"improved_value": leaky}
        return "The answer has extra words; ask for the number only."

    result = optimize(app, [({"q": "3+4"}, "7")], metric=lambda ex, out: float(out == ex.expected),
                      engine=FakeEngine(respond), store=str(tmp_path / "r.db"), progress=False)
    assert app.template == ORIGINAL
    assert not result.history[0].accepted and "expected answer" in result.history[0].reason


def test_text_of_the_apps_other_prompts_is_not_a_copy():
    """The conversation a gradient shows holds the human template filled with user data, as a
    data block; moving one of the template's instructions into the system prompt is fair."""
    from tg_bridge.safety import delimit

    template = Variable("Use only the context below to answer, and cite the passage you used.\n"
                        "Context: {context}\nQuestion: {q}", role="human template",
                        requires_grad=True, kind="parameter", name="human")
    sys_prompt = system("You are helpful.")
    filled = template.value.replace("{context}", "Paris is in France.").replace("{q}", "Where?")
    sys_prompt.add_gradient("Cite sources.", context=delimit(filled, "message 1 (user)"))
    moved = "You are helpful. Use only the context below to answer, and cite the passage you used."
    engine = FakeEngine(lambda m, fmt: {"improved_value": moved})
    assert TGD([sys_prompt], engine=engine).propose().metadata["rejected"]  # alone: a copy
    patch = TGD([sys_prompt, template], engine=engine).propose()
    assert [c.new for c in patch.changes if c.target == sys_prompt.key] == [moved]
