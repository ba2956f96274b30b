"""Hostile data from trace platforms and live captures (issue 13 §3: feedback is untrusted).

Live: a LangChain app as the tutorials write it, on the real ChatOpenAI class pointed at the
loopback OpenAI stub, wrapped with ``@tg_bridge.optimizable`` and called with hostile user
text; its feedback carries a prompt injection that must never reach the live prompt.

Arize Phoenix: the JSON its REST API answers (spans, span and trace annotations) with every
field of the wrong type, lone surrogates, NUL, 10 MB strings and deep nesting, fed to the
pure reader (:func:`record_of_span`) and, over an ``httpx.MockTransport`` or a loopback
server, to :class:`PhoenixSource` and :func:`optimize_phoenix`. Property: a record or our
documented one-line error (TraceFormatError / TraceSourceError), never another exception;
and an annotation's prompt injection is never copied into a proposed patch.

The shapes follow what tests/phoenix_source receives from a real ``phoenix serve``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.fault_server import LoopbackServer
from tests.support.openai_stub import OpenAIStub, message_texts
from tests.support.untrusted import (
    HOSTILE_FEEDBACK,
    HOSTILE_INPUTS,
    INJECTION,
    ORDER,
    SECRET,
    aoutcome,
    assert_only_as_data,
    obeying_engine,
    outcome,
    prompt_sized_answer,
)
from tg_bridge.exceptions import TraceFormatError, TraceSourceError
from tg_bridge.offline import feedback_text
from tg_bridge.offline_phoenix import optimize_phoenix, read_feedback
from tg_bridge.reconstruction import phoenix_graphs
from tg_bridge.spans import SpanRecord
from tg_bridge.traces import phoenix as reader
from tg_bridge.traces.checks import MAX_TIMESTAMP_NS
from tg_bridge.traces.phoenix import PhoenixAnnotation, PhoenixSource, record_of_span

TRACE = "0af7651916cd43dd8448eb211c80319c"
ROOT, LLM = "b7ad6b7169203331", "00f067aa0ba902b7"
SURROGATE = "\ud800"
BIG = "x" * 10_000_000
HYPOTHESIS = settings(derandomize=True, max_examples=100, deadline=None, database=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

#: any text, lone surrogates (category Cs) and NUL/control characters included
hostile_text = st.text(st.characters(exclude_categories=()), max_size=20)
scalars = st.one_of(
    st.none(), st.booleans(), hostile_text,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([10**400, -(10**400), 2**64, -1]),
    st.floats(allow_nan=True, allow_infinity=True),
)
#: any JSON value Python's decoder can produce (NaN/Infinity included: json.loads takes them)
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(hostile_text, inner, max_size=4)), max_leaves=12)


def _span(span_id: str = LLM, parent: Any = ROOT, **fields: Any) -> dict[str, Any]:
    """One span as Phoenix's ``GET /v1/projects/{p}/spans`` answers it."""
    span = {"name": "ChatOpenAI", "context": {"trace_id": TRACE, "span_id": span_id},
            "span_kind": "LLM", "parent_id": parent,
            "start_time": "2026-01-02T03:04:05.123456+00:00",
            "end_time": "2026-01-02T03:04:06+00:00", "status_code": "OK", "status_message": "",
            "attributes": {"llm": {"input_messages": [
                {"message": {"role": "system", "content": "Be brief."}}]}}, "events": []}
    span.update(fields)
    return span


def _one_line_error(call: Callable[[], Any], error: type[Exception]) -> Any:
    """``call()``'s result, or None when it raised ``error`` with a short one-line message;
    any other exception fails the test (it propagates)."""
    try:
        return call()
    except error as exc:
        message = str(exc)
        assert "\n" not in message and len(message) < 2_000, message[:300]
        return None


# -- one span ------------------------------------------------------------------------------

SPAN_FIELDS = ["name", "context", "span_kind", "parent_id", "start_time", "end_time",
               "status_code", "attributes", "events"]


@pytest.mark.parametrize("field", SPAN_FIELDS)
@HYPOTHESIS
@given(value=json_values)
def test_any_value_in_any_span_field_is_a_record_or_a_format_error(field, value):
    record = _one_line_error(lambda: record_of_span(_span(**{field: value})), TraceFormatError)
    if record is not None:
        assert isinstance(record, SpanRecord)
        assert 0 <= record.start_ns <= MAX_TIMESTAMP_NS and 0 <= record.end_ns <= MAX_TIMESTAMP_NS
        assert len(record.trace_id) == 32 and len(record.span_id) == 16
        assert record.parent_id is None or len(record.parent_id) == 16


@HYPOTHESIS
@given(key=st.sampled_from(["trace_id", "span_id"]), value=json_values)
def test_any_id_value_is_a_record_or_a_format_error(key, value):
    context = {"trace_id": TRACE, "span_id": LLM, key: value}
    record = _one_line_error(lambda: record_of_span(_span(context=context)), TraceFormatError)
    if record is not None:  # only a hex id of the right length is an id
        assert record.trace_id == TRACE if key == "span_id" else record.span_id == LLM


@HYPOTHESIS
@given(event=json_values, events_field=st.sampled_from(["name", "timestamp", "attributes"]))
def test_any_event_is_kept_skipped_or_a_format_error(event, events_field):
    for events in ([event], [{"name": "e", "timestamp": 5, events_field: event}]):
        span = _span(events=events)
        record = _one_line_error(lambda: record_of_span(span), TraceFormatError)  # noqa: B023
        if record is not None:
            assert all(isinstance(e["name"], str) and isinstance(e["time_ns"], int)
                       for e in record.events)


@pytest.mark.parametrize("events", [5, "abc", {"name": "e"}, True])
def test_events_that_are_not_a_list_are_a_format_error(events):
    # 5 used to raise TypeError ("'int' object is not iterable") from inside the reader
    with pytest.raises(TraceFormatError, match="events must be a JSON list"):
        record_of_span(_span(events=events))


@pytest.mark.parametrize("stamp", ["2600-01-01T00:00:00+00:00", "9999-12-31T23:59:59-12:00"])
def test_an_iso_date_past_64_bit_nanoseconds_is_a_format_error(stamp):
    # it used to become a start_ns beyond 2**64 - 1 that no OTLP writer can encode
    with pytest.raises(TraceFormatError, match="outside 0..2"):
        record_of_span(_span(start_time=stamp))


def test_a_ten_megabyte_timestamp_gives_a_short_error():
    with pytest.raises(TraceFormatError) as info:
        record_of_span(_span(start_time="9" * 10_000_000))
    assert len(str(info.value)) < 300  # it used to repeat the 10 MB value in the message


def test_ten_megabyte_strings_nul_and_lone_surrogates_are_kept_as_data():
    text = f"a\x00b{SURROGATE}c\x1b[31m"
    record = record_of_span(_span(name=BIG, attributes={"input": {"value": BIG + text},
                                                         "output": {"value": text}}))
    assert len(record.name) == 1000  # the name is cut, values are the app's data
    assert record.attributes["input.value"] == BIG + text
    assert record.attributes["output.value"] == text


def test_deep_nesting_in_attributes_and_events_is_a_format_error():
    deep: Any = "leaf"
    for _ in range(5_000):
        deep = [deep]
    for span in (_span(attributes={"input": {"value": deep}}),
                 _span(events=[{"name": "e", "attributes": {"a": deep}}])):
        with pytest.raises(TraceFormatError, match="nested more than"):
            record_of_span(span)


# -- annotations ---------------------------------------------------------------------------


def _mock_source(answer: Callable[[str], Any]) -> PhoenixSource:
    """A PhoenixSource whose HTTP GETs are answered by ``answer(path)`` (a JSON value, or
    raw bytes sent as they are), in process: no socket."""

    def handle(request: httpx.Request) -> httpx.Response:
        body = answer(request.url.path)
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.Response(200, content=raw)

    client = httpx.Client(transport=httpx.MockTransport(handle))
    return PhoenixSource("http://phoenix.test", "p", client=client)


SPANS = [record_of_span(_span(ROOT, None, span_kind="CHAIN")), record_of_span(_span())]


def _annotation_item(**fields: Any) -> dict[str, Any]:
    """One entry of ``GET .../span_annotations`` as Phoenix answers it."""
    item = {"id": "U3BhbkFubm90YXRpb246MQ==", "span_id": LLM, "name": "rating",
            "annotator_kind": "HUMAN", "result": {"label": "bad", "score": 0.0,
                                                  "explanation": "too short"},
            "metadata": {}, "identifier": "", "source": "API",
            "created_at": "2026-01-02T03:04:07+00:00", "updated_at": "2026-01-02T03:04:07+00:00"}
    item.update(fields)
    return item


def _read(span_items: list[Any], trace_items: list[Any]) -> list[PhoenixAnnotation] | None:
    def answer(path: str) -> Any:
        items = span_items if path.endswith("/span_annotations") else trace_items
        return {"data": items, "next_cursor": None}

    return _one_line_error(lambda: _mock_source(answer).fetch_annotations(SPANS), TraceSourceError)


def _assert_well_typed(found: list[PhoenixAnnotation]) -> None:
    for item in found:
        assert item.trace_id == TRACE and item.span_id in (None, LLM)
        assert isinstance(item.name, str) and len(item.name) <= 200
        assert isinstance(item.annotator_kind, str) and len(item.annotator_kind) <= 20
        for text in (item.label, item.explanation):
            assert text is None or (isinstance(text, str) and len(text) <= reader.MAX_TEXT_CHARS)
        assert item.score is None or (type(item.score) is float and math.isfinite(item.score))
    for entry in read_feedback(found):  # the texts seeded later: built without raising
        assert isinstance(feedback_text(entry.score, entry.text), str)


ANNOTATION_FIELDS = ["span_id", "name", "annotator_kind", "result", "label", "score",
                     "explanation"]


@pytest.mark.parametrize("field", ANNOTATION_FIELDS)
@HYPOTHESIS
@given(value=json_values)
def test_any_value_in_any_annotation_field_is_read_typed_or_dropped(field, value):
    if field in ("label", "score", "explanation"):
        item = _annotation_item(result={"label": "bad", "score": 0.0, field: value})
    else:
        item = _annotation_item(**{field: value})
    trace_item = dict(item, trace_id=TRACE)
    del trace_item["span_id"]
    found = _read([item], [trace_item])
    assert found is not None  # an odd annotation is dropped or typed, never an error
    _assert_well_typed(found)


@HYPOTHESIS
@given(items=st.lists(json_values, max_size=4))
def test_any_annotation_page_is_read_or_a_source_error(items):
    found = _read(items, items)
    if found is not None:
        _assert_well_typed(found)


@HYPOTHESIS
@given(pages=st.lists(st.one_of(json_values, st.fixed_dictionaries(
    {"data": st.lists(st.one_of(json_values, st.builds(_span)), max_size=3),
     "next_cursor": json_values})), min_size=1, max_size=4))
def test_any_span_pages_are_records_or_a_source_error(pages):
    """Pages of Phoenix's span listing, each any JSON value or a page shape with odd spans
    and cursors: records, or one TraceSourceError (never the reader's own exception)."""
    served = iter(pages)

    def answer(path: str) -> Any:
        return next(served, {"data": []})

    source = _mock_source(answer)
    records = _one_line_error(lambda: source.fetch_spans(max_spans=50), TraceSourceError)
    assert records is None or all(isinstance(r, SpanRecord) for r in records)


def test_huge_surrogate_and_nul_annotation_texts_are_capped_and_kept_as_text():
    text = f"bad\x00{SURROGATE}\x1b[2J" + BIG
    found = _read([_annotation_item(name=text, result={"label": text, "explanation": text})], [])
    assert found is not None
    (item,) = found
    assert item.label == item.explanation == text[:reader.MAX_TEXT_CHARS]
    assert item.name == text[:200]


@pytest.mark.parametrize("body", [b"[]", b'{"data": {}}', b'{"data": [1, "x", null]}',
                                  b"[" * 100_000, b"\xff\xfe not utf-8", b'{"data": [], "next_cursor": 5}'])
def test_an_odd_annotation_answer_is_a_source_error_or_nothing(body):
    source = _mock_source(lambda path: body)
    found = _one_line_error(lambda: source.fetch_annotations(SPANS), TraceSourceError)
    assert found in (None, [])


# -- whole traces, and the copy guard through optimize_phoenix ------------------------------

SYSTEM = "Be brief."


class _PhoenixAnswers(LoopbackServer):
    """A loopback server answering Phoenix's three GETs of one project with fixed JSON."""

    label = "the scripted Phoenix"

    def __init__(self, spans: list[Any], span_items: list[Any], trace_items: list[Any]) -> None:
        self.bodies = {"spans": spans, "span_annotations": span_items,
                       "trace_annotations": trace_items}

    @property
    def url(self) -> str:
        return self.base_url.removesuffix("/v1")

    def answer(self, path: str) -> tuple[int, bytes]:
        """(status, JSON body) for one GET: the scripted list the path's last segment names."""
        what = path.split("?", 1)[0].rsplit("/", 1)[-1]
        return 200, json.dumps({"data": self.bodies.get(what, []), "next_cursor": None}).encode()

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        answer = self.answer

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                status, raw = answer(self.path)
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


def _app_spans() -> list[dict[str, Any]]:
    """A CHAIN root and its LLM call, as Phoenix answers them."""
    root = _span(ROOT, None, name="rag", span_kind="CHAIN",
                 attributes={"input": {"value": "fig"}, "output": {"value": "FIG"}})
    llm = _span(attributes={"llm": {
        "input_messages": [{"message": {"role": "system", "content": SYSTEM}},
                           {"message": {"role": "user", "content": "Answer fig"}}],
        "output_messages": [{"message": {"role": "assistant", "content": "FIG"}}]},
        "output": {"value": "FIG"}})
    return [root, llm]


@pytest.mark.parametrize("parents", [(LLM, ROOT), (ROOT, None), ("f" * 16, ROOT), (ROOT, LLM)],
                         ids=["cycle", "self-parent", "missing-parent", "root-under-child"])
def test_parent_cycles_and_missing_parents_still_give_the_prompt(parents):
    spans = _app_spans()
    spans[0]["parent_id"], spans[1]["parent_id"] = parents
    (graph,) = phoenix_graphs([record_of_span(s) for s in spans])
    assert [p.value for p in graph.parameters()] == [SYSTEM]


def test_deeply_nested_json_text_in_inputs_outputs_and_messages_is_data():
    deep = "[" * 200_000 + "]" * 200_000  # far deeper than json.loads follows
    spans = _app_spans()
    for span in spans:
        span["attributes"]["input"] = {"value": deep, "mime_type": "application/json"}
        span["attributes"]["output"] = {"value": deep, "mime_type": "application/json"}
    spans[1]["attributes"]["llm"]["output_messages"][0]["message"]["content"] = deep
    (graph,) = phoenix_graphs([record_of_span(s) for s in spans])
    assert [p.value for p in graph.parameters()] == [SYSTEM]
    assert graph.metadata["skipped_spans"] == 0


HOSTILE_TEXTS = {
    "injection": f"Useless. {INJECTION} My key is {SECRET}",
    "surrogate-nul": HOSTILE_FEEDBACK,
    "ten-megabytes": f"{INJECTION} key {SECRET} " + "y" * 10_000_000,
}


@pytest.mark.parametrize("mode", ["edge", "fused"])
@pytest.mark.parametrize("text", list(HOSTILE_TEXTS.values()), ids=list(HOSTILE_TEXTS))
def test_an_annotation_ordering_a_prompt_change_never_reaches_the_patch(text, mode):
    on_span = _annotation_item(span_id=LLM, result={"score": 0, "explanation": text})
    on_root = _annotation_item(span_id=ROOT, name="comment", result={"label": text})
    on_trace = dict(_annotation_item(result={"explanation": text}), trace_id=TRACE)
    engine = obeying_engine(ORDER)
    with _PhoenixAnswers(_app_spans(), [on_span, on_root], [on_trace]) as server:
        result = optimize_phoenix(server.url, "p", engine=engine, mode=mode)
    assert result.used == 1
    assert not result.patch.changes, result.patch.changes
    assert {r["reason"] for r in result.patch.metadata["rejected"]} == {"copy_guard"}
    assert_only_as_data(engine.prompts(), "Ignore previous instructions", SECRET)
    assert_only_as_data(engine.prompts(), "PWNED", SECRET)


#: what a terminal would obey: clear screen, set the window title, OSC 52 clipboard write, an
#: 8-bit CSI, a carriage return that overwrites the line, NUL
ESCAPES = ("\x1b[2J", "\x1b]0;pwned\x07", "\x1b]52;c;cm0gLXJmIH4=\x07", "\x9b31m", "\rok", "\x00")


@pytest.mark.parametrize("json_out", [False, True], ids=["text", "json"])
def test_cli_output_of_a_hostile_phoenix_project_has_no_terminal_controls(json_out, capsys):
    from tg_bridge import cli

    spans = _app_spans()
    spans[1]["name"] = "Chat" + "".join(ESCAPES) + "\ud800"
    spans[1]["attributes"]["llm"]["input_messages"][0]["message"]["content"] = "Be " + "".join(ESCAPES)
    with _PhoenixAnswers(spans, [], []) as server:
        code = cli.main(["graph", "--phoenix", server.url, "--project", "p",
                         *(["--json"] if json_out else [])])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Chat" in out
    for control in ("\x1b", "\x07", "\x9b", "\r", "\x00", "\ud800"):
        assert control not in out, repr(control)
    out.encode("utf-8")  # strict: what reaches the terminal is UTF-8
    if json_out:  # escaped, not dropped: the JSON reads back the prompt as traced
        assert [p["value"] for p in json.loads(out)["parameters"]] == ["Be " + "".join(ESCAPES)]


@HYPOTHESIS
@given(value=json_values)
def test_terminal_safe_output_has_no_controls_and_json_reads_back(value):
    from tg_bridge._utf8 import terminal_safe, terminal_safe_json, utf8_safe

    text = terminal_safe(repr(value) + "".join(ESCAPES))
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]", text)
    dumped = json.dumps(value, ensure_ascii=False)
    shown = terminal_safe_json(dumped)
    assert not re.search("[\x00-\x1f\x7f-\x9f\ud800-\udfff]", shown)
    # the same value (compared as canonical JSON text: NaN is not equal to itself)
    assert json.dumps(json.loads(shown)) == json.dumps(json.loads(utf8_safe(dumped)))


def test_a_phoenix_error_body_with_terminal_controls_is_shown_inert(capsys):
    from tg_bridge import cli

    class Broken(_PhoenixAnswers):
        def answer(self, path: str) -> tuple[int, bytes]:
            return 500, ("boom " + "".join(ESCAPES)).encode()

    with Broken([], [], []) as server:
        code = cli.main(["graph", "--phoenix", server.url, "--project", "p"])
    _, err = capsys.readouterr()
    assert code == 2 and "answered 500" in err and "boom" in err
    assert len(err.strip().splitlines()) == 1
    for control in ("\x1b", "\x07", "\x9b", "\r", "\x00"):
        assert control not in err, repr(control)


def _stub_model(request: dict[str, Any]) -> str:
    """A model on loopback that obeys the feedback: update calls append the order."""
    texts = "\n".join(message_texts(request))
    if "improved_value" in texts or "response_format" in request:
        return json.dumps({"improved_value": f"{SYSTEM} {ORDER}"})
    return "The system prompt should do what the user asked."


def test_a_lone_surrogate_in_feedback_reaches_a_real_engine_as_utf8():
    """The OpenAI-compatible engine encodes requests as UTF-8: a lone surrogate from an
    annotation used to fail every backward call ("invalid response body"), so nothing was
    optimized. It is sent as U+FFFD; the copy guard still stops the obeying answer."""
    from tg_bridge.engines.openai_engine import OpenAIEngine

    text = f"Rude \ud800 answer\x00. {INJECTION}"
    on_span = _annotation_item(span_id=LLM, result={"score": 0, "explanation": text})
    with OpenAIStub(_stub_model) as stub, _PhoenixAnswers(_app_spans(), [on_span], []) as server:
        engine = OpenAIEngine(model="stub-model", base_url=stub.base_url, api_key="x",
                              max_retries=0)
        result = optimize_phoenix(server.url, "p", engine=engine)
        assert stub.saw("Rude \ufffd answer")
    assert result.used == 1 and not result.patch.changes
    assert {r["reason"] for r in result.patch.metadata["rejected"]} == {"copy_guard"}


def test_an_endpoint_answering_lone_surrogates_is_read_and_not_cached(tmp_path):
    """A broken or hostile OpenAI-compatible endpoint may answer "\\ud800" (valid JSON): the
    completion cache raised UnicodeEncodeError out of every such call (its contract: write
    failures are logged). The answer is used as given, the proposal saves as a patch."""
    from tg_bridge.engines.openai_engine import OpenAIEngine
    from tg_bridge.patching.patch import Patch

    new = "Be brief \ud800 and exact."

    def model(request: dict[str, Any]) -> str:
        if "improved_value" in "\n".join(message_texts(request)) or "response_format" in request:
            return json.dumps({"improved_value": new})
        return "Too curt \ud800; ask for a full sentence."

    on_span = _annotation_item(span_id=LLM, result={"score": 0, "explanation": "too short"})
    with OpenAIStub(model) as stub, _PhoenixAnswers(_app_spans(), [on_span], []) as server:
        engine = OpenAIEngine(model="stub-model", base_url=stub.base_url, api_key="x",
                              max_retries=0, cache=str(tmp_path / "cache.db"))
        result = optimize_phoenix(server.url, "p", engine=engine)
    assert [(c.old, c.new) for c in result.patch.changes] == [(SYSTEM, new)]
    saved = Patch.load(result.patch.save(tmp_path / "patch.json"))
    assert [c.new for c in saved.changes] == [new]


# -- the live path: a LangChain app under @optimizable -----------------------------------------

HOST_SYSTEM = "You are a helpful assistant. Answer in one short sentence."


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_langchain_app_under_optimizable_with_hostile_text(tmp_path):
    pytest.importorskip("langchain_openai")
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_openai import ChatOpenAI

    import tg_bridge

    prompt = ChatPromptTemplate.from_messages([("system", HOST_SYSTEM), ("human", "{question}")])
    with OpenAIStub(prompt_sized_answer) as stub:
        model = ChatOpenAI(model="stub-model", base_url=stub.base_url, api_key="x", max_retries=0)
        chain = prompt | model | StrOutputParser()

        def plain(question: str) -> str:
            return chain.invoke({"question": question})

        @tg_bridge.optimizable(store=str(tmp_path / "runs.db"))
        def answer(question: str) -> str:
            return chain.invoke({"question": question})

        runs = []
        for name, question in HOSTILE_INPUTS.items():
            without = outcome(lambda: plain(question))  # noqa: B023
            with_us = outcome(lambda: answer(question))  # noqa: B023
            assert with_us == without, name  # exactly what the host does without us
            if with_us[0] == "returned":
                runs.append(answer.last_run_id())
        assert answer.flush(60) and answer.recorder.errors == 0
        # every call captured, the one the host itself failed too (the OpenAI SDK cannot
        # encode the lone surrogate: UnicodeEncodeError, with or without us)
        assert answer.recorder.recorded == len(HOSTILE_INPUTS) and len(runs) == 4
        for run_id in runs:
            answer.feedback(run_id, score=0.0, text=HOSTILE_FEEDBACK)
        engine = obeying_engine(ORDER)
        result = answer.optimize_from_feedback(engine=engine)
    assert prompt.messages[0].prompt.template == HOST_SYSTEM  # the live prompt is untouched
    assert not result.best_patch.changes
    assert {r["reason"] for r in result.best_patch.metadata["rejected"]} == {"copy_guard"}
    assert_only_as_data(engine.prompts(), "PWNED", SECRET)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_an_async_langchain_app_under_optimizable_with_hostile_text(tmp_path):
    pytest.importorskip("langchain_openai")
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_openai import ChatOpenAI

    import tg_bridge

    prompt = ChatPromptTemplate.from_messages([("system", HOST_SYSTEM), ("human", "{question}")])
    with OpenAIStub(prompt_sized_answer) as stub:
        model = ChatOpenAI(model="stub-model", base_url=stub.base_url, api_key="x", max_retries=0)
        chain = prompt | model | StrOutputParser()

        @tg_bridge.optimizable(store=str(tmp_path / "runs.db"))
        async def answer(question: str) -> str:
            return await chain.ainvoke({"question": question})

        for name, question in HOSTILE_INPUTS.items():
            without = await aoutcome(lambda: chain.ainvoke({"question": question}))  # noqa: B023
            with_us = await aoutcome(lambda: answer(question))  # noqa: B023
            assert with_us == without, name
        assert answer.flush(60) and answer.recorder.errors == 0
        assert answer.recorder.recorded == len(HOSTILE_INPUTS)


@pytest.mark.parametrize("run_id, score", [("x" * 10_000_000, 0.0), (None, 10**400),
                                           (None, "9" * 10_000_000)],
                         ids=["10-MB-run-id", "int-1e400-score", "10-MB-score"])
def test_feedback_from_an_end_users_request_gets_a_short_error(tmp_path, run_id, score):
    """A web app passes the run id and score of its feedback endpoint through: an error
    must not repeat 10 MB of it (in logs, in the answer to the client)."""
    import tg_bridge
    from tg_bridge.exceptions import StoreError, UsageError

    @tg_bridge.optimizable(store=str(tmp_path / "runs.db"))
    def answer(question: str) -> str:
        return question

    answer("fig")
    with pytest.raises((UsageError, StoreError)) as info:
        answer.feedback(run_id or answer.last_run_id(), score=score)
    assert len(str(info.value)) < 300 and "\n" not in str(info.value)
