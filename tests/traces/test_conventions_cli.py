"""The CLI says what reconstruction could not use: ``tg-bridge graph`` prints skipped spans by
reason, and ``tg-bridge optimize`` that has nothing to change exits non-zero with one line."""

from __future__ import annotations

import json
import pathlib

import pytest

import tg_bridge.engines
from tg_bridge.cli import main
from tg_bridge.testing import FakeEngine

CONVENTIONS = (
    pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "conventions"
)


def test_graph_prints_skipped_spans_by_reason(capsys):
    assert main(["graph", str(CONVENTIONS / "langfuse_sdk.otlp.json")]) == 0
    out = capsys.readouterr().out
    assert "== skipped spans: 1 (1 tool span without a result)" in out
    assert (
        main(["graph", "--json", str(CONVENTIONS / "beeai_start_success.otlp.json")])
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert [t["metadata"]["skipped_by_reason"] for t in doc["traces"]] == [
        {},
        {"llm_without_output": 1},
    ]
    assert len(doc["parameters"]) == 2


def _attr(key, value):
    return {"key": key, "value": {"stringValue": value}}


def _trace_file(path: pathlib.Path) -> tuple[str, str]:
    """Trace A uses a system prompt (no feedback); trace B's LLM call used no prompt at all."""

    def span(trace, sid, parent, name, start, attrs):
        return {
            "traceId": trace,
            "spanId": sid,
            "parentSpanId": parent or "",
            "name": name,
            "kind": 1,
            "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(start + 10),
            "attributes": [_attr(k, v) for k, v in attrs.items()],
        }

    a, b = "a" * 32, "b" * 32
    llm = {"openinference.span.kind": "LLM"}
    spans = [
        span(
            a,
            "a" * 16,
            None,
            "chat",
            1,
            {
                **llm,
                "llm.input_messages.0.message.role": "system",
                "llm.input_messages.0.message.content": "Be kind.",
                "llm.input_messages.1.message.role": "user",
                "llm.input_messages.1.message.content": "hi",
                "llm.output_messages.0.message.content": "hello!",
            },
        ),
        span(
            b,
            "b" * 16,
            None,
            "chat",
            2,
            {
                **llm,
                "llm.input_messages.0.message.role": "user",
                "llm.input_messages.0.message.content": "2+2?",
                "llm.output_messages.0.message.content": "5",
            },
        ),
    ]
    doc = {
        "resourceSpans": [
            {"resource": {}, "scopeSpans": [{"scope": {"name": "t"}, "spans": spans}]}
        ]
    }
    path.write_text(json.dumps(doc), encoding="utf-8")
    return a, b


@pytest.fixture
def fake_engine(monkeypatch):
    """--engine fake:test, registered by the test only; it would propose a change if asked."""
    engine = FakeEngine(
        lambda messages, fmt: (
            {"improved_value": "Be very kind."}
            if isinstance(fmt, dict) and "improved_value" in fmt.get("properties", {})
            else "wrong"
        )
    )
    real = tg_bridge.engines.engine
    monkeypatch.setattr(
        tg_bridge.engines,
        "engine",
        lambda spec=None, **kw: engine if spec == "fake:test" else real(spec, **kw),
    )
    return engine


def test_optimize_with_nothing_to_change_exits_1_with_one_line(
    tmp_path, fake_engine, capsys
):
    traces = tmp_path / "traces.json"
    _, b = _trace_file(traces)
    feedback = tmp_path / "feedback.jsonl"
    feedback.write_text(
        json.dumps({"trace_id": b, "score": 0.0, "text": "2+2 is 4"}) + "\n",
        encoding="utf-8",
    )
    out = tmp_path / "patch.json"
    code = main(
        [
            "optimize",
            "--traces",
            str(traces),
            "--feedback",
            str(feedback),
            "--engine",
            "fake:test",
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert (
        err.count("\n") == 1
        and "nothing to change" in err
        and "the 1 trace(s) with feedback hold no prompt" in err
    )
    assert not out.exists()  # no empty patch that could pass for a result


def test_feedback_on_a_trace_whose_llm_call_has_no_output_is_not_put_on_the_prompt(
    tmp_path, fake_engine, capsys
):
    """BeeAI trace 2: the call failed, its prompt is kept as a parameter; feedback about that
    run has no output to land on and must not be applied to the prompt itself."""
    feedback = tmp_path / "feedback.jsonl"
    feedback.write_text(
        json.dumps({"trace_id": "b" + "0" * 30 + "2", "score": 0.0}) + "\n",
        encoding="utf-8",
    )
    code = main(
        [
            "optimize",
            "--traces",
            str(CONVENTIONS / "beeai_start_success.otlp.json"),
            "--feedback",
            str(feedback),
            "--engine",
            "fake:test",
            "--out",
            str(tmp_path / "p.json"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "no run with feedback" in err
    assert fake_engine.prompts() == []
