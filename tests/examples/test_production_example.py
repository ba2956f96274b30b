"""The production-traces example: the committed OTLP file + feedback -> a patch (FakeEngines),
applied at deploy time by prompt identity; the CLI equivalent; the recording script."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

pytest.importorskip("llama_index.core")

import tg_bridge.engines  # noqa: E402
from tests.support.examples import EXAMPLES, QUOTE, load_example, quote_optimizer, quoting_app  # noqa: E402
from tg_bridge.cli import main as cli_main  # noqa: E402
from tg_bridge.offline import read_feedback  # noqa: E402
from tg_bridge.patching.patch import Patch  # noqa: E402
from tg_bridge.reconstruction import load_traces  # noqa: E402
from tg_bridge.testing import FakeEngine  # noqa: E402
from tg_bridge.traces import read_spans  # noqa: E402

DATA = EXAMPLES / "data"
TRACES = DATA / "prod_traces.otlp.jsonl"
FEEDBACK = DATA / "feedback.jsonl"
MARKER = QUOTE


load = load_example


@pytest.fixture(scope="module")
def example() -> Any:
    return load("production_traces", EXAMPLES / "production_traces.py")


@pytest.fixture(scope="module")
def qa_template(example) -> str:
    return sys.modules["llamaindex_query_engine"].QA_TEMPLATE


def optimizer(template: str, updates: list[str]) -> FakeEngine:
    return quote_optimizer(template, updates,
                           "Users want the fact itself: the template should ask to quote it from the context.")


def test_committed_data_is_an_openinference_recording_with_matching_feedback(qa_template):
    spans = read_spans(TRACES)
    graphs = load_traces(TRACES)
    entries = read_feedback(FEEDBACK)
    assert len(graphs) == 10 and entries
    # recorded by OpenInference (no tg_bridge attributes), one root query span per trace
    assert all(not any(k.startswith("tg_bridge.") for k in s.attributes) for s in spans)
    assert any(s.attributes.get("openinference.span.kind") == "LLM" for s in spans)
    assert {g.metadata["root"] for g in graphs} == {"RetrieverQueryEngine.query"}
    ids = {g.metadata["trace_id"] for g in graphs}
    assert all(e.trace_id in ids for e in entries)
    assert any(e.score == 0.0 and e.text for e in entries)
    # the QA template is one identity-named parameter across all traces
    keys = {p.key for g in graphs for p in g.parameters()}
    assert len(keys) == 1 and "#" in next(iter(keys))
    assert {p.value for g in graphs for p in g.parameters()} == {qa_template}


def test_production_example_proposes_and_deploys_by_identity(example, qa_template, tmp_path, capsys):
    updates: list[str] = []
    app = FakeEngine(quoting_app)
    out = tmp_path / "patch.json"
    code = example.main(["--out", str(out)], app_engine=app,
                        backward_engine=optimizer(qa_template, updates))
    text = capsys.readouterr().out
    assert code == 0, text
    assert "traces: 10" in text and "parameters found" in text and "used in 10 trace(s)" in text
    used = len(read_feedback(FEEDBACK))
    assert f"used {used} trace(s) with feedback" in text
    # the update saw the template with its placeholders named (format known from the traces)
    assert updates and qa_template in updates[0] and "{context_str}" in updates[0]
    patch = Patch.from_json(out.read_text(encoding="utf-8"))
    assert len(patch.changes) == 1
    change = patch.changes[0]
    assert change.old == qa_template and change.new == f"{MARKER}\n{qa_template}"
    assert "+" + MARKER in text
    # deploy time: a fresh app got the new template, and its LLM answered with it
    assert "live QA template changed: yes" in text
    assert MARKER in app.calls[-1][0][-1]["content"]
    assert "A: I do not know." not in text


def test_production_example_with_a_proposal_that_loses_a_placeholder(example, tmp_path, capsys):
    def respond(messages, response_format):
        props = response_format.get("properties", {}) if isinstance(response_format, dict) else {}
        return {"improved_value": "Just answer."} if "improved_value" in props else "be brief"

    out = tmp_path / "patch.json"
    code = example.main(["--out", str(out), "--quiet"], app_engine=FakeEngine(quoting_app),
                        backward_engine=FakeEngine(respond))
    text = capsys.readouterr().out
    assert code == 0, text
    assert "proposal rejected (placeholders)" in text
    assert "nothing to deploy" in text and "live QA template" not in text
    assert Patch.from_json(out.read_text(encoding="utf-8")).changes == ()


def test_cli_equivalent(qa_template, tmp_path, monkeypatch, capsys):
    engine = optimizer(qa_template, [])
    real = tg_bridge.engines.engine
    monkeypatch.setattr(tg_bridge.engines, "engine",
                        lambda spec=None, **kw: engine if spec == "fake:test" else real(spec, **kw))
    out = tmp_path / "patch.json"
    assert cli_main(["optimize", "--traces", str(TRACES), "--feedback", str(FEEDBACK),
                     "--engine", "fake:test", "--out", str(out)]) == 0
    assert cli_main(["show", str(out)]) == 0
    assert MARKER in capsys.readouterr().out
    assert json.loads(out.read_text())["changes"][0]["old"] == qa_template


def test_recording_script_writes_readable_traces_and_feedback(tmp_path, capsys):
    pytest.importorskip("openinference.instrumentation.llama_index")
    maker = load("make_production_traces", DATA / "make_production_traces.py")
    answers = {"Tampere": "It was founded in Tampere.", "CEO": "Marco Bellini."}

    def app(messages):
        prompt = messages[-1]["content"]
        return next((a for k, a in answers.items() if k in prompt), "No idea.")

    assert maker.main(["--out-dir", str(tmp_path)], engine=FakeEngine(app)) == 0
    graphs = load_traces(tmp_path / maker.TRACES_FILE)
    entries = read_feedback(tmp_path / maker.FEEDBACK_FILE)
    assert len(graphs) == 10
    by_id = {g.metadata["trace_id"]: g for g in graphs}
    assert all(e.trace_id in by_id for e in entries)
    # thumbs down for every wrong answer, with the trace of that very question
    downs = [by_id[e.trace_id].metadata["input"] for e in entries if e.score == 0.0]
    assert "In which city was Lumen Robotics founded?" not in downs
    assert "Who is the CEO of Lumen Robotics?" in downs
    assert len(downs) == 9
    # the instrumentor was removed: a later query is not recorded anywhere
    from openinference.instrumentation.llama_index import LlamaIndexInstrumentor

    assert not LlamaIndexInstrumentor().is_instrumented_by_opentelemetry
