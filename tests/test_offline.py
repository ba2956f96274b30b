from __future__ import annotations

import json

import pytest

import tg_bridge
import tg_bridge.engines
from tests.support.otlp import record_calls
from tg_bridge.cli import main
from tg_bridge.exceptions import UsageError
from tg_bridge.offline import normalize_trace_id, read_feedback
from tg_bridge.patching.patch import Patch
from tg_bridge.testing import FakeApp, FakeEngine
from tg_bridge.traces import read_spans

NEW = "Please answer {q}"


def _respond(messages, fmt):
    if isinstance(fmt, dict) and "improved_value" in fmt.get("properties", {}):
        return {"improved_value": NEW}
    return "Ask politely; users want full answers."


@pytest.fixture(autouse=True)
def fake_adapter(fake_app_adapter):
    """Every test here runs against FakeApp through the fake adapter (root conftest)."""


@pytest.fixture
def fake_engine(monkeypatch):
    """An engine spec registered by the test only: --engine fake:test."""
    engine = FakeEngine(_respond)
    real = tg_bridge.engines.engine

    def pick(spec=None, **kw):
        return engine if spec == "fake:test" else real(spec, **kw)

    monkeypatch.setattr(tg_bridge.engines, "engine", pick)
    return engine


@pytest.fixture
def production(tmp_path):
    """Two production calls of a FakeApp exported as an OTLP JSON file, plus feedback."""
    app = FakeApp("Answer {q}", lambda p: p.rsplit(" ", 1)[-1], name="prod")
    traces = tmp_path / "prod.otlp.json"
    trace_ids = record_calls(app, [{"q": q} for q in ("fig", "yam", "kiwi")], traces)
    feedback = tmp_path / "feedback.jsonl"
    feedback.write_text(
        json.dumps({"trace_id": trace_ids[0], "score": 0, "text": "Rude one-word answer."}) + "\n"
        + "\n"
        + json.dumps({"trace_id": trace_ids[1], "score": 0.2}) + "\n"
        + json.dumps({"trace_id": "0" * 32, "text": "about a trace we do not have"}) + "\n"
    )
    return traces, feedback, trace_ids


def test_cli_optimize_writes_a_patch_that_applies_at_deploy_time(tmp_path, production,
                                                                 fake_engine, capsys):
    traces, feedback, _ = production
    out = tmp_path / "out" / "patch.json"
    code = main(["optimize", "--traces", str(traces), "--feedback", str(feedback),
                 "--engine", "fake:test", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert "1 change(s) from 2 trace(s)" in capsys.readouterr().out
    patch = Patch.from_json(out.read_text())
    [change] = patch.changes
    assert change.old == "Answer {q}" and change.new == NEW
    # the user's words were the loss
    assert any("Rude one-word answer." in p for p in fake_engine.prompts())
    # deploy: same prompt under the same binding key
    same = FakeApp("Answer {q}", str, name="prod")
    tg_bridge.apply_patch(same, str(out))
    assert same.template == NEW
    # deploy: another object, another key, same text -> matched by identity (content hash)
    other = FakeApp("Answer {q}", str, name="renamed")
    applied = tg_bridge.apply_patch(other, str(out))
    assert other.template == NEW
    applied.revert()
    assert other.template == "Answer {q}"


def test_only_the_traces_with_feedback_are_rebuilt(production, fake_engine, monkeypatch):
    """Reading a trace is cheap, rebuilding it is not: 3 traces, feedback on 2 -> 2 rebuilt,
    the same proposal as before."""
    import tg_bridge.reconstruction as reconstruction

    traces, feedback, trace_ids = production
    rebuilt = []
    real = reconstruction.reconstruct

    def counting(spans, **kwargs):
        rebuilt.append(spans[0].trace_id)
        return real(spans, **kwargs)

    monkeypatch.setattr(reconstruction, "reconstruct", counting)
    result = tg_bridge.offline.optimize_traces(traces, feedback, engine="fake:test")
    assert rebuilt == trace_ids[:2]
    assert [c.new for c in result.patch.changes] == [NEW]
    assert result.patch.metadata["traces"] == 3 and result.used == 2


def test_cli_show_patch_and_json(tmp_path, production, fake_engine, capsys):
    traces, feedback, _ = production
    out = tmp_path / "patch.json"
    assert main(["optimize", "--traces", str(traces), "--feedback", str(feedback),
                 "--engine", "fake:test", "--out", str(out), "--mode", "fused", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["traces_used"] == 2 and len(summary["changes"]) == 1
    assert main(["show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "-Answer {q}" in shown and "+Please answer {q}" in shown


def test_cli_bad_input_is_one_line_exit_2(tmp_path, production, capsys):
    traces, _, _ = production
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"trace_id": "xyz", "score": 1}\n')
    code = main(["optimize", "--traces", str(traces), "--feedback", str(bad),
                 "--engine", "fake:test", "--out", str(tmp_path / "p.json")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "bad.jsonl:1" in err
    assert main(["optimize", "--traces", "missing.json", "--feedback", str(bad),
                 "--out", "p.json"]) == 2
    assert main(["show", "no-such-run", "--store", str(tmp_path / "none.db")]) == 2
    assert not (tmp_path / "p.json").exists()


def test_feedback_without_matching_traces_is_usage_error(tmp_path, production, fake_engine):
    traces, _, _ = production
    fb = tmp_path / "fb.jsonl"
    fb.write_text(json.dumps({"trace_id": "ab" * 16, "score": 1}) + "\n")
    from tg_bridge.offline import optimize_traces

    with pytest.raises(UsageError, match="no trace"):
        optimize_traces(traces, fb, engine=fake_engine)


def test_read_feedback_and_trace_ids(tmp_path):
    import base64

    raw = bytes(range(16))
    assert normalize_trace_id(base64.b64encode(raw).decode()) == raw.hex()
    assert normalize_trace_id(raw.hex().upper()) == raw.hex()
    with pytest.raises(UsageError):
        normalize_trace_id("nope")
    path = tmp_path / "f.jsonl"
    path.write_text(f'{{"trace_id": "{raw.hex()}", "text": "bad"}}\n{{"trace_id": "{raw.hex()}"}}\n')
    with pytest.raises(UsageError, match="f.jsonl:2"):
        read_feedback(path)


def test_openinference_fixture_offline(tmp_path, fake_engine):
    """Real OpenInference spans of a LangChain RAG app: every parameter is named by identity."""
    from pathlib import Path

    from tg_bridge.offline import optimize_traces

    fixture = Path(__file__).parent / "fixtures" / "oi_langchain_rag.jsonl"
    if not fixture.exists():
        pytest.skip("OpenInference fixture not available")
    trace_id = read_spans(fixture)[0].trace_id
    fb = tmp_path / "fb.jsonl"
    fb.write_text(json.dumps({"trace_id": trace_id, "score": 0, "text": "Wrong answer."}) + "\n")
    def respond(messages, fmt):
        if isinstance(fmt, dict) and "improved_value" in fmt.get("properties", {}):
            return {"improved_value": _same_placeholders(messages[-1]["content"])}
        return "Be more specific."

    engine = FakeEngine(respond)
    result = optimize_traces(fixture, fb, engine=engine)
    assert result.used == 1
    assert result.patch.changes
    for change in result.patch.changes:
        assert "#" in change.target  # name#hash identity: matchable at deploy time
        assert change.new.startswith("Improved: ")


def _same_placeholders(prompt: str) -> str:
    # echo the current value back with a prefix, so every placeholder is kept
    import re

    match = re.search(r"<current_value>\n(.*?)\n</current_value>", prompt, re.DOTALL)
    current = match.group(1) if match else ""
    return "Improved: " + current


@pytest.fixture
def step_calls(monkeypatch):
    """Every backward pass and TGD proposal made, each with whether it ran inside the shared
    step code (:class:`tg_bridge.loop.descent.Descent`). A path that calls ``abackward`` or
    builds its own ``TGD`` shows up here as ``(phase, False)``."""
    import contextvars

    from tg_bridge.autograd import schedule
    from tg_bridge.loop.descent import Descent
    from tg_bridge.optim.tgd import TGD

    inside = contextvars.ContextVar("inside_descent", default=False)
    calls: list[tuple[str, bool]] = []

    def through_descent(name):
        real = getattr(Descent, name)

        async def wrapped(self, *args, **kwargs):
            token = inside.set(True)
            try:
                return await real(self, *args, **kwargs)
            finally:
                inside.reset(token)

        monkeypatch.setattr(Descent, name, wrapped)

    through_descent("backward")
    through_descent("propose")
    real_apropose, real_caller = TGD.apropose, schedule.Caller

    async def apropose(self, *args, **kwargs):
        calls.append(("update", inside.get()))
        return await real_apropose(self, *args, **kwargs)

    def caller(*args, **kwargs):  # abackward builds exactly one Caller per pass
        calls.append(("backward", inside.get()))
        return real_caller(*args, **kwargs)

    monkeypatch.setattr(TGD, "apropose", apropose)
    monkeypatch.setattr(schedule, "Caller", caller)
    return calls


def test_live_and_offline_optimization_run_the_same_step_code(tmp_path, production, fake_engine,
                                                              step_calls):
    """The live loop's step, the CLI's offline optimization and ``optimize_from_feedback``
    all backpropagate and propose through loop.descent.Descent, never around it: a fix made
    there (copy guard, label-leak refusal, placeholder rule, minimal edits) reaches all."""
    traces, feedback, _ = production
    assert main(["optimize", "--traces", str(traces), "--feedback", str(feedback),
                 "--engine", "fake:test", "--out", str(tmp_path / "patch.json")]) == 0
    assert step_calls == [("backward", True), ("update", True)]

    step_calls.clear()
    app = FakeApp("Answer {q}", lambda p: "Certainly!" if "Please" in p else p)
    result = tg_bridge.optimize(app, [({"q": "fig"}, "x")], metric=_certain, engine=fake_engine,
                                store=str(tmp_path / "runs.db"), progress=False)
    assert result.history[0].accepted and app.template == NEW
    assert step_calls == [("backward", True), ("update", True)]

    step_calls.clear()
    app = FakeApp("Answer {q}", str)

    @tg_bridge.optimizable(store=str(tmp_path / "r.db"))
    def answer(q):
        return app.invoke({"q": q})

    answer("fig")
    answer.feedback(answer.last_run_id(), score=0, text="Be polite.")
    answer.optimize_from_feedback(engine=fake_engine)
    assert app.template == NEW
    assert step_calls == [("backward", True), ("update", True)]


def _certain(example, output):
    return (1.0, "good") if output == "Certainly!" else (0.0, "Start with 'Certainly!'.")
