"""optimize(callbacks=[...]): observers see each committed step in order and the result; an
observer that raises never stops the run."""

from __future__ import annotations

import logging

import pytest

from tests.loop.helpers import improving_engine, metric, polite_model
from tg_bridge.exceptions import UsageError
from tg_bridge.loop import optimize
from tg_bridge.testing import FakeApp

TRAIN = [({"q": w}, w.upper()) for w in ("apple", "pear", "fig", "kiwi")]


class Recorder:
    def __init__(self):
        self.events = []

    def on_step(self, step, *, run_id, current):
        self.events.append(("step", run_id, step.step, step.accepted, current))

    def on_end(self, result):
        self.events.append(("end", result.run_id))


class Broken:
    def on_step(self, step, **_):
        raise RuntimeError("observer down")


def test_callbacks_see_every_step_then_the_result(tmp_path, caplog):
    recorder = Recorder()
    app = FakeApp("Answer {q}", polite_model)
    with caplog.at_level(logging.ERROR, logger="tg_bridge"):
        result = optimize(app, TRAIN, metric=metric, batch_size=2, progress=False,
                          engine=improving_engine(lambda old: "Please answer {q}"),
                          store=tmp_path / "runs.db", callbacks=[Broken(), recorder])
    steps = [e for e in recorder.events if e[0] == "step"]
    assert [(e[2], e[3]) for e in steps] == [(s.step, s.accepted) for s in result.history]
    assert all(e[1] == result.run_id for e in steps)
    assert [e[4] for e in steps] == [None] * len(steps)  # no valset: judged per batch
    assert recorder.events[-1] == ("end", result.run_id)
    assert app.template == "Please answer {q}"  # the broken observer did not stop the run
    assert "observer down" in caplog.text


def test_with_a_valset_current_is_the_score_the_run_holds(tmp_path):
    recorder = Recorder()
    optimize(FakeApp("Answer {q}", polite_model), TRAIN[:2], valset=TRAIN[2:], metric=metric,
             batch_size=1, progress=False, store=tmp_path / "runs.db", callbacks=recorder,
             engine=improving_engine([lambda old: "Please answer {q}", lambda old: "Answer {q}"]))
    steps = [(e[2], e[3], e[4]) for e in recorder.events if e[0] == "step"]
    assert steps == [(1, True, 1.0), (2, False, 1.0)]  # the second candidate lost: still 1.0


def test_a_callback_without_any_event_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="callback"):
        optimize(FakeApp("Answer {q}", polite_model), TRAIN, metric=metric, progress=False,
                 engine=improving_engine(lambda old: old), store=tmp_path / "runs.db",
                 callbacks=[object()])


def test_the_final_check_that_restores_the_originals_is_a_step_too(tmp_path):
    from tg_bridge.loop.batching import plan_steps

    first = plan_steps(len(TRAIN), batch_size=2, epochs=1, seed=0)[0].batch
    helped = {TRAIN[i][0]["q"] for i in first}

    def model(prompt: str) -> str:  # "please" fixes the first batch and breaks the others
        word = prompt.rsplit(" ", 1)[-1]
        return f"Certainly! {word.upper()}" if ("please" in prompt.lower()) == (
            word in helped) else word

    recorder = Recorder()
    result = optimize(FakeApp("Answer {q}", model), TRAIN, metric=metric, batch_size=2,
                      progress=False, store=tmp_path / "runs.db", callbacks=[recorder],
                      engine=improving_engine(lambda old: "Please answer {q}"))
    last = [e for e in recorder.events if e[0] == "step"][-1]
    assert result.history[-1].epoch == -1
    assert last[2:] == (result.history[-1].step, False, result.best_score)
