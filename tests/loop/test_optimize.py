from __future__ import annotations

import pytest

import tg_bridge
from tests.loop.helpers import improving_engine, metric, polite_model
from tg_bridge.exceptions import UsageError
from tg_bridge.loop import Example, OptimizationResult, aoptimize, optimize
from tg_bridge.store import RunStore
from tg_bridge.testing import FakeApp

TRAIN = [({"q": w}, w.upper()) for w in ("apple", "pear", "fig", "kiwi")]


def test_score_improves_only_through_real_write_back(store_path):
    app = FakeApp("Answer {q}", polite_model)
    engine = improving_engine(lambda old: "Please answer {q}")
    result = optimize(app, TRAIN, metric=metric, engine=engine, batch_size=2, store=store_path,
                      progress=False)
    assert isinstance(result, OptimizationResult)
    assert result.baseline_score == 0.0
    assert result.best_score == 1.0
    assert app.template == "Please answer {q}"  # written into the live app
    assert app.invoke({"q": "plum"}) == "Certainly! PLUM"
    assert [(c.target, c.old, c.new) for c in result.best_patch.changes] == [
        ("fake:fake/template", "Answer {q}", "Please answer {q}")]
    assert result.history[0].accepted and result.history[0].score == 1.0
    assert result.history[0].gradients["fake:fake/template"]
    assert result.usage["backward"]["calls"] >= 1 and result.usage["update"]["calls"] >= 1
    assert "fake:fake/template" in RunStore(store_path).get_run(result.run_id).originals
    assert "score 0 -> 1" in str(result)
    assert "<svg" in result._repr_html_()


def test_worse_candidate_is_reverted_and_recorded(store_path):
    app = FakeApp("Please answer {q}", polite_model)
    engine = improving_engine(lambda old: "Answer {q}")  # drops "please": scores 0
    result = optimize(app, TRAIN, metric=lambda ex, out: float(out.startswith("Certainly")),
                      engine=engine, batch_size=4, store=store_path, progress=False)
    assert app.template == "Please answer {q}"
    step = result.history[0]
    assert not step.accepted and step.score == 0.0 and step.before == 1.0
    assert [c.new for c in step.candidate.changes] == ["Answer {q}"]
    assert step.reason == "score dropped (1 -> 0)"
    assert len(result.best_patch.changes) == 0 and result.best_score == 1.0


def test_valset_gates_and_in_place_false_leaves_original(store_path):
    app = FakeApp("Answer {q}", polite_model)
    engine = improving_engine(lambda old: "Please answer {q}")
    val = [Example({"q": "lime"}, "LIME"), {"inputs": {"q": "date"}, "expected": "DATE"}]
    result = optimize(app, TRAIN[:2], metric=metric, valset=val, engine=engine,
                      in_place=False, store=store_path, progress=False)
    assert app.template == "Answer {q}"  # untouched
    assert result.target is not app and result.target.template == "Please answer {q}"
    assert result.baseline_score == 0.0 and result.best_score == 1.0
    assert app.calls == 0  # the original never ran


async def test_async_api_and_concurrent_batch(store_path):
    app = FakeApp("Answer {q}", polite_model)
    engine = improving_engine(lambda old: "Please answer {q}")
    result = await aoptimize(app, TRAIN, metric=metric, engine=engine, batch_size=4,
                             epochs=2, store=store_path, progress=False)
    assert [s.step for s in result.history] == [1, 2]
    # epoch 2 has nothing to learn: feedback is positive, the candidate equals the value
    assert result.best_score == 1.0


def test_bad_arguments(store_path):
    app = FakeApp("Answer {q}", polite_model)
    with pytest.raises(UsageError):
        optimize(app, TRAIN, store=store_path)  # neither metric nor judge
    with pytest.raises(UsageError):
        optimize(app, [{"q": "x"}], metric=metric, store=store_path)
    with pytest.raises(UsageError):
        optimize(app, [], metric=metric, store=store_path)
    with pytest.raises(UsageError):
        optimize(app, TRAIN, metric=metric, mode="sideways", store=store_path)
    with pytest.raises(UsageError):
        optimize(app, TRAIN, metric=metric, batch_size=0, store=store_path)
    with pytest.raises(UsageError):
        optimize(object(), TRAIN, metric=metric, store=store_path)
    with pytest.raises(UsageError):
        optimize(app, TRAIN, metric=lambda e, o: "great", engine=improving_engine(str),
                 store=store_path, progress=False)


def test_public_reexports():
    assert tg_bridge.optimize is optimize
    assert tg_bridge.OptimizationResult is OptimizationResult


def test_judge_scores_gate_the_candidate(store_path):
    """No metric: the judge instruction both writes the loss and rates outputs 0..1."""
    from tg_bridge.testing import FakeEngine

    def respond(messages, fmt):
        props = fmt.get("properties", {}) if isinstance(fmt, dict) else {}
        prompt = messages[-1]["content"]
        if "improved_value" in props:
            return {"improved_value": "Please answer {q}"}
        if "score" in props:  # the judge's rating of one output, with its critique
            if "Certainly!" in prompt:
                return {"score": 1.0, "critique": ""}
            return {"score": 0.0, "critique": "CRITIQUE: curt; answer with a polite full sentence."}
        return "Make the prompt ask for politeness."

    engine = FakeEngine(respond)
    app = FakeApp("Answer {q}", polite_model)
    result = optimize(app, TRAIN[:2], judge="Is the answer polite?", engine=engine,
                      store=store_path, progress=False)
    assert result.baseline_score == 0.0 and result.best_score == 1.0
    assert app.template == "Please answer {q}"
    # the judge instruction reached the rating calls
    assert sum("Is the answer polite?" in p for p in engine.prompts()) >= 4
    # the judge's critique is the loss: it reached the backward calls, with no second judge call
    assert any("CRITIQUE: curt" in p for p in engine.prompts() if "Is the answer polite?" not in p)
    step = result.history[0]
    assert step.usage["backward"]["calls"] == 2  # one edge per run (prompt <- output), 2 runs
