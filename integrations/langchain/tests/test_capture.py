"""Capture of real LangChain apps: span kinds, attributes, parenting, templates, bindings."""

from __future__ import annotations

import asyncio
import contextvars
import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from itertools import cycle

import lc_apps
import pytest
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import (
    ChatPromptTemplate,
    FewShotChatMessagePromptTemplate,
    FewShotPromptTemplate,
    PromptTemplate,
)
from langchain_core.runnables import RunnableBranch, RunnableLambda, RunnablePassthrough
from tg_bridge_langchain import adapter

import tg_bridge
import tg_bridge.capturing as tgc
from tg_bridge import semconv as sc

pytestmark = pytest.mark.usefixtures("instrumented")


def kinds(run):
    return Counter(s.attributes.get(sc.SPAN_KIND) for s in run.spans)


def by_kind(run, kind):
    return [s for s in run.spans if s.attributes.get(sc.SPAN_KIND) == kind]


def assert_tree(spans):
    """Every span's parent is in the same trace; exactly one root per trace; node ids match."""
    ids = {s.span_id: s for s in spans}
    node_of = {s.attributes[sc.NODE_ID]: s for s in spans}
    roots = [s for s in spans if s.parent_id is None]
    for s in spans:
        if s.parent_id is not None:
            parent = ids[s.parent_id]
            assert parent.trace_id == s.trace_id
            assert s.attributes[sc.PARENT_NODE_ID] == parent.attributes[sc.NODE_ID]
            assert node_of[s.attributes[sc.PARENT_NODE_ID]] is parent
    assert len({s.trace_id for s in spans}) == len(roots)
    return roots


def test_rag_with_query_rewriting():
    chain, parts = lc_apps.make_rag()
    with tg_bridge.capture("rag") as run:
        out = chain.invoke({"question": "What is the capital of France?"})
    assert out == "Answer: Paris is the capital of France."
    assert run.hook_errors == 0
    assert kinds(run)["PROMPT"] == 2 and kinds(run)["LLM"] == 2 and kinds(run)["RETRIEVER"] == 1
    roots = assert_tree(run.spans)
    assert [r.name for r in roots] == ["rag"]
    assert roots[0].attributes[sc.INPUT_VALUE] == "What is the capital of France?"
    assert roots[0].attributes[sc.OUTPUT_VALUE] == out

    retriever = by_kind(run, "RETRIEVER")[0]
    assert retriever.attributes[sc.INPUT_VALUE] == "capital France Paris"
    assert retriever.attributes["retrieval.documents.0.document.content"] == lc_apps.DOCS[0].page_content
    assert retriever.attributes["retrieval.documents.0.document.id"] == "d1"
    assert "retrieval.documents.2.document.content" not in retriever.attributes

    prompts = by_kind(run, "PROMPT")
    records = [json.loads(p.attributes[sc.TEMPLATES]) for p in prompts]
    templates = sorted(r["template"] for rec in records for r in rec)
    assert templates == sorted(
        [lc_apps.REWRITE_SYSTEM, "Question: {question}", lc_apps.ANSWER_SYSTEM, "{question}"]
    )
    answer_vars = [json.loads(p.attributes[sc.TEMPLATE_VARIABLES]) for p in prompts]
    assert any(v.get("context", "").startswith("Paris is the capital") for v in answer_vars)
    # every template's binding is registered on the run and reads the live text
    for rec in records:
        for r in rec:
            assert run.bindings[r["binding"]].read() == r["template"]
    # the LLM span keeps the original chat messages, roles included
    llm = [s for s in by_kind(run, "LLM") if "Context" in s.attributes["llm.input_messages.0.message.content"]][0]
    assert llm.attributes["llm.input_messages.0.message.role"] == "system"
    assert llm.attributes["llm.input_messages.1.message.role"] == "user"
    assert llm.attributes["llm.input_messages.1.message.content"] == "What is the capital of France?"
    assert llm.attributes["llm.output_messages.0.message.content"] == out
    assert llm.attributes[sc.LLM_MODEL_NAME] == "scripted-1"
    assert llm.attributes[sc.LLM_TOKEN_COUNT_TOTAL] > 0
    # sequence tags: the prompt and the model are siblings on consecutive steps
    siblings = [s for s in run.spans if s.parent_id == llm.parent_id]
    tags = {s.name: json.loads(s.attributes[sc.STEP_TAGS]) for s in siblings}
    assert tags["ChatPromptTemplate"] == ["seq:step:2"] and tags["ScriptedChatModel"] == ["seq:step:3"]
    assert any(json.loads(s.attributes.get(sc.STEP_TAGS, "[]")) == ["map:key:context"] for s in run.spans)


def test_chat_prompt_two_templated_messages_give_two_parameters():
    prompt = ChatPromptTemplate.from_messages(
        [("system", "You are a {persona}."), ("human", "Tell me about {topic}.")]
    )
    chain = prompt | GenericFakeChatModel(messages=cycle([AIMessage("fine")]))
    with tg_bridge.capture() as run:
        chain.invoke({"persona": "poet", "topic": "rain"})
    (span,) = by_kind(run, "PROMPT")
    records = json.loads(span.attributes[sc.TEMPLATES])
    assert [(r["role"], r["template"], r["format"], r["index"]) for r in records] == [
        ("system", "You are a {persona}.", "f-string", 0),
        ("user", "Tell me about {topic}.", "f-string", 1),
    ]
    keys = [r["binding"] for r in records]
    assert keys[0].endswith("/messages[0]") and keys[1].endswith("/messages[1]")
    assert json.loads(span.attributes[sc.BINDING_IDS]) == keys
    assert sorted(run.bindings) == sorted(keys)
    assert span.attributes[sc.LLM_PROMPT_TEMPLATE] == "You are a {persona}."
    assert [b.key for b in adapter.bindings(chain)] == keys  # same keys from the walk


def test_fixed_system_message_and_few_shot_records():
    fixed = ChatPromptTemplate.from_messages(
        [SystemMessage(content="Be brief."), ("human", "{q}")]
    )
    example = PromptTemplate.from_template("Q: {q}\nA: {a}")
    few = FewShotPromptTemplate(
        examples=[{"q": "1+1", "a": "2"}],
        example_prompt=example,
        prefix="Solve these.",
        suffix="Q: {input}\nA:",
        input_variables=["input"],
    )
    few_chat = ChatPromptTemplate.from_messages(
        [
            ("system", "You add numbers."),
            FewShotChatMessagePromptTemplate(
                examples=[{"q": "1+1", "a": "2"}],
                example_prompt=ChatPromptTemplate.from_messages([("human", "{q}"), ("ai", "{a}")]),
            ),
            ("human", "{input}"),
        ]
    )
    with tg_bridge.capture() as run:
        fixed.invoke({"q": "hi"})
        few.invoke({"input": "2+2"})
        few_chat.invoke({"input": "3+3"})
    recs = [json.loads(s.attributes[sc.TEMPLATES]) for s in by_kind(run, "PROMPT")]
    assert [(r["name"], r["format"], r["role"]) for r in recs[0]] == [
        ("messages[0]", "none", "system"),
        ("messages[1]", "f-string", "user"),
    ]
    assert recs[0][0]["template"] == "Be brief."
    assert [(r["name"], r["template"]) for r in recs[1]] == [
        ("prefix", "Solve these."),
        ("example_prompt", "Q: {q}\nA: {a}"),
        ("suffix", "Q: {input}\nA:"),
    ]
    assert [r["name"] for r in recs[2]] == [
        "messages[0]",
        "messages[1]/example_prompt/messages[0]",
        "messages[1]/example_prompt/messages[1]",
        "messages[2]",
    ]
    assert [r["index"] for r in recs[2]] == [0, 1, 1, 2]


def test_lcel_parallel_branch_lambda_passthrough():
    model = GenericFakeChatModel(messages=cycle([AIMessage("x")]))
    short = ChatPromptTemplate.from_messages([("human", "short: {text}")]) | model
    long = ChatPromptTemplate.from_messages([("human", "long: {text}")]) | model
    chain = (
        RunnablePassthrough.assign(size=RunnableLambda(lambda d: len(d["text"])))
        | {"orig": RunnablePassthrough(), "upper": RunnableLambda(lambda d: d["text"].upper())}
        | RunnableLambda(lambda d: {"text": d["upper"], "size": d["orig"]["size"]})
        | RunnableBranch((lambda d: d["size"] < 5, short), long)
        | StrOutputParser()
    )
    with tg_bridge.capture() as run:
        assert chain.invoke({"text": "abc"}) == "x"
        assert chain.invoke({"text": "abcdefgh"}) == "x"
    assert run.hook_errors == 0
    roots = assert_tree(run.spans)
    assert len(roots) == 2
    names = Counter(s.name for s in run.spans)
    assert names["RunnableBranch"] == 2 and names["RunnablePassthrough"] == 2
    prompts = [json.loads(s.attributes[sc.TEMPLATES])[0]["template"] for s in by_kind(run, "PROMPT")]
    assert sorted(prompts) == ["long: {text}", "short: {text}"]
    tags = [t for s in run.spans for t in json.loads(s.attributes.get(sc.STEP_TAGS, "[]"))]
    assert "map:key:orig" in tags and "map:key:upper" in tags
    # the branch's chosen prompt is bound; both branches are reachable through the walk
    assert len(adapter.bindings(chain)) == 2


def _simple_chain():
    prompt = ChatPromptTemplate.from_messages([("system", "Echo."), ("human", "{q}")])
    model = GenericFakeChatModel(messages=cycle([AIMessage("one two three")]))
    return prompt | model | StrOutputParser()


def test_batch_stream_and_async_variants():
    chain = _simple_chain()

    async def async_part():
        out = await chain.abatch([{"q": "c"}, {"q": "d"}])
        chunks = [c async for c in chain.astream({"q": "e"})]
        return out, chunks

    with tg_bridge.capture() as run:
        assert chain.batch([{"q": "a"}, {"q": "b"}]) == ["one two three"] * 2
        chunks = list(chain.stream({"q": "s"}))
        out, achunks = asyncio.run(async_part())
    assert "".join(chunks) == "one two three" and len(chunks) > 1
    assert out == ["one two three"] * 2 and "".join(achunks) == "one two three"
    roots = assert_tree(run.spans)
    assert len(roots) == 6
    assert kinds(run)["LLM"] == 6 and kinds(run)["PROMPT"] == 6
    # streamed model runs still report the whole answer and their input
    for llm in by_kind(run, "LLM"):
        assert llm.attributes[sc.OUTPUT_VALUE] == "one two three"
    questions = sorted(s.attributes["llm.input_messages.1.message.content"] for s in by_kind(run, "LLM"))
    assert questions == ["a", "b", "c", "d", "e", "s"]
    # a one-string input is recorded as text (as OpenInference does)
    streamed_root = [r for r in roots if r.attributes[sc.INPUT_VALUE] == "s"]
    assert streamed_root and streamed_root[0].attributes[sc.OUTPUT_VALUE] == "one two three"


def _check_separate_traces(run, n):
    roots = assert_tree(run.spans)
    assert len(roots) == n
    for root in roots:
        question = root.attributes[sc.INPUT_VALUE]
        trace = [s for s in run.spans if s.trace_id == root.trace_id]
        (llm,) = [s for s in trace if s.attributes.get(sc.SPAN_KIND) == "LLM"]
        assert llm.attributes["llm.input_messages.1.message.content"] == question


def test_thread_pool_parenting():
    chain = _simple_chain()
    with tg_bridge.capture() as run:
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = [
                pool.submit(contextvars.copy_context().run, chain.invoke, {"q": f"t{i}"})
                for i in range(8)
            ]
            assert all(f.result() == "one two three" for f in futures)
    _check_separate_traces(run, 8)


async def test_asyncio_gather_parenting():
    chain = _simple_chain()
    async with tg_bridge.capture() as run:
        outs = await asyncio.gather(*(chain.ainvoke({"q": f"g{i}"}) for i in range(8)))
    assert outs == ["one two three"] * 8
    _check_separate_traces(run, 8)


async def test_concurrent_captures_keep_runs_apart():
    chain = _simple_chain()

    async def one(i):
        async with tg_bridge.capture(f"c{i}") as run:
            await chain.ainvoke({"q": f"c{i}"})
            await asyncio.sleep(0)
            await chain.ainvoke({"q": f"c{i}"})
        return run

    runs = await asyncio.gather(*(one(i) for i in range(4)))
    for i, run in enumerate(runs):
        assert len(run.spans) == 2 * 4
        contents = {s.attributes["llm.input_messages.1.message.content"] for s in by_kind(run, "LLM")}
        assert contents == {f"c{i}"}


def test_tool_calling_agent_loop():
    run_agent, parts = lc_apps.make_agent_loop()
    with tg_bridge.capture() as run:
        assert run_agent("capital of France") == "Final: Paris is the capital of France."
    assert run.hook_errors == 0
    assert kinds(run)["LLM"] == 2 and kinds(run)["TOOL"] == 1 and kinds(run)["PROMPT"] == 2
    (tool,) = by_kind(run, "TOOL")
    assert tool.attributes[sc.TOOL_NAME] == "search"
    assert tool.attributes[sc.TOOL_DESCRIPTION] == "Search the knowledge base for a query."
    assert json.loads(tool.attributes[sc.TOOL_PARAMETERS])["properties"]["query"]["type"] == "string"
    assert "Paris" in tool.attributes[sc.OUTPUT_VALUE]
    assert sc.TOOL_BINDINGS not in tool.attributes  # opt-in only
    first, second = sorted(by_kind(run, "LLM"), key=lambda s: s.start_ns)
    assert first.attributes["llm.output_messages.0.message.tool_calls.0.tool_call.function.name"] == "search"
    assert second.attributes["llm.input_messages.3.message.role"] == "tool"
    assert second.attributes["llm.input_messages.3.message.tool_call_id"] == "call_1"
    assert "llm.tools.0.tool.json_schema" in second.attributes


def test_tool_descriptions_opt_in():
    run_agent, parts = lc_apps.make_agent_loop()
    adapter.tool_descriptions = True
    tgc.uninstrument()
    tgc.instrument()
    try:
        with tg_bridge.capture() as run:
            run_agent("capital of France")
    finally:
        adapter.tool_descriptions = False
        tgc.uninstrument()
        tgc.instrument()
    (tool,) = by_kind(run, "TOOL")
    (record,) = json.loads(tool.attributes[sc.TOOL_BINDINGS])
    assert record["name"] == "search" and record["description"].startswith("Search the")
    assert run.bindings[record["binding"]].read() == record["description"]
    # the description is a parameter of the LLM call that chose the tool, bound to the live tool
    graph = run.graph()
    (param,) = [p for p in graph.parameters() if p.key == record["binding"]]
    assert param.binding is run.bindings[record["binding"]]
    assert any(n.kind == "llm_output" and param in n.parents for n in graph.nodes)


def test_create_agent_offline():
    agents = pytest.importorskip("langchain.agents")
    model = lc_apps.ScriptedChatModel(reply=lc_apps.agent_reply)
    agent = agents.create_agent(model, tools=[lc_apps.search], system_prompt=lc_apps.AGENT_SYSTEM)
    with tg_bridge.capture() as run:
        state = agent.invoke({"messages": [{"role": "user", "content": "capital of France"}]})
    assert state["messages"][-1].content == "Final: Paris is the capital of France."
    assert run.hook_errors == 0
    assert kinds(run)["LLM"] == 2 and kinds(run)["TOOL"] == 1
    assert_tree(run.spans)
    (llm,) = [s for s in by_kind(run, "LLM") if "llm.input_messages.2.message.role" not in s.attributes]
    assert llm.attributes["llm.input_messages.0.message.content"] == lc_apps.AGENT_SYSTEM


def test_own_engine_calls_are_not_captured():
    model = lc_apps.ScriptedChatModel(reply=lambda msgs: AIMessage("internal"))
    engine = adapter.engine(model)
    with tg_bridge.capture() as run:
        assert engine.complete([{"role": "user", "content": "hi"}]).text == "internal"
    assert run.spans == [] and len(model.requests) == 1


def test_failing_hook_never_breaks_the_chain(monkeypatch):
    import tg_bridge_langchain.handler as handler_module

    def boom(*args, **kwargs):
        raise RuntimeError("injected")

    monkeypatch.setattr(handler_module, "value_attributes", boom)
    monkeypatch.setattr(handler_module, "_llm_output_attributes", boom)
    chain = _simple_chain()
    # other suites in this process may hold spans open on purpose (LlamaIndex streams)
    open_before = tgc.span_processor().open_span_count()
    with tg_bridge.capture() as run:
        assert chain.invoke({"q": "a"}) == "one two three"
    assert run.hook_errors >= 3
    # spans whose end hook failed are still ended: nothing leaks
    from tg_bridge_langchain import hooks

    assert hooks.installed_handler()._spans == {}
    assert tgc.span_processor().open_span_count() == open_before
    assert len(by_kind(run, "LLM")) == 1


def test_errors_are_recorded_and_reach_the_caller_unchanged():
    class Boom(Exception):
        pass

    def explode(_):
        raise Boom("nope")

    chain = _simple_chain() | RunnableLambda(explode)
    with tg_bridge.capture() as run:
        with pytest.raises(Boom):
            chain.invoke({"q": "a"})
    failed = [s for s in run.spans if s.status == "ERROR"]
    assert {s.name for s in failed} == {"explode", "RunnableSequence"}
    assert any(e["name"] == "exception" for s in failed for e in s.events)


def test_instrument_is_idempotent_and_uninstrument_removes_everything(memory_spans):
    from langchain_core.prompts import BasePromptTemplate
    from langchain_core.tracers import context as lc_context
    from tg_bridge_langchain import hooks

    chain = _simple_chain()
    handler = hooks.installed_handler()
    adapter.instrument(memory_spans.provider)  # a second call changes nothing
    assert hooks.installed_handler() is handler
    assert len([h for h in lc_context._configure_hooks if h[0] is hooks._switch]) == 1
    chain.invoke({"q": "a"})
    assert len(memory_spans.get_finished_spans()) == 4
    adapter.uninstrument()
    adapter.uninstrument()
    assert not [h for h in lc_context._configure_hooks if h[0] is hooks._switch]
    assert not getattr(BasePromptTemplate.__dict__["invoke"], "__tg_bridge_wrapped__", False)
    memory_spans.clear()
    chain.invoke({"q": "a"})
    assert memory_spans.get_finished_spans() == ()


def test_open_run_map_is_bounded():
    from uuid import uuid4

    from opentelemetry.sdk.trace import TracerProvider
    from tg_bridge_langchain.handler import SpanHandler

    handler = SpanHandler(TracerProvider().get_tracer("t"), max_open=3)
    ids = [uuid4() for _ in range(5)]
    for run_id in ids:  # runs that never end (abandoned generators)
        handler.on_chain_start(None, {"a": 1}, run_id=run_id, name="x")
    assert len(handler._spans) == 3 and handler.dropped == 2
    for run_id in ids:
        handler.on_chain_end({"b": 2}, run_id=run_id)
    assert handler._spans == {}
