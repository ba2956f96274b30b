"""optimize() reuses instead of repeating (issue 14), counted on FakeApp / FakeEngine calls:
the baseline's runs are the first forward pass, the final check runs only what no step ran
under the kept prompts, the judge is not asked twice for the same verdict, each output is
judged as soon as it arrives, and the decisions stay what they were."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.loop.helpers import improving_engine, metric, polite_model
from tg_bridge.loop import Example, optimize
from tg_bridge.loop.batching import plan_steps
from tg_bridge.loop.evaluation import Runner, Scorer, Trial, run_examples
from tg_bridge.testing import FakeApp, FakeEngine

TRAIN = [({"q": w}, w.upper()) for w in ("apple", "pear", "fig", "kiwi")]


def test_baseline_runs_are_the_first_forward_pass(store_path):
    app = FakeApp("Answer {q}", polite_model)
    engine = improving_engine(lambda old: "Please answer {q}")
    result = optimize(app, TRAIN, metric=metric, engine=engine, batch_size=4, store=store_path,
                      progress=False)
    # baseline 4 + the candidate's check 4; no forward pass of its own (it was the baseline),
    # no final check (the check already ran the kept prompts on the whole trainset)
    assert app.calls == 8
    assert [s.accepted for s in result.history] == [True]
    assert result.history[0].before == 0.0 and result.history[0].score == 1.0
    assert result.baseline_score == 0.0 and result.best_score == 1.0
    assert app.template == "Please answer {q}"


def test_final_check_runs_only_what_no_step_ran_under_the_kept_prompts(store_path):
    app = FakeApp("Answer {q}", polite_model)
    engine = improving_engine(lambda old: "Please answer {q}")
    plan = plan_steps(4, batch_size=2, epochs=1, seed=0)
    result = optimize(app, TRAIN, metric=metric, engine=engine, batch_size=2, store=store_path,
                      progress=False)
    # step 1: forward reused from the baseline, check 2 (kept); step 2: forward 2 under the
    # kept prompts, no change proposed; final check: both halves already ran under them
    assert [s.accepted for s in result.history] == [True, False]
    assert result.history[1].reason == "the optimizer proposed no change"
    assert [s.batch for s in result.history] == [p.batch for p in plan]
    assert app.calls == 4 + 2 + 2
    assert result.best_score == 1.0 and app.template == "Please answer {q}"


def test_final_check_runs_the_examples_never_run_under_the_kept_prompts(store_path):
    app = FakeApp("Answer {q}", polite_model)
    engine = improving_engine([lambda old: "Please answer {q}",
                               lambda old: "Please kindly answer {q}"])
    plan = plan_steps(4, batch_size=2, epochs=1, seed=0)
    result = optimize(app, TRAIN, metric=metric, engine=engine, batch_size=2, accept="no_drop",
                      store=store_path, progress=False)
    assert [s.accepted for s in result.history] == [True, True]
    assert app.template == "Please kindly answer {q}" and result.best_score == 1.0
    # the kept prompts ran only on step 2's batch (its check): the final check runs step 1's
    # batch under them, and only that
    assert app.calls == 4 + 2 + 2 + 2 + len(plan[0].batch)


def test_a_reverted_candidate_leaves_the_kept_prompts_runs_usable(store_path):
    app = FakeApp("Answer {q}", polite_model)
    # step 2's candidate is worse and reverted; its forward pass ran batch 2 under the kept
    # prompts, so the final check has nothing left to run either; a third prompt value shows
    # that runs under other prompts are never taken for the kept ones
    engine = improving_engine([lambda old: "Please answer {q}", lambda old: "Reply {q}"])
    result = optimize(app, TRAIN[:3] + [({"q": "yam"}, "NOPE")], metric=metric, engine=engine,
                      batch_size=2, store=store_path, progress=False)
    assert [s.accepted for s in result.history] == [True, False]
    assert app.template == "Please answer {q}"
    # baseline 4, step 1 check 2, step 2 forward 2 + check 2 (reverted), final 0
    assert app.calls == 4 + 2 + 2 + 2


def test_with_a_valset_the_trainset_forward_pass_is_run(store_path):
    app = FakeApp("Answer {q}", polite_model)
    engine = improving_engine(lambda old: "Please answer {q}")
    val = [Example({"q": w}, w.upper()) for w in ("lime", "date")]
    result = optimize(app, TRAIN, metric=metric, valset=val, engine=engine, batch_size=4,
                      store=store_path, progress=False)
    # baseline on the valset 2, forward on the trainset 4 (never ran), validation 2
    assert app.calls == 2 + 4 + 2
    assert [s.accepted for s in result.history] == [True]


def _judge_engine(verdict=lambda text: {"score": 1.0 if "Certainly" in text else 0.0,
                                        "critique": "ok" if "Certainly" in text
                                        else "Ask politely."}):
    """Judge calls get ``verdict(output)``; backward/update calls as improving_engine."""
    inner = improving_engine(lambda old: "Please answer {q}")

    def respond(messages, response_format):
        props = (response_format or {}).get("properties", {})
        if "score" in props:
            output = messages[-1]["content"].split("<output>")[-1]
            return verdict(output)
        return inner._next(messages, response_format)

    return FakeEngine(respond)


def _judge_calls(engine):
    return [c for c in engine.calls if "score" in ((c[1] or {}).get("properties") or {})]


def test_judge_is_asked_once_per_output_in_an_optimize_run(store_path):
    app = FakeApp("Answer {q}", polite_model)
    engine = _judge_engine()
    result = optimize(app, TRAIN, judge="Is it polite?", engine=engine, batch_size=4,
                      store=store_path, progress=False)
    assert [s.accepted for s in result.history] == [True]
    # 4 baseline outputs + 4 outputs of the candidate; nothing judged twice
    assert len(_judge_calls(engine)) == 8


def _trial(index: int, output: str, prompts: str = "p1") -> Trial:
    return Trial(index, Example({"q": "x"}, "X"), run=None, output=output, prompts=prompts)


async def test_a_repeated_verdict_is_not_re_asked():
    engine = FakeEngine(lambda m, rf: {"score": 0.5, "critique": "fine"})
    scorer = Scorer(None, "Rate it.", engine)
    first, again = _trial(0, "an answer"), _trial(0, "an answer")
    await scorer.score(first)
    await scorer.score(again)
    assert engine.call_count == 1
    assert (again.score, again.feedback) == (first.score, first.feedback) == (0.5, "fine")
    # another output, other prompts, or another example: asked again
    await scorer.score(_trial(0, "another answer"))
    await scorer.score(_trial(0, "an answer", prompts="p2"))
    other = Trial(0, Example({"q": "y"}, "Y"), run=None, output="an answer", prompts="p1")
    await scorer.score(other)
    assert engine.call_count == 4
    await scorer.score(first)  # an already scored trial is left as it is
    assert engine.call_count == 4


async def test_an_unreadable_verdict_is_asked_again():
    answers = ["not json at all", json.dumps({"score": 0.75, "critique": "ok"})]
    engine = FakeEngine(answers)
    scorer = Scorer(None, "Rate it.", engine)
    first, second = _trial(0, "out"), _trial(0, "out")
    await scorer.score(first)
    await scorer.score(second)
    assert engine.call_count == 2
    assert first.score == 0.0 and second.score == 0.75


async def test_each_output_is_judged_as_it_arrives():
    """Example 0's run finishes only after the judge was asked about example 1: scoring
    after the whole batch would never get there."""
    judged = asyncio.Event()

    def respond(messages, response_format):
        judged.set()
        return {"score": 1.0, "critique": "fine"}

    async def invoke(inputs):
        if inputs["q"] == "slow":
            await asyncio.wait_for(judged.wait(), 30)  # a deadlock guard, not a timing
        return f"answer to {inputs['q']}"

    engine = FakeEngine(respond)
    runner = Runner(object(), invoke, name="two")
    examples = [Example({"q": "slow"}), Example({"q": "fast"})]
    trials = await run_examples(runner, examples, [0, 1], label="t",
                                scorer=Scorer(None, "Rate it.", engine))
    assert [t.error for t in trials] == [None, None]
    assert all(t.scored and t.score == 1.0 for t in trials)
    assert engine.call_count == 2


@pytest.mark.parametrize("accept", ["improve", "no_drop"])
def test_decisions_unchanged_by_reuse(store_path, accept):
    """Two epochs of two steps: the same decisions and prompts as running everything."""
    app = FakeApp("Answer {q}", polite_model)
    engine = improving_engine(lambda old: "Please answer {q}")
    result = optimize(app, TRAIN, metric=metric, engine=engine, batch_size=2, epochs=2,
                      accept=accept, store=store_path, progress=False)
    assert result.history[0].accepted and result.history[0].score == 1.0
    assert [s.reason for s in result.history[1:]] == ["the optimizer proposed no change"] * 3
    assert result.best_score == 1.0 and app.template == "Please answer {q}"
    # baseline 4, step 1 check 2 (batch A, kept), step 2 forward 2 (batch B); epoch 2's
    # forward passes reuse step 1's check runs (under the kept prompts, never graphed) and
    # run the other 2 (B's runs were graphed by step 2: a run feeds one step); final 0
    assert app.calls == 4 + 2 + 2 + 2
