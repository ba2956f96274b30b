"""``optimize(judge=...)`` and ``TextLoss`` default to the same engine: the backward one.

A judge is a critic, like the model writing the gradients: TextGrad's TextLoss defaults to
its backward engine, and so do ours (issue 15: the judge used to take the forward engine).
"""

from __future__ import annotations

import pytest

import tg_bridge
from tests.loop.helpers import polite_model
from tg_bridge.losses import TextLoss
from tg_bridge.testing import FakeApp, FakeEngine
from tg_bridge.variable import Variable

TRAIN = [({"q": w}, w.upper()) for w in ("apple", "pear")]


def _critic(messages, fmt):
    props = fmt.get("properties", {}) if isinstance(fmt, dict) else {}
    if "improved_value" in props:
        return {"improved_value": "Please answer {q}"}
    if "score" in props:
        return {"score": 1.0 if "Certainly" in messages[-1]["content"] else 0.0,
                "critique": "Ask politely."}
    return "Ask politely."


def _judged(engine):
    return [m for m, fmt in ((c[0], c[1]) for c in engine.calls)
            if isinstance(fmt, dict) and "score" in fmt.get("properties", {})]


@pytest.mark.parametrize("how", ["configured", "arguments"])
def test_the_judge_of_optimize_is_the_backward_engine(tmp_path, how):
    forward = FakeEngine(_critic, id="forward")
    backward = FakeEngine(_critic, id="backward")
    kwargs = {}
    if how == "configured":
        tg_bridge.configure(engine=forward, backward_engine=backward)
    else:
        kwargs = {"engine": forward, "backward_engine": backward}
    app = FakeApp("Answer {q}", polite_model)
    result = tg_bridge.optimize(app, TRAIN, judge="Is the answer polite?", batch_size=2,
                                store=str(tmp_path / "r.db"), progress=False, **kwargs)
    assert result.best_score == 1.0 and app.template == "Please answer {q}"
    assert len(_judged(backward)) >= 4  # baseline and candidate outputs, all rated here
    assert forward.call_count == 0


def test_text_loss_defaults_to_the_same_engine_as_the_judge():
    forward = FakeEngine(["forward verdict"], id="forward")
    backward = FakeEngine(["backward verdict"], id="backward")
    tg_bridge.configure(engine=forward, backward_engine=backward)
    loss = TextLoss("Is it polite?")(Variable("hi", role="answer"))
    assert loss.value == "backward verdict" and forward.call_count == 0
