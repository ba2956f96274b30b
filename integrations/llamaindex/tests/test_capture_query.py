"""Capture of retriever query engines (compact, refine, tree_summarize), LLM calls, async."""

from __future__ import annotations

import asyncio
import json

import pytest
from tg_bridge_llamaindex import adapter

from tg_bridge import semconv as sc
from tg_bridge.capturing import capture


def _named(run, suffix):
    return [s for s in run.spans if s.name.endswith(suffix)]


def _template_records(run):
    records = []
    for span in run.spans:
        raw = span.attributes.get(sc.TEMPLATES)
        if raw:
            records.extend(json.loads(raw))
    return records


@pytest.mark.parametrize(
    ("mode", "slots"),
    [
        ("compact", ["text_qa_template"]),
        ("refine", ["text_qa_template", "refine_template"]),
        ("tree_summarize", ["summary_template"]),
    ],
)
def test_query_engine_capture_has_live_template_bindings(index, llm, mode, slots):
    engine = index.as_query_engine(llm=llm, similarity_top_k=2, response_mode=mode)
    with capture() as run:
        answer = engine.query("How tall is the Eiffel Tower?")
    assert str(answer)
    assert run.hook_errors == 0
    # one trace, rooted at the engine's query span, every span parented inside it
    root = _named(run, "RetrieverQueryEngine.query")
    assert len(root) == 1 and root[0].parent_id is None
    assert len({s.trace_id for s in run.spans}) == 1
    ids = {s.span_id for s in run.spans}
    assert all(s.parent_id in ids for s in run.spans if s is not root[0])
    # retrieval documents and LLM messages are recorded
    retriever = [s for s in run.spans if s.attributes.get(sc.SPAN_KIND) == "RETRIEVER"]
    assert len(retriever) == 1
    assert retriever[0].attributes[f"{sc.RETRIEVAL_DOCUMENTS}.0.{sc.DOCUMENT_CONTENT}"]
    llm_spans = [s for s in run.spans if s.attributes.get(sc.SPAN_KIND) == "LLM"]
    assert len(llm_spans) == len(llm.received)
    for span, prompt in zip(llm_spans, llm.received):
        assert span.attributes[f"{sc.LLM_INPUT_MESSAGES}.0.{sc.MESSAGE_CONTENT}"] == prompt
        assert span.attributes[sc.LLM_TOKEN_COUNT_PROMPT] == len(prompt.split())
    # the predict spans name the live prompts they formatted; the bindings read them back
    records = _template_records(run)
    used = [r["binding"] for r in records]
    for slot in slots:
        key = next(k for k in used if k.endswith(f"response_synthesizer:{slot}"))
        binding = run.bindings[key]
        live = engine.get_prompts()[f"response_synthesizer:{slot}"]
        assert binding.read() == live.default_template.template
        record = next(r for r in records if r["binding"] == key)
        assert record["template"] == binding.read() and record["format"] == "f-string"
    variables = [json.loads(s.attributes[sc.TEMPLATE_VARIABLES]) for s in run.spans if sc.TEMPLATE_VARIABLES in s.attributes]
    assert any(v.get("query_str") == "How tall is the Eiffel Tower?" for v in variables)


def test_binding_keys_are_stable_across_runs(index, llm):
    engine = index.as_query_engine(llm=llm)
    keys = []
    for _ in range(2):
        with capture() as run:
            engine.query("q")
        keys.append(sorted(run.bindings))
    assert keys[0] == keys[1] and keys[0]
    assert keys[0] == sorted(b.key for b in adapter.bindings(engine))


def test_llm_chat_and_completion_calls(llm):
    from llama_index.core.llms import ChatMessage

    with capture() as run:
        llm.complete("Say hi")
        llm.chat([ChatMessage(role="system", content="Be terse."), ChatMessage(role="user", content="Hello")])
    llm_spans = [s for s in run.spans if s.attributes.get(sc.SPAN_KIND) == "LLM"]
    by_name = {s.name.rsplit(".", 1)[-1]: s for s in llm_spans}
    assert set(by_name) == {"complete", "chat"}
    done = by_name["complete"].attributes
    assert done[f"{sc.LLM_INPUT_MESSAGES}.0.{sc.MESSAGE_CONTENT}"] == "Say hi"
    assert done[f"{sc.LLM_OUTPUT_MESSAGES}.0.{sc.MESSAGE_CONTENT}"] == "answer: Say hi"
    chat = by_name["chat"].attributes
    assert chat[f"{sc.LLM_INPUT_MESSAGES}.0.{sc.MESSAGE_ROLE}"] == "system"
    assert chat[f"{sc.LLM_INPUT_MESSAGES}.0.{sc.MESSAGE_CONTENT}"] == "Be terse."
    assert chat[f"{sc.LLM_INPUT_MESSAGES}.1.{sc.MESSAGE_CONTENT}"] == "Hello"
    assert chat[f"{sc.LLM_OUTPUT_MESSAGES}.0.{sc.MESSAGE_ROLE}"] == "assistant"
    # the completion the chat delegates to is not a second LLM call
    assert len(llm_spans) == 2


async def test_async_gather_keeps_one_trace_per_query(index, make_llm):
    engine = index.as_query_engine(llm=make_llm(fn=lambda p: "A:" + p.splitlines()[-2][-20:]))
    questions = [f"question number {i}" for i in range(4)]
    async with capture() as run:
        answers = await asyncio.gather(*(engine.aquery(q) for q in questions))
    assert len(answers) == 4
    roots = _named(run, "RetrieverQueryEngine.aquery")
    assert len(roots) == 4 and len({s.trace_id for s in roots}) == 4
    for root in roots:
        trace = [s for s in run.spans if s.trace_id == root.trace_id]
        question = root.attributes[sc.INPUT_VALUE]
        llm_inputs = [s.attributes[f"{sc.LLM_INPUT_MESSAGES}.0.{sc.MESSAGE_CONTENT}"] for s in trace
                      if s.attributes.get(sc.SPAN_KIND) == "LLM"]
        assert llm_inputs and all(question in text for text in llm_inputs)


async def test_concurrent_captures_keep_runs_apart(index, llm):
    engine = index.as_query_engine(llm=llm)

    async def one(q):
        async with capture() as run:
            await engine.aquery(q)
        return run

    runs = await asyncio.gather(one("first question"), one("second question"))
    assert runs[0].id != runs[1].id
    for run, q in zip(runs, ("first question", "second question")):
        inputs = {s.attributes.get(sc.INPUT_VALUE) for s in _named(run, ".aquery")}
        assert inputs == {q}
        assert all(s.attributes[sc.RUN_ID] == run.id for s in run.spans)


def test_our_engine_calls_are_not_captured(index, llm):
    engine = adapter.engine(llm)
    with capture() as run:
        completion = engine.complete([{"role": "user", "content": "grade this"}])
        index.as_query_engine(llm=llm).query("app question")
    assert completion.text == "answer: assistant:"
    assert "grade this" in llm.received[0]
    inputs = [s.attributes.get(f"{sc.LLM_INPUT_MESSAGES}.0.{sc.MESSAGE_CONTENT}", "") for s in run.spans]
    assert not any("grade this" in text for text in inputs)
    assert any("app question" in text for text in inputs)  # the app's own call is captured


def test_streaming_query_records_outputs_and_parents(index, llm):
    engine = index.as_query_engine(llm=llm, streaming=True)
    before = set(tg_bridge_llamaindex_recorder().deferred)
    with capture() as run:
        response = engine.query("How tall is the Eiffel Tower?")
        tokens = list(response.response_gen)
    text = "".join(tokens)
    assert text.startswith("answer:")
    root = _named(run, "RetrieverQueryEngine.query")[0]
    assert root.attributes[sc.OUTPUT_VALUE] == text
    llm_span = next(s for s in run.spans if s.attributes.get(sc.SPAN_KIND) == "LLM")
    assert llm_span.attributes[f"{sc.LLM_OUTPUT_MESSAGES}.0.{sc.MESSAGE_CONTENT}"] == text
    assert llm_span.trace_id == root.trace_id  # the lazily started LLM span joined the query
    assert sc.TEMPLATES in _named(run, ".stream")[0].attributes
    assert set(tg_bridge_llamaindex_recorder().deferred) <= before  # the whole chain ended


def test_unconsumed_streams_do_not_leak(index, llm, monkeypatch):
    from tg_bridge_llamaindex import recorder as rec

    monkeypatch.setattr(rec, "MAX_DEFERRED", 4)
    engine = index.as_query_engine(llm=llm, streaming=True)
    with capture():
        for _ in range(6):
            engine.query("never read")
    recorder = tg_bridge_llamaindex_recorder()
    assert len(recorder.deferred) <= 4
    assert recorder.expired >= 1
    assert not recorder.open


def tg_bridge_llamaindex_recorder():
    from tg_bridge_llamaindex import handlers

    recorder = handlers.installed()
    assert recorder is not None
    return recorder
