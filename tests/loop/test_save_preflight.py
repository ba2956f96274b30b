"""Save and reapply (issue 17.1), the preflight check and the final outcome line (17.5)."""

from __future__ import annotations

import pytest

import tg_bridge
import tg_bridge.adapters
from tg_bridge.exceptions import PatchValidationError, StoreError, UsageError
from tg_bridge.loop.result import OptimizationResult
from tg_bridge.patching.patch import Patch
from tg_bridge.testing import FakeApp, FakeAppAdapter, FakeEngine


@pytest.fixture(autouse=True)
def fake_adapter(fake_app_adapter):
    """FakeApp is owned by the fake adapter (root conftest)."""


def polite(prompt: str) -> str:
    word = prompt.rsplit(" ", 1)[-1]
    return f"Certainly! {word.upper()}" if "please" in prompt.lower() else word


def respond(messages, fmt):
    if isinstance(fmt, dict) and "improved_value" in fmt.get("properties", {}):
        return {"improved_value": "Please answer {q}"}
    return "Ask politely."


TRAIN = [({"q": "fig"}, "FIG"), ({"q": "yam"}, "YAM")]


def metric(example, output):
    return float(output == f"Certainly! {example.expected}")


def optimized(tmp_path, **kw):
    app = FakeApp("Answer {q}", polite)
    result = tg_bridge.optimize(app, TRAIN, metric=metric, engine=FakeEngine(respond),
                                store=str(tmp_path / "runs.db"), **kw)
    return app, result


# -- save / load ---------------------------------------------------------------------------------

def test_result_save_load_round_trip(tmp_path):
    app, result = optimized(tmp_path, progress=False)
    assert result.best_score == 1.0 and app.template == "Please answer {q}"
    path = result.save(tmp_path / "out" / "result.json")
    loaded = OptimizationResult.load(path)
    assert loaded.target is None
    for name in ("run_id", "baseline_score", "best_score", "usage", "store_path"):
        assert getattr(loaded, name) == getattr(result, name), name
    assert loaded.best_patch.to_json() == result.best_patch.to_json()
    assert [(s.step, s.accepted, s.score, s.reason) for s in loaded.history] == [
        (s.step, s.accepted, s.score, s.reason) for s in result.history]
    assert str(loaded) == str(result)
    # the loaded best patch applies to a fresh app and reverts byte for byte
    fresh = FakeApp("Answer {q}", polite)
    applied = tg_bridge.apply_patch(fresh, loaded.best_patch)
    assert fresh.template == "Please answer {q}"
    applied.revert()
    assert fresh.template == "Answer {q}"


def test_patch_save_load_and_apply_by_run_id(tmp_path):
    _, result = optimized(tmp_path, progress=False)
    path = result.best_patch.save(tmp_path / "patch.json")
    assert Patch.load(path).to_json() == result.best_patch.to_json()
    fresh = FakeApp("Answer {q}", polite)
    applied = tg_bridge.apply_patch(fresh, run_id=result.run_id, store=str(tmp_path / "runs.db"))
    assert fresh.template == "Please answer {q}" and applied.applied
    applied.revert()
    assert fresh.template == "Answer {q}"
    with pytest.raises(StoreError, match="no run"):
        tg_bridge.apply_patch(fresh, run_id="nope", store=str(tmp_path / "runs.db"))
    with pytest.raises(UsageError, match="not both or neither"):
        tg_bridge.apply_patch(fresh)
    with pytest.raises(UsageError, match="not both or neither"):
        tg_bridge.apply_patch(fresh, path, run_id=result.run_id)
    assert fresh.template == "Answer {q}"


@pytest.mark.parametrize("name, data, fragment", [
    ("latin1.json", '{"schema": "tg_bridge.result", "run_id": "caf\xe9"}'.encode("latin-1"),
     "not UTF-8"),
    ("deep.json", b"[" * 50_000 + b"]" * 50_000, "nested too deeply"),
    ("not_result.json", b'{"schema": "other"}', "not a tg_bridge.result file"),
    ("nan.json", (b'{"schema": "tg_bridge.result", "version": 1, "run_id": "r",'
                  b' "baseline_score": NaN}'), "baseline_score must be a finite number"),
    ("inf.json", (b'{"schema": "tg_bridge.result", "version": 1, "run_id": "r",'
                  b' "best_score": 1e400}'), "best_score must be a finite number"),
    ("types.json", b'{"schema": "tg_bridge.result", "version": 1, "run_id": 5}',
     "run_id must be a string"),
    ("step.json", (b'{"schema": "tg_bridge.result", "version": 1, "run_id": "r",'
                   b' "history": [{"step": "1"}]}'), "history[0].step must be an integer"),
    ("patch.json", (b'{"schema": "tg_bridge.result", "version": 1, "run_id": "r",'
                    b' "best_patch": {"schema": "nope"}}'), "best_patch"),
])
def test_malformed_result_files_are_usage_errors_naming_the_file(tmp_path, name, data, fragment):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(UsageError) as info:
        OptimizationResult.load(path)
    assert name in str(info.value) and fragment in str(info.value), str(info.value)


def test_malformed_patch_files_are_typed_errors_naming_the_file(tmp_path):
    bad = tmp_path / "latin1.json"
    bad.write_bytes('{"schema": "caf\xe9"}'.encode("latin-1"))
    with pytest.raises(PatchValidationError, match="latin1.json.*not UTF-8"):
        Patch.load(bad)
    deep = tmp_path / "deep.json"
    deep.write_bytes(b"[" * 50_000 + b"]" * 50_000)
    with pytest.raises(PatchValidationError, match="deep.json.*nested too deeply"):
        Patch.load(deep)
    with pytest.raises(UsageError, match="cannot read patch file"):
        Patch.load(tmp_path / "missing.json")


# -- preflight ---------------------------------------------------------------------------------

class NoPromptAdapter(FakeAppAdapter):
    """Owns FakeApp but finds no prompt in it (like a bare RunnableLambda)."""

    def bindings(self, target):
        return []


def test_a_target_without_prompts_fails_before_anything_is_spent(tmp_path, monkeypatch):
    monkeypatch.setattr(tg_bridge.adapters, "load_adapters", lambda: [NoPromptAdapter()])
    calls = []
    app = FakeApp("Answer {q}", lambda prompt: calls.append(prompt) or "x", name="shout")
    engine = FakeEngine(respond)
    with pytest.raises(UsageError) as info:
        tg_bridge.optimize(app, TRAIN, metric=metric, engine=engine,
                           store=str(tmp_path / "runs.db"), progress=False)
    message = str(info.value)
    assert "nothing to optimize" in message and "a FakeApp 'shout'" in message
    assert "found 0 prompt" in message
    assert calls == [] and engine.calls == []  # no baseline example ran, no engine call
    assert not (tmp_path / "runs.db").exists()  # and no run was opened


def test_a_bare_runnable_lambda_fails_before_the_baseline(tmp_path, monkeypatch):
    pytest.importorskip("tg_bridge_langchain")
    from langchain_core.runnables import RunnableLambda
    from tg_bridge_langchain.adapter import LangChainAdapter

    monkeypatch.setattr(tg_bridge.adapters, "load_adapters", lambda: [LangChainAdapter()])
    seen = []
    shout = RunnableLambda(lambda x: seen.append(x) or str(x).upper(), name="shout")
    engine = FakeEngine(respond)
    with pytest.raises(UsageError, match="nothing to optimize: a RunnableLambda 'shout'"):
        tg_bridge.optimize(shout, [({"q": "a"}, "A")], metric=metric, engine=engine,
                           store=str(tmp_path / "runs.db"), progress=False)
    assert seen == [] and engine.calls == []


# -- the outcome line ------------------------------------------------------------------------------

def test_every_run_ends_with_one_line_saying_what_changed(tmp_path, capsys):
    _, result = optimized(tmp_path, progress=True)
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("tg_bridge:")]
    assert len(lines) == 1
    assert "1 prompt(s) changed (score 0 -> 1)" in lines[0] and result.run_id in lines[0]


def test_a_run_that_changes_nothing_says_why(tmp_path, capsys):
    app = FakeApp("Answer {q}", polite)
    never = FakeEngine(lambda m, fmt: {"improved_value": "Answer {q}"}
                       if isinstance(fmt, dict) and "improved_value" in fmt.get("properties", {})
                       else "Be better.")
    result = tg_bridge.optimize(app, TRAIN, metric=metric, engine=never,
                                store=str(tmp_path / "runs.db"), progress=True)
    assert not result.best_patch.changes
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("tg_bridge:")]
    assert len(lines) == 1, lines
    assert lines[0].startswith("tg_bridge: nothing changed (score stays 0):")
    assert "none kept" in lines[0] or "no step ran" in lines[0]
