"""Candidate search inside a step (optimize(candidates=k)), budgets and the search record."""

from __future__ import annotations

import json
import re

import pytest

from tests.loop.helpers import metric, polite_model
from tg_bridge.exceptions import EngineError, UsageError
from tg_bridge.loop import Example, optimize
from tg_bridge.loop.candidates import diverse_settings
from tg_bridge.store import RunStore
from tg_bridge.testing import FakeApp, FakeEngine

TRAIN = [({"q": w}, w.upper()) for w in ("apple", "pear", "fig", "kiwi")]
VAL = [Example({"q": w}, w.upper()) for w in ("lime", "date", "plum", "yam")]
CRITIQUE = "Ask the model politely so that it answers in full."


def kind(response_format) -> str:
    props = response_format.get("properties", {}) if isinstance(response_format, dict) else {}
    return "rewrite" if "improved_value" in props else "edit" if "edits" in props else "other"


def engine(rewrite="Kindly answer {q}", edits=None) -> FakeEngine:
    """Rewrites propose ``rewrite``; edit requests get ``edits`` (default: 'Answer' ->
    'Please answer', which is what the polite-only model needs)."""
    ops = edits if edits is not None else [{"op": "replace", "old": "Answer", "new": "Please answer"}]

    def respond(messages, response_format):
        if kind(response_format) == "rewrite":
            return {"improved_value": rewrite}
        if kind(response_format) == "edit":
            return {"edits": ops}
        return CRITIQUE

    return FakeEngine(respond)


def update_calls(fake: FakeEngine) -> list[tuple]:
    return [(kind(fmt), params.get("temperature"), params.get("seed"),
             tuple(re.findall(r"<feedback \d+>\nContext it was given in:\n(.*?)\n\nFeedback",
                              msgs[-1]["content"], re.DOTALL)))
            for msgs, fmt, params in fake.calls if kind(fmt) != "other"]


def test_settings_are_pairwise_different_and_deterministic():
    for k in range(1, 12):
        settings = diverse_settings(k, seed=3)
        assert len(settings) == k
        assert len({(s.style, s.temperature, s.seed, s.part) for s in settings}) == k
        assert settings == diverse_settings(k, seed=3)
    first = diverse_settings(1)[0]  # k=1 is TextGrad's proposal: greedy, whole rewrite, all
    assert (first.style, first.temperature, first.seed, first.part) == ("rewrite", None, None, None)


def test_k_candidates_are_k_proposals_with_distinct_settings(store_path):
    fake = engine()
    app = FakeApp("Answer {q}", polite_model)
    optimize(app, TRAIN, metric=metric, valset=VAL, engine=fake, candidates=4, batch_size=4,
             store=store_path, progress=False)
    calls = update_calls(fake)
    assert len(calls) == 4
    assert len(set(calls)) == 4  # style, sampling or the feedback shown differ
    assert [c[0] for c in calls].count("edit") == 2
    shown = [c[3] for c in calls]
    assert len(shown[0]) == 4 and {len(s) for s in shown[2:]} == {2}  # halves of the feedback
    assert set(shown[2]).isdisjoint(shown[3])


def test_the_best_on_the_batch_is_the_one_validated(store_path):
    app = FakeApp("Answer {q}", polite_model)
    result = optimize(app, TRAIN, metric=metric, valset=VAL, engine=engine(), candidates=4,
                      batch_size=4, store=store_path, progress=False)
    step = result.history[0]
    assert step.accepted and app.template == "Please answer {q}"
    search = step.candidate.metadata
    assert search["winner"] == 1  # the greedy minimal edit
    scores = [c["batch_score"] for c in search["candidates"]]
    assert scores == [0.0, 1.0, 0.0, 1.0]
    assert [c["same_as"] for c in search["candidates"]] == [None, None, 0, 1]
    # runs of the app: baseline on the valset (4), the batch (4), two DISTINCT candidates
    # on the batch (identical proposals run once: 8), the winner alone on the valset (4)
    assert app.calls == 20
    change = step.candidate.changes[0]
    assert change.provenance["style"] == "edit"
    assert change.provenance["edits"] == [
        {"op": "replace", "old": "Answer", "new": "Please answer"}]


def test_a_candidate_refused_by_validation_is_never_run(store_path):
    """Every candidate goes through TGD's checks: a label leak is refused, not scored."""
    app = FakeApp("Answer {q}", polite_model)
    result = optimize(app, TRAIN, metric=metric, valset=VAL,
                      engine=engine(rewrite="Answer {q} like APPLE"), candidates=2,
                      batch_size=4, store=store_path, progress=False)
    first, second = result.history[0].candidate.metadata["candidates"]
    assert (first["changed"], first["batch_score"]) == (False, None)
    assert second["batch_score"] == 1.0 and result.history[0].accepted
    assert app.calls == 4 + 4 + 4 + 4  # baseline, batch, one candidate, validation
    assert "APPLE" not in app.template


def test_no_valset_reuses_the_batch_scores_for_the_gate(store_path):
    app = FakeApp("Answer {q}", polite_model)
    result = optimize(app, TRAIN, metric=metric, engine=engine(), candidates=2, batch_size=4,
                      store=store_path, progress=False)
    assert result.history[0].accepted and result.history[0].score == 1.0
    # baseline (4, which doubles as the step's forward pass), two candidates on the batch (8);
    # the winner's batch runs already cover the whole trainset, so the final check reuses them
    assert app.calls == 12


def test_all_candidates_failing_is_a_rejected_step(store_path):
    app = FakeApp("Answer {q}", polite_model)
    bad = FakeEngine(lambda m, f: "not json" if kind(f) != "other" else CRITIQUE)
    result = optimize(app, TRAIN, metric=metric, valset=VAL, engine=bad, candidates=2,
                      batch_size=4, store=store_path, progress=False)
    step = result.history[0]
    assert not step.accepted and step.reason.startswith("none of 2 candidates")
    assert app.template == "Answer {q}"


def test_a_best_worse_than_the_current_prompts_on_the_batch_is_not_validated(store_path):
    def half(prompt: str) -> str:  # the original prompt is right on half of the batch
        word = prompt.rsplit(" ", 1)[-1]
        good = ("Reply" in prompt and word in ("apple", "pear")) or "please" in prompt.lower()
        return f"Certainly! {word.upper()}" if good else word

    app = FakeApp("Reply {q}", half)
    fake = engine(rewrite="Answer {q}", edits=[{"op": "replace", "old": "Reply", "new": "Say"}])
    result = optimize(app, TRAIN, metric=metric, valset=VAL, engine=fake, candidates=2,
                      batch_size=4, store=store_path, progress=False)
    step = result.history[0]
    assert not step.accepted and "below the current prompts' 0.5" in step.reason
    assert app.calls == 4 + 4 + 8  # no validation run
    assert step.candidate.metadata["winner"] == 0


def test_search_cost_is_counted_per_phase(store_path):
    fake = engine()
    result = optimize(FakeApp("Answer {q}", polite_model), TRAIN, metric=metric, valset=VAL,
                      engine=fake, candidates=3, batch_size=4, store=store_path,
                      progress=False)
    usage = result.history[0].usage
    assert usage["update"]["calls"] == 3 == len(update_calls(fake))
    assert usage["backward"]["calls"] + usage["update"]["calls"] == fake.call_count
    assert result.total_usage()["calls"] == fake.call_count


def test_budget_stops_before_a_step_that_could_pass_it(store_path, capsys):
    fake = engine(rewrite="Kindly answer {q}", edits=[])  # never improves: every step runs
    result = optimize(FakeApp("Answer {q}", polite_model), TRAIN, metric=metric, engine=fake,
                      batch_size=1, store=store_path, max_calls=5, progress=True)
    # each step costs 2 calls (feedback + update): steps 1 and 2 fit, step 3 could not
    assert [s.step for s in result.history] == [1, 2]
    assert fake.call_count == 4  # within max_calls=5
    err = capsys.readouterr().err
    assert "over max_calls=5; stopped before it" in err and "calls 4/5" in err


def test_token_budget(store_path):
    fake = engine(rewrite="Kindly answer {q}", edits=[])
    unlimited = optimize(FakeApp("Answer {q}", polite_model), TRAIN, metric=metric,
                         engine=engine(rewrite="Kindly answer {q}"), batch_size=1,
                         store=store_path, progress=False)
    per_step = [s.usage["backward"]["prompt_tokens"] + s.usage["backward"]["completion_tokens"]
                + s.usage["update"]["prompt_tokens"] + s.usage["update"]["completion_tokens"]
                for s in unlimited.history]
    limit = per_step[0] + per_step[1] + max(per_step) // 2
    result = optimize(FakeApp("Answer {q}", polite_model), TRAIN, metric=metric, engine=fake,
                      batch_size=1, store=store_path.replace(".db", "2.db"), max_tokens=limit,
                      progress=False)
    spent = result.total_usage()
    assert len(result.history) == 2
    assert spent["prompt_tokens"] + spent["completion_tokens"] <= limit


@pytest.mark.parametrize("kwargs", [{"candidates": 0}, {"candidates": True},
                                    {"strategy": "beam"}, {"max_calls": 0},
                                    {"max_tokens": -3}, {"strategy": "pareto"}])
def test_bad_arguments(kwargs, store_path):
    with pytest.raises(UsageError):
        optimize(FakeApp("Answer {q}", polite_model), TRAIN, metric=metric, engine=engine(),
                 store=store_path, progress=False, **kwargs)


def test_resume_keeps_the_search_record(store_path):
    """A crash in step 2 and a resume: step 1's winner and the others' scores are in the
    store, and the resumed run ends where an uninterrupted one does."""
    train = TRAIN * 2

    def crashing():
        fake = engine()
        seen = {"backward": 0}

        def respond(messages, fmt):
            if kind(fmt) == "other":
                seen["backward"] += 1
                if seen["backward"] > 4:  # step 2's feedback: the process "dies"
                    return EngineError("connection lost", retryable=False)
            return fake._fn(messages, fmt)

        return FakeEngine(respond)

    app = FakeApp("Answer {q}", polite_model)
    with pytest.raises(EngineError):
        optimize(app, train, metric=metric, valset=VAL, engine=crashing(), candidates=2,
                 batch_size=4, store=store_path, progress=False)
    store = RunStore(store_path)
    (run,) = store.runs()
    (first,) = store.steps(run.id)
    record = json.loads(first.candidate)["metadata"]
    assert record["winner"] == 1
    assert [c["batch_score"] for c in record["candidates"]] == [0.0, 1.0]
    fresh = FakeApp("Answer {q}", polite_model)
    resumed = optimize(fresh, train, metric=metric, valset=VAL, engine=engine(), candidates=2,
                       batch_size=4, store=store_path, resume=run.id, progress=False)
    reference = optimize(FakeApp("Answer {q}", polite_model), train, metric=metric, valset=VAL,
                         engine=engine(), candidates=2, batch_size=4,
                         store=store_path.replace(".db", "-ref.db"), progress=False)
    assert [(s.step, s.accepted, s.score) for s in resumed.history] == [
        (s.step, s.accepted, s.score) for s in reference.history]
    assert fresh.template == "Please answer {q}" and resumed.best_score == 1.0


def test_candidate_proposals_never_queue_on_the_engine_together(store_path):
    """k proposals one after another: on a one-at-a-time model, gathered calls spent their
    deadline waiting in line."""
    fake = engine()
    fake.hold_until(2)  # a call waits for a second one: gathered proposals would meet here
    fake.hold_timeout = 0.05  # (alone, it goes on after this; no assertion on time)
    optimize(FakeApp("Answer {q}", polite_model), TRAIN, metric=metric, valset=VAL, engine=fake,
             candidates=4, batch_size=1, epochs=1, store=store_path, progress=False)
    # batch 1: one feedback call per step, alone; only proposals could overlap
    assert len(update_calls(fake)) >= 4 and fake.max_in_flight == 1
