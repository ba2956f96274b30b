"""Each entry point resolves each engine role once and passes the Engine down (issue 15).

A spec resolved twice builds two engines (two connection pools, two learned structured-output
modes); before this, one ``optimize()`` of two steps resolved the engine five times. The
``resolutions`` fixture counts every call of ``resolve_engine``, under every name a tg_bridge
module bound it to, so a layer that starts resolving again fails these tests.
"""

from __future__ import annotations

import json
import sys

import pytest

import tg_bridge
import tg_bridge.engines
from tg_bridge.capturing import capture
from tg_bridge.cli import main
from tg_bridge.testing import FakeApp, FakeEngine

NEW = "Please answer {q}"
TRAIN = [({"q": w}, w) for w in ("apple", "pear", "fig", "kiwi")]


def _respond(messages, fmt):
    props = fmt.get("properties", {}) if isinstance(fmt, dict) else {}
    if "improved_value" in props:
        return {"improved_value": NEW}
    if "score" in props:  # a judge's rating
        return {"score": 0.0, "critique": "Ask politely."}
    return "Ask politely; users want full answers."


@pytest.fixture(autouse=True)
def fake_adapter(fake_app_adapter):
    """FakeApp is an adapter-owned target here (root conftest)."""


@pytest.fixture
def fake_engine(monkeypatch):
    """``"fake:test"`` builds this engine (a spec string, as users pass them)."""
    engine = FakeEngine(_respond, id="fake")
    real = tg_bridge.engines.engine

    def build(spec=None, **kw):
        return engine if spec == "fake:test" else real(spec, **kw)

    monkeypatch.setattr(tg_bridge.engines, "engine", build)
    return engine


@pytest.fixture
def resolutions(monkeypatch):
    """Every ``resolve_engine`` call: "backward" or "forward" (its ``backward=`` flag)."""
    real = tg_bridge.engines.resolve_engine
    seen: list[str] = []

    def counting(value=None, *, backward=False):
        seen.append("backward" if backward else "forward")
        return real(value, backward=backward)

    for name, module in list(sys.modules.items()):
        if name.startswith("tg_bridge") and getattr(module, "resolve_engine", None) is real:
            monkeypatch.setattr(module, "resolve_engine", counting)
    return seen


def _app(name="fake"):
    return FakeApp("Answer {q}", lambda p: "Certainly!" if "Please" in p else p, name=name)


def _metric(example, output):
    return (1.0, "good") if output == "Certainly!" else (0.0, "Start with 'Certainly!'.")


def test_optimize_resolves_the_backward_engine_once(tmp_path, fake_engine, resolutions):
    result = tg_bridge.optimize(_app(), TRAIN, metric=_metric, engine="fake:test", batch_size=2,
                                epochs=2, store=str(tmp_path / "r.db"), progress=False)
    assert len(result.history) >= 2 and result.usage["backward"]["calls"] >= 1
    assert resolutions == ["backward"]


def test_optimize_with_a_judge_resolves_once_for_both_roles(tmp_path, resolutions):
    tg_bridge.configure(engine=FakeEngine(_respond, id="configured"))
    result = tg_bridge.optimize(_app(), TRAIN[:2], judge="Is it polite?", batch_size=2,
                                store=str(tmp_path / "r.db"), progress=False)
    assert result.history
    assert resolutions == ["backward"]  # the judge uses the backward engine: no second role


def test_cli_optimize_resolves_once(tmp_path, fake_engine, resolutions):
    traces, feedback = _production(tmp_path)
    assert main(["optimize", "--traces", str(traces), "--feedback", str(feedback),
                 "--engine", "fake:test", "--out", str(tmp_path / "p.json")]) == 0
    assert fake_engine.call_count >= 2  # backward and update both ran, on this engine
    assert resolutions == ["backward"]


def test_cli_optimize_with_the_configured_engine_resolves_once(tmp_path, resolutions):
    engine = FakeEngine(_respond, id="configured")
    tg_bridge.configure(backward_engine=engine)
    traces, feedback = _production(tmp_path)
    assert main(["optimize", "--traces", str(traces), "--feedback", str(feedback),
                 "--out", str(tmp_path / "p.json"), "--mode", "fused"]) == 0
    assert engine.call_count >= 2
    assert resolutions == ["backward"]


def test_offline_api_resolves_once(tmp_path, fake_engine, resolutions):
    from tg_bridge.offline import optimize_traces

    traces, feedback = _production(tmp_path)
    result = optimize_traces(traces, feedback, engine="fake:test")
    assert result.patch.changes and fake_engine.call_count >= 2
    assert resolutions == ["backward"]


def test_optimize_from_feedback_resolves_once(tmp_path, fake_engine, resolutions):
    app = _app()

    @tg_bridge.optimizable(store=str(tmp_path / "r.db"))
    def answer(q):
        return app.invoke({"q": q})

    answer("fig")
    answer.feedback(answer.last_run_id(), score=0, text="Be polite.")
    answer.optimize_from_feedback(engine="fake:test")
    assert app.template == NEW
    assert resolutions == ["backward"]


def test_refine_resolves_once(fake_engine, resolutions):
    result = tg_bridge.refine(lambda q: "3", "How many?", steps=2, engine="fake:test")
    assert len(result.history) == 3
    assert resolutions == ["backward"]


def _production(tmp_path):
    """A trace file of two FakeApp calls and feedback on both."""
    from tests.support.otlp import otlp_line as _otlp_line

    app = _app("prod")
    lines, ids = [], []
    for q in ("fig", "yam"):
        with capture() as run:
            app.invoke({"q": q})
        lines.append(_otlp_line(run.spans))
        ids.append(run.spans[0].trace_id)
    traces = tmp_path / "prod.otlp.json"
    traces.write_text("\n".join(lines) + "\n")
    feedback = tmp_path / "feedback.jsonl"
    feedback.write_text("".join(json.dumps({"trace_id": i, "score": 0, "text": "Rude."}) + "\n"
                                for i in ids))
    return traces, feedback
