"""refine(): run the app once, refine its ANSWER with a judge or a metric, vote, keep history."""

from __future__ import annotations

import asyncio

import pytest

import tg_bridge
import tg_bridge.adapters
from tg_bridge.exceptions import TgBridgeError, UsageError
from tg_bridge.losses import MetricLoss
from tg_bridge.refinement import Refinement, arefine, majority_vote, normalize_answer, refine
from tg_bridge.testing import FakeEngine
from tg_bridge.testing_app import FakeApp, FakeAppAdapter

QUESTION = {"question": "I have 2 apples, 1 orange and a banana. How many fruits do I have?"}


def kind_of(messages):
    system = messages[0]["content"]
    if system.startswith("You evaluate"):
        return "judge"
    if system.startswith("You are the critic"):
        return "backward"
    return "update"


def scripted(update_answers, verdict="VERDICT-7: the banana was not counted."):
    """Judge -> fixed verdict, backward -> critique, update -> the next scripted answer."""
    answers = list(update_answers)

    def respond(messages):
        kind = kind_of(messages)
        if kind == "judge":
            return verdict
        if kind == "backward":
            return "CRITIQUE-3: add the banana to the count."
        return {"improved_value": answers.pop(0) if len(answers) > 1 else answers[0]}

    return FakeEngine(respond)


def test_judge_text_reaches_the_update_prompt_and_history_is_kept():
    engine = scripted(["You have 4 fruits."])
    result = refine(lambda question: "You have 3 fruits.", QUESTION, steps=1, engine=engine)
    assert isinstance(result, Refinement)
    assert result.initial == "You have 3 fruits."
    assert result.final == result.best == "You have 4 fruits."
    assert [s.value for s in result.history] == ["You have 3 fruits.", "You have 4 fruits."]
    assert all(s.score is None for s in result.history)
    assert result.verdicts[0].startswith("VERDICT-7")
    updates = [p for (m, _, _), p in zip(engine.calls, engine.prompts()) if kind_of(m) == "update"]
    assert len(updates) == 1
    # the REAL judge verdict and the critique are in the update request, with the question
    assert "VERDICT-7: the banana was not counted." in updates[0]
    assert "CRITIQUE-3" in updates[0]
    assert "How many fruits do I have?" in updates[0]
    assert "You have 3 fruits." in updates[0]
    judges = [p for (m, _, _), p in zip(engine.calls, engine.prompts()) if kind_of(m) == "judge"]
    assert "How many fruits do I have?" in judges[0]  # the judge sees the request
    assert result.usage.calls == engine.call_count


def test_custom_judge_instruction_is_used():
    engine = scripted(["4"])
    refine(lambda question: "3", QUESTION, judge="JUDGE-RULE: check the arithmetic", steps=1, engine=engine)
    assert "JUDGE-RULE: check the arithmetic" in engine.prompts()[0]


def test_metric_keeps_best_by_score_not_last():
    # the update goes 3 -> 4 -> 5; the metric prefers 4
    engine = scripted(["4 fruits", "5 fruits"])

    def metric(inputs, answer):
        assert inputs == QUESTION
        good = answer.startswith("4")
        return (1.0 if good else 0.0), ("METRIC-SAYS: correct" if good else "METRIC-SAYS: expected 4")

    result = refine(lambda question: "3 fruits", QUESTION, loss=metric, steps=2, engine=engine)
    assert [s.score for s in result.history] == [0.0, 1.0, 0.0]
    assert result.best == "4 fruits" and result.final == "4 fruits"
    assert result.history[-1].value == "5 fruits"
    updates = [p for (m, _, _), p in zip(engine.calls, engine.prompts()) if kind_of(m) == "update"]
    assert "METRIC-SAYS: expected 4" in updates[0]
    assert not any(kind_of(m) == "judge" for m, _, _ in engine.calls)  # a metric needs no judge


def test_metric_loss_object_is_accepted():
    engine = scripted(["4"])
    loss = MetricLoss(lambda _ex, answer: float(answer.strip() == "4"), name="exact")
    result = refine(lambda question: "3", QUESTION, loss=loss, steps=1, engine=engine)
    assert result.best == "4" and [s.score for s in result.history] == [0.0, 1.0]


async def test_vote_majority_with_normalization():
    pool = ["Paris.", "Lyon", "  paris "]

    def respond(messages):
        kind = kind_of(messages)
        if kind == "judge":
            return "VERDICT: check the capital."
        if kind == "backward":
            return "CRITIQUE: name the capital."
        return {"improved_value": pool.pop(0)}

    engine = FakeEngine(respond)
    result = await arefine(lambda question: "Marseille", {"question": "Capital of France?"}, steps=1, engine=engine, vote=3)
    assert len(result.runs) == 3 and {s.run for s in result.history} == {0, 1, 2}
    assert result.votes == {"paris": 2, "lyon": 1}
    assert normalize_answer(result.final) == "paris"
    assert result.initial == "Marseille"


def test_majority_vote_ties_go_to_first_and_keep_original_text():
    assert majority_vote(["B", "a", "b", "A"]) == ("B", {"b": 2, "a": 2})
    assert majority_vote(["x"]) == ("x", {"x": 1})
    assert majority_vote(["(C)", "c", "D"], key=lambda t: t.strip("()").lower()) == ("(C)", {"c": 2, "d": 1})
    with pytest.raises(UsageError):
        majority_vote([])


def test_normalize_answer():
    assert normalize_answer('  "The  Answer is 4." ') == "the answer is 4"
    assert normalize_answer("4") == normalize_answer("4!")


async def test_async_target_and_mapping_target():
    engine = scripted(["ok"])

    async def app(question):
        await asyncio.sleep(0)
        return "async answer"

    result = await arefine(app, QUESTION, steps=0, engine=engine)
    assert result.initial == result.final == "async answer"
    assert len(result.history) == 1 and result.history[0].feedback.startswith("VERDICT")

    def takes_mapping(inputs):
        return f"saw {sorted(inputs)}"

    result = await arefine(takes_mapping, {"a": 1, "b": 2}, steps=0, engine=engine)
    assert result.initial == "saw ['a', 'b']"


def test_adapter_target_runs_through_adapter(monkeypatch):
    monkeypatch.setattr(tg_bridge.adapters, "load_adapters", lambda: [FakeAppAdapter()])
    app = FakeApp("Q: {question}", lambda prompt: f"model saw [{prompt}]")
    result = refine(app, QUESTION, steps=0, engine=scripted(["x"]))
    assert result.initial == f"model saw [Q: {QUESTION['question']}]"
    assert app.calls == 1
    assert app.template == "Q: {question}"  # refinement never changes the app's prompts


def test_bad_arguments_and_failing_targets(monkeypatch):
    monkeypatch.setattr(tg_bridge.adapters, "load_adapters", lambda: [])
    engine = scripted(["x"])
    with pytest.raises(UsageError):
        refine(lambda question: "a", QUESTION, loss=lambda a, b: 1.0, judge="judge", engine=engine)
    with pytest.raises(UsageError):
        refine(lambda question: "a", QUESTION, vote=0, engine=engine)
    with pytest.raises(UsageError):
        refine(object(), QUESTION, engine=engine)
    with pytest.raises(UsageError):
        refine(lambda question: "   ", QUESTION, engine=engine)

    def broken(question):
        raise RuntimeError("app is down")

    with pytest.raises(TgBridgeError, match="app is down"):
        refine(broken, QUESTION, engine=engine)


def test_unreadable_update_is_recorded_and_the_answer_kept():
    def respond(messages):
        kind = kind_of(messages)
        if kind == "judge":
            return "VERDICT"
        if kind == "backward":
            return "CRITIQUE"
        return "no json and no tags here"

    engine = FakeEngine(respond, supports_structured=False)
    result = refine(lambda question: "3", QUESTION, steps=1, engine=engine)
    assert result.final == "3"
    assert "OptimizerOutputError" in result.history[0].error


def test_str_and_html():
    result = refine(lambda question: "3 <b>", QUESTION, steps=1, engine=scripted(["4 & more"]), vote=2)
    text = str(result)
    assert "initial: 3 <b>" in text and "final:   4 & more" in text and "votes:" in text
    page = result._repr_html_()
    assert "3 &lt;b&gt;" in page and "4 &amp; more" in page and "<b>" not in page.replace("<b>initial", "").replace("<b>final", "").replace("<b>best", "")


def test_package_level_refine_is_the_function_even_after_the_module_is_imported():
    import tg_bridge.refinement as module

    assert module.refine is refine and tg_bridge.refine is refine
    result = tg_bridge.refine(lambda question: "3", QUESTION, steps=0, engine=scripted(["x"]))
    assert isinstance(result, Refinement) and result.final == "3"
