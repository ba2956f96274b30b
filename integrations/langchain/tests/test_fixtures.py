"""The committed OTLP JSON fixtures read back, and still match what our capture records."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest

from tg_bridge import semconv as sc
from tg_bridge.traces import read_spans

FIXTURES = Path(__file__).resolve().parent / "fixtures"
pytestmark = pytest.mark.usefixtures("instrumented")


def _recorder():
    spec = importlib.util.spec_from_file_location("lc_record_fixtures", FIXTURES / "record_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shape(spans):
    return Counter((s.name, s.attributes.get(sc.SPAN_KIND)) for s in spans)


@pytest.mark.parametrize("name", ["langchain_rag_rewrite", "langchain_agent_loop"])
def test_fixture_matches_a_fresh_recording(tmp_path, name):
    recorder = _recorder()
    committed = read_spans(FIXTURES / f"{name}.otlp.json")
    recorder.main(["record", str(tmp_path)])
    fresh = read_spans(tmp_path / f"{name}.otlp.json")
    assert shape(committed) == shape(fresh)
    assert len(committed) == len(fresh) > 5
    # ids survive the round trip as hex and the tree is intact
    ids = {s.span_id for s in committed}
    assert all(s.parent_id in ids for s in committed if s.parent_id)
    assert all(len(s.trace_id) == 32 and len(s.span_id) == 16 for s in committed)
    templates = [json.loads(s.attributes[sc.TEMPLATES]) for s in committed if sc.TEMPLATES in s.attributes]
    assert templates and all(r["binding"].startswith("langchain:") for t in templates for r in t)


def test_agent_fixture_holds_the_tool_call_loop():
    spans = read_spans(FIXTURES / "langchain_agent_loop.otlp.json")
    assert len({s.trace_id for s in spans}) == 1
    tool = [s for s in spans if s.attributes.get(sc.SPAN_KIND) == "TOOL"]
    assert [s.attributes[sc.TOOL_NAME] for s in tool] == ["search"]
    llm_calls = sorted((s for s in spans if s.attributes.get(sc.SPAN_KIND) == "LLM"), key=lambda s: s.start_ns)
    assert llm_calls[0].attributes["llm.output_messages.0.message.tool_calls.0.tool_call.function.name"] == "search"
    assert llm_calls[1].attributes["llm.input_messages.3.message.role"] == "tool"
    assert llm_calls[1].attributes[sc.LLM_TOKEN_COUNT_TOTAL] > 0
