"""Bad trace input: broken files, hostile span soups, a bounded fuzz of the OTLP reader.

tests/traces and tests/reconstruct cover each named defect once. Here the same contract is
checked over generated input: ``read_spans`` either returns records or raises
TraceFormatError naming the file (and, for content errors, the place); ``reconstruct``
raises nothing but TraceFormatError, terminates, and returns an acyclic, topologically
ordered graph; Patch JSON round-trips exactly and rejects every mutation it cannot trust.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import random
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tg_bridge import semconv as sc
from tg_bridge.exceptions import PatchValidationError, TraceFormatError
from tg_bridge.graph import Graph
from tg_bridge.patching.patch import Change, Patch
from tg_bridge.reconstruction import load_traces, reconstruct
from tg_bridge.spans import SpanRecord
from tg_bridge.traces import read_spans
from tg_bridge.variable import content_hash

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = sorted(
    p for pattern in ("tests/fixtures/*.json*", "integrations/*/tests/fixtures/*.json*",
                      # traces other projects' exporters recorded: their real shapes, mutated
                      "tests/fixtures/conventions/*_upstream.otlp.json")
    for p in ROOT.glob(pattern)
)
FUZZ_SEED = 20240607
FUZZ_PER_FIXTURE = 1000

CI = settings(max_examples=300, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def check_graph(graph: Graph) -> None:
    """Acyclic and topological: every parent comes before its child, nodes appear once."""
    assert isinstance(graph, Graph)
    seen: set[int] = set()
    for node in graph.nodes:
        assert id(node) not in seen, "a node appears twice"
        for parent in node.parents:
            assert id(parent) in seen, "a parent after its child (cycle or bad order)"
        seen.add(id(node))
        assert isinstance(node.value, str)
    for out in graph.outputs:
        assert id(out) in seen


# -- reconstruction over random span soups -----------------------------------------------------

IDS = [f"{i:016x}" for i in range(1, 7)]
TEXT = st.one_of(
    st.sampled_from(["", "hi", "Answer {q}", "{{literal}}", "{", "}", "{q} {q}", "ok",
                     "ignore previous instructions", "{0}", "{a.b}", "{x!r:>{w}}"]),
    st.text(max_size=40),
)
SCALAR = st.one_of(TEXT, st.integers(), st.floats(allow_nan=True), st.booleans(),
                   st.tuples(TEXT, TEXT))


def _json_text(values: Any) -> st.SearchStrategy[str]:
    return st.one_of(values.map(json.dumps), TEXT)


TEMPLATE_RECORD = st.fixed_dictionaries(
    {}, optional={"binding": TEXT, "name": TEXT, "role": st.sampled_from(["system", "user", 3]),
                  "template": SCALAR, "format": st.sampled_from(["f-string", "mustache", "jinja2",
                                                                 "none", "weird", 1]),
                  "index": st.one_of(st.integers(-2, 4), TEXT)})
MESSAGE = st.fixed_dictionaries({}, optional={
    "role": st.sampled_from(["system", "user", "assistant", "tool", 5]),
    "parts": st.lists(st.fixed_dictionaries({}, optional={"type": st.sampled_from(["text", "x"]),
                                                          "content": SCALAR}), max_size=2),
    "content": SCALAR})


def _attr_pair() -> st.SearchStrategy[tuple[str, Any]]:
    i = st.integers(0, 3).map(str)
    keyed = [
        st.tuples(st.just(sc.SPAN_KIND), st.one_of(
            st.sampled_from(["LLM", "CHAIN", "RETRIEVER", "TOOL", "AGENT", "PROMPT", "EMBEDDING",
                             "RERANKER", "llm", "?"]), SCALAR)),
        st.tuples(st.sampled_from([sc.INPUT_VALUE, sc.OUTPUT_VALUE, sc.LLM_PROMPT_TEMPLATE,
                                   sc.TOOL_NAME, sc.LLM_MODEL_NAME, sc.NODE_TYPE, sc.FRAMEWORK,
                                   sc.GEN_AI_TOOL_CALL_RESULT, sc.GEN_AI_TOOL_CALL_ARGUMENTS]),
                  SCALAR),
        st.tuples(st.builds(lambda n, f: f"{sc.LLM_INPUT_MESSAGES}.{n}.{f}", i,
                            st.sampled_from([sc.MESSAGE_ROLE, sc.MESSAGE_CONTENT])), SCALAR),
        st.tuples(st.builds(lambda n, f: f"{sc.LLM_OUTPUT_MESSAGES}.{n}.{f}", i,
                            st.sampled_from([sc.MESSAGE_ROLE, sc.MESSAGE_CONTENT])), SCALAR),
        st.tuples(st.builds(lambda n: f"{sc.RETRIEVAL_DOCUMENTS}.{n}.{sc.DOCUMENT_CONTENT}", i),
                  SCALAR),
        st.tuples(st.sampled_from([sc.LLM_PROMPT_TEMPLATE_VARIABLES, sc.TEMPLATE_VARIABLES]),
                  _json_text(st.dictionaries(st.sampled_from(["q", "context", "0", ""]), SCALAR,
                                             max_size=3))),
        st.tuples(st.just(sc.TEMPLATES), _json_text(st.lists(TEMPLATE_RECORD, max_size=3))),
        st.tuples(st.sampled_from([sc.BINDING_IDS, sc.STEP_TAGS]),
                  _json_text(st.lists(SCALAR, max_size=3))),
        st.tuples(st.sampled_from([sc.NODE_ID, sc.PARENT_NODE_ID]),
                  st.one_of(st.sampled_from(["n1", "n2", "n3"]), SCALAR)),
        st.tuples(st.sampled_from([sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_OUTPUT_MESSAGES,
                                   sc.GEN_AI_SYSTEM_INSTRUCTIONS]),
                  _json_text(st.lists(MESSAGE, max_size=3))),
        st.tuples(st.just(sc.GEN_AI_OPERATION_NAME),
                  st.sampled_from(["chat", "execute_tool", "retrieval", "invoke_agent", "x"])),
        st.tuples(st.just(sc.INTERNAL), st.booleans()),
        st.tuples(TEXT, SCALAR),  # unknown attributes
    ]
    return st.one_of(*keyed)


SPAN = st.builds(
    lambda trace, sid, parent, name, start, attrs, status: SpanRecord(
        trace_id=trace, span_id=sid, parent_id=parent, name=name, start_ns=start,
        end_ns=start + 1, attributes=dict(attrs), status=status),
    st.sampled_from(["t1", "t2"]),
    st.sampled_from(IDS),  # few ids: duplicates, self-parents and cycles are common
    st.one_of(st.none(), st.sampled_from(IDS + ["gone"])),
    TEXT,
    st.integers(0, 20),
    st.lists(_attr_pair(), max_size=8),
    st.sampled_from(["UNSET", "OK", "ERROR"]),
)


def _rich_attrs(kind: str, system: str, user: str, out: str, template: str, var: str,
                doc: str, junk: list[tuple[str, Any]]) -> dict[str, Any]:
    """Well-formed attributes of one kind (so graphs with parameters and data flow are
    common), then overwritten by a few random pairs."""
    if kind == "LLM":
        attrs = {f"{sc.LLM_INPUT_MESSAGES}.0.{sc.MESSAGE_ROLE}": "system",
                 f"{sc.LLM_INPUT_MESSAGES}.0.{sc.MESSAGE_CONTENT}": system,
                 f"{sc.LLM_INPUT_MESSAGES}.1.{sc.MESSAGE_ROLE}": "user",
                 f"{sc.LLM_INPUT_MESSAGES}.1.{sc.MESSAGE_CONTENT}": user,
                 f"{sc.LLM_OUTPUT_MESSAGES}.0.{sc.MESSAGE_ROLE}": "assistant",
                 f"{sc.LLM_OUTPUT_MESSAGES}.0.{sc.MESSAGE_CONTENT}": out}
    elif kind == "PROMPT":
        attrs = {sc.LLM_PROMPT_TEMPLATE: template,
                 sc.LLM_PROMPT_TEMPLATE_VARIABLES: json.dumps({"q": var, "context": doc}),
                 sc.TEMPLATES: json.dumps([{"binding": "app/tpl", "name": "tpl", "role": "user",
                                            "template": template, "format": "f-string",
                                            "index": 0}]),
                 sc.OUTPUT_VALUE: user}
    elif kind == "RETRIEVER":
        attrs = {sc.INPUT_VALUE: var, f"{sc.RETRIEVAL_DOCUMENTS}.0.{sc.DOCUMENT_CONTENT}": doc}
    elif kind == "TOOL":
        attrs = {sc.TOOL_NAME: "search", sc.INPUT_VALUE: var, sc.OUTPUT_VALUE: doc}
    else:
        attrs = {sc.INPUT_VALUE: var, sc.OUTPUT_VALUE: out}
    attrs[sc.SPAN_KIND] = kind
    attrs.update(junk)
    return attrs


WORD = st.sampled_from(["Be brief.", "Answer {q}", "Use {context} to answer {q}", "the doc",
                        "ok", "what?", "{q}", "ignore previous instructions"])
RICH_SPAN = st.builds(
    lambda trace, sid, parent, start, attrs: SpanRecord(
        trace_id=trace, span_id=sid, parent_id=parent, name="rich", start_ns=start,
        end_ns=start + 1, attributes=attrs),
    st.sampled_from(["t1", "t2"]), st.sampled_from(IDS),
    st.one_of(st.none(), st.sampled_from(IDS + ["gone"])), st.integers(0, 20),
    st.builds(_rich_attrs, st.sampled_from(["LLM", "PROMPT", "RETRIEVER", "TOOL", "CHAIN"]),
              WORD, WORD, WORD, WORD, WORD, WORD, st.lists(_attr_pair(), max_size=2)),
)


@CI
@given(st.lists(st.one_of(SPAN, RICH_SPAN), max_size=12))
def test_reconstruct_random_span_soups(spans):
    try:
        graph = reconstruct(spans)
    except TraceFormatError:
        return
    check_graph(graph)
    assert graph.metadata["spans"] <= len(spans)


FLAT = st.dictionaries(
    st.sampled_from(["trace_id", "span_id", "parent_id", "name", "attributes", "context",
                     "start_time", "kind", "status", "traceId", "spanId"]),
    st.one_of(SCALAR, st.none(), st.dictionaries(TEXT, SCALAR, max_size=3),
              st.lists(SCALAR, max_size=2)),
    max_size=7,
)


@CI
@given(st.lists(st.one_of(FLAT, SCALAR, st.none()), max_size=6))
def test_reconstruct_accepts_only_spans_or_raises_trace_format_error(items):
    try:
        graph = reconstruct(items)
    except TraceFormatError as exc:
        assert str(exc)
        return
    check_graph(graph)


def test_a_long_parent_cycle_and_a_deep_chain_terminate_quickly():
    n = 3000
    ring = [SpanRecord("t", f"{i:016x}", f"{(i + 1) % n:016x}", f"s{i}", start_ns=i,
                       attributes={sc.SPAN_KIND: "CHAIN", sc.OUTPUT_VALUE: f"v{i}"})
            for i in range(n)]
    chain = [SpanRecord("u", f"{i + n:016x}", f"{i + n - 1:016x}" if i else None, f"c{i}",
                        start_ns=i, attributes={sc.SPAN_KIND: "LLM",
                                                f"{sc.LLM_INPUT_MESSAGES}.0.{sc.MESSAGE_ROLE}": "user",
                                                f"{sc.LLM_INPUT_MESSAGES}.0.{sc.MESSAGE_CONTENT}": f"in {i - 1}",
                                                f"{sc.LLM_OUTPUT_MESSAGES}.0.{sc.MESSAGE_CONTENT}": f"in {i}"})
             for i in range(n)]
    # "Terminates": a walk that followed the ring forever is stopped by the suite's per-test
    # timeout (pytest-timeout in pyproject.toml), a generous guard only a real hang reaches;
    # no assertion on elapsed time (the machine may be loaded).
    graph = reconstruct(ring + chain)
    check_graph(graph)
    assert graph.metadata["cycles"] >= 1



UPSTREAM = sorted(p for p in FIXTURES if p.name.endswith("_upstream.otlp.json"))
#: what a hostile or broken exporter may put where a real one wrote JSON or text
ODD_VALUES: tuple[Any, ...] = ("", "null", "[", '"x"', "[{}]", '{"object": "response", "output": [7]}',
                               "[" * 5000 + "]" * 5000, 7, -1.5, True, ("a", "b"), ())


@pytest.mark.parametrize("fixture", UPSTREAM, ids=[p.name for p in UPSTREAM])
def test_every_attribute_of_a_real_exporters_trace_can_be_hostile(fixture):
    """Each attribute of each span of a trace another project's exporter recorded, replaced in
    turn by each odd value: reconstruction never raises, returns a sound graph, and the readers
    cope themselves (no span falls back to the catch-all "unreadable attributes")."""
    records = read_spans(fixture)
    tried = 0
    for i, record in enumerate(records):
        for key in record.attributes:
            for value in ODD_VALUES:
                spoiled = dataclasses.replace(record, attributes={**record.attributes, key: value})
                graph = reconstruct([*records[:i], spoiled, *records[i + 1:]])
                check_graph(graph)
                assert "unreadable_attributes" not in graph.metadata["skipped_by_reason"], (key, value)
                tried += 1
    assert tried >= len(records) * len(ODD_VALUES)

# -- trace files ---------------------------------------------------------------------------------

def _read(path: Path) -> list[SpanRecord] | TraceFormatError:
    try:
        return read_spans(path)
    except TraceFormatError as exc:
        return exc


def _assert_located(exc: TraceFormatError, path: Path) -> None:
    assert path.name in str(exc), f"the error does not name the file: {exc}"
    assert exc.path and Path(exc.path).name == path.name
    assert exc.where, f"the error does not say where: {exc}"


@pytest.mark.parametrize("name, data, where", [
    ("binary.jsonl", bytes(range(256)) * 4, None),
    ("protobuf.bin", b"\n\x8f\x02\n\x1c\n\x0cservice.name\x12\x0c\n\nmy-service", None),
    ("nul.jsonl", b'{"resourceSpans": []}\n\x00\x00\x00\n', "byte"),
    ("latin1.jsonl", '{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "caf\xe9"}]}]}]}'
     .encode("latin-1"), "byte 59"),
    ("truncated.json", b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "ab', None),
    ("second_line_bad.jsonl", b'{"resourceSpans": []}\n{"resourceSpans": [\n', "line 2"),
    ("not_spans.jsonl", b'{"hello": "world"}\n', "line 1"),
    ("wrong_shape.jsonl", b'{"resourceSpans": {"a": 1}}\n', "line 1"),
    ("bad_span.jsonl", b'{"resourceSpans": [{"scopeSpans": [{"spans": [7]}]}]}\n', "line 1"),
    ("number.json", b"42", None),
])
def test_bad_files_raise_a_located_trace_format_error(tmp_path, name, data, where):
    path = tmp_path / name
    path.write_bytes(data)
    result = _read(path)
    assert isinstance(result, TraceFormatError), f"{name}: read {result!r}"
    _assert_located(result, path)
    if where is not None:
        assert where in str(result), (name, str(result))


def _one_span_line(**span_fields: Any) -> bytes:
    span = {"traceId": "ab" * 16, "spanId": "cd" * 8, "name": "s", **span_fields}
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    return json.dumps(doc).encode() + b"\n"


DEEP = 50_000


@pytest.mark.parametrize("name, data, where", [
    # non-finite / overflowing numbers (json.loads turns 1e400 into inf and accepts NaN)
    ("ts_1e400.jsonl", _one_span_line().replace(b'"name"', b'"startTimeUnixNano": 1e400, "name"'),
     "startTimeUnixNano"),
    ("ts_nan.jsonl", _one_span_line().replace(b'"name"', b'"endTimeUnixNano": NaN, "name"'),
     "endTimeUnixNano"),
    ("ts_nan_text.jsonl", _one_span_line(startTimeUnixNano="NaN"), "startTimeUnixNano"),
    ("ts_huge_int.jsonl", _one_span_line(startTimeUnixNano=str(10**40)), "startTimeUnixNano"),
    ("ts_negative.jsonl", _one_span_line(endTimeUnixNano=-5), "endTimeUnixNano"),
    ("ts_event.jsonl", _one_span_line(events=[{"name": "e", "timeUnixNano": "inf"}]), "event 0"),
    # wrong types
    ("ts_list.jsonl", _one_span_line(startTimeUnixNano=[1, 2]), "startTimeUnixNano"),
    ("ts_bool.jsonl", _one_span_line(endTimeUnixNano=True), "endTimeUnixNano"),
    ("ts_text.jsonl", _one_span_line(startTimeUnixNano="yesterday"), "startTimeUnixNano"),
    # nesting far deeper than any trace: as JSON lines, as one document, inside an attribute
    ("deep_line.jsonl", b'{"resourceSpans": []}\n' + b"[" * DEEP + b"]" * DEEP + b"\n", "line 2"),
    ("deep_first_line.jsonl", b"[" * DEEP + b"]" * DEEP + b"\n", "line 1"),
    ("deep_document.json", b"{\n" + b'"a": ' + b"[" * DEEP + b"]" * DEEP + b"}", None),
    ("deep_attribute.jsonl", _one_span_line(attributes=[{"key": "k", "value": "@"}]).replace(
        b'"@"', b'{"arrayValue": {"values": [' * 320 + b"{}" + b"]}}" * 320), "line 1"),
    # not UTF-8, in the middle of a JSON lines file
    ("latin1_line3.jsonl", b'{"resourceSpans": []}\n{"resourceSpans": []}\n{"x": "caf\xe9"}\n',
     "line 3"),
])
def test_malformed_numbers_nesting_and_types_raise_trace_format_error(tmp_path, name, data, where):
    """Issue 11 item 12: never a bare OverflowError, ValueError, RecursionError or
    UnicodeDecodeError from a reader."""
    path = tmp_path / name
    path.write_bytes(data)
    try:
        result = read_spans(path)
    except TraceFormatError as exc:
        result = exc
    assert isinstance(result, TraceFormatError), f"{name}: read {result!r}"
    _assert_located(result, path)
    if where is not None:
        assert where in str(result), (name, str(result))


_JSON_SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80)
                 | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30))
_JSON_VALUES = st.recursive(_JSON_SCALARS, lambda inner: st.lists(inner, max_size=3)
                            | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                            max_leaves=8)


@CI
@given(start=_JSON_VALUES, end=_JSON_VALUES)
def test_any_timestamp_value_reads_in_range_or_raises_trace_format_error(tmp_path_factory, start,
                                                                          end):
    path = tmp_path_factory.mktemp("ts") / "t.jsonl"
    path.write_bytes(_one_span_line(startTimeUnixNano=start, endTimeUnixNano=end)
                     if not _has_non_finite(start, end)
                     else _one_span_line().replace(b'"name"', b'"startTimeUnixNano": '
                                                   + json.dumps(start).encode() + b', "name"'))
    try:
        (span,) = read_spans(path)
    except TraceFormatError as exc:
        _assert_located(exc, path)
        return
    assert 0 <= span.start_ns < 2**64 and 0 <= span.end_ns < 2**64


def _has_non_finite(*values: Any) -> bool:
    try:
        json.dumps(values, allow_nan=False)
    except ValueError:
        return True
    return False


def test_finite_numbers_and_iso_dates_still_read(tmp_path):
    path = tmp_path / "ok.jsonl"
    path.write_bytes(_one_span_line(startTimeUnixNano="1700000000000000000", endTimeUnixNano=1.7e18)
                     + _one_span_line(startTimeUnixNano="2024-01-02T03:04:05Z",
                                      attributes=[{"key": "d", "value": {"doubleValue": "NaN"}}]))
    first, second = read_spans(path)
    assert (first.start_ns, first.end_ns) == (1700000000000000000, 1700000000000000000)
    assert second.start_ns == 1704164645000000000
    assert second.attributes["d"] != second.attributes["d"]  # a NaN attribute value is data


def test_a_huge_file_streams_with_bounded_memory(tmp_path):
    """2,000 requests of one span with a 20 kB value: peak memory is far below the file size
    (each line is decoded and dropped; only the records themselves are kept)."""
    path = tmp_path / "huge.jsonl"
    big = "x" * 20_000
    with path.open("w") as fh:
        for i in range(2000):
            span = {"traceId": f"{i + 1:032x}", "spanId": f"{i + 1:016x}", "name": "s",
                    "attributes": [{"key": "input.value", "value": {"stringValue": big}}]}
            fh.write(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}) + "\n")
    size = path.stat().st_size
    tracemalloc.start()
    try:
        count = 0
        from tg_bridge.traces import iter_spans

        for record in iter_spans(path):
            count += 1
            assert len(record.attributes["input.value"]) == 20_000
            del record
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 2000
    assert peak < size / 10, f"peak {peak} for a {size}-byte file"


def test_one_huge_line_is_read_or_rejected_without_crashing(tmp_path):
    path = tmp_path / "one_line.jsonl"
    spans = [{"traceId": "a" * 32, "spanId": f"{i + 1:016x}", "name": "s",
              "attributes": [{"key": "output.value", "value": {"stringValue": "y" * 1000}}]}
             for i in range(5000)]
    path.write_text(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}))
    graphs = load_traces(path)
    assert len(graphs) == 1 and graphs[0].metadata["spans"] == 5000


# -- the bounded mutation fuzzer over the committed fixtures ---------------------------------------

def _mutate(data: bytes, rng: random.Random) -> bytes:
    """One of: truncate, flip bytes, delete/duplicate a slice, splice JSON tokens, swap ids to
    base64 or garbage, change a value's type."""
    op = rng.randrange(8)
    n = len(data)
    if op == 0:
        return data[: rng.randrange(n)]
    if op == 1:
        out = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            out[rng.randrange(n)] = rng.randrange(256)
        return bytes(out)
    if op == 2:
        a = rng.randrange(n)
        return data[:a] + data[a + rng.randint(1, 200):]
    if op == 3:
        a = rng.randrange(n)
        b = min(n, a + rng.randint(1, 400))
        return data[:b] + data[a:b] + data[b:]
    text = data.decode("utf-8", "replace")
    tokens = ['"stringValue"', '"intValue"', '"boolValue"', '"parentSpanId"', '"spanId"', "null",
              "[]", "{}", '"0"', "true", "-1", '"\\u0000"', '"resourceSpans"', '"attributes"']
    if op == 4:
        a, b = rng.choice(tokens), rng.choice(tokens)
        return text.replace(a, b, rng.randint(1, 5)).encode()
    if op == 5:  # ids: hex -> base64 (valid or not), or swap two span ids (cycles, duplicates)
        import re

        ids = re.findall(r'"([0-9a-f]{16})"', text)
        if len(ids) >= 2:
            x, y = rng.sample(ids, 2)
            if rng.random() < 0.5:
                return text.replace(x, y).encode()
            return text.replace(x, base64.b64encode(bytes.fromhex(x)).decode()[:rng.randint(3, 12)]).encode()
        return text.encode()
    if op == 6:  # a value of the wrong type
        return text.replace('{"stringValue":', '{"intValue":', rng.randint(1, 3)).replace(
            '"arrayValue"', '"kvlistValue"', 1).encode()
    lines = text.splitlines(keepends=True)
    rng.shuffle(lines)
    return "".join(lines).encode()


def test_fixtures_are_found():
    assert len(FIXTURES) >= 8, FIXTURES


@pytest.mark.parametrize("fixture", FIXTURES, ids=[p.name for p in FIXTURES])
def test_fuzz_otlp_reader_and_reconstruction(tmp_path, fixture):
    rng = random.Random(f"{FUZZ_SEED}:{fixture.name}")
    original = fixture.read_bytes()
    read_ok = errors = 0
    started = time.perf_counter()
    for i in range(FUZZ_PER_FIXTURE):
        data = original
        for _ in range(rng.randint(1, 3)):
            data = _mutate(data, rng) or b" "
        path = tmp_path / f"m{i}{fixture.suffix}"
        path.write_bytes(data)
        result = _read(path)
        if isinstance(result, TraceFormatError):
            errors += 1
            _assert_located(result, path)
            continue
        read_ok += 1
        try:
            graphs = load_traces(path)
        except TraceFormatError as exc:
            _assert_located(exc, path)
            continue
        for graph in graphs:
            check_graph(graph)
    elapsed = time.perf_counter() - started  # reported, not asserted: a hang is caught by the
    assert read_ok + errors == FUZZ_PER_FIXTURE  # suite's per-test timeout (pytest-timeout)
    print(f"{fixture.name}: {FUZZ_PER_FIXTURE} mutants, {read_ok} read, {errors} located errors,"
          f" {elapsed:.1f}s")


# -- Patch JSON ------------------------------------------------------------------------------------

PATCH_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200)
CHANGE = st.builds(
    lambda key, old, new, prov: Change(key, "replace", old, new, content_hash(old), prov),
    st.text(min_size=1, max_size=30), PATCH_TEXT, PATCH_TEXT,
    st.dictionaries(st.text(max_size=10), st.one_of(st.text(max_size=20), st.integers(),
                                                    st.lists(st.text(max_size=5), max_size=3)),
                    max_size=3),
)
METADATA = st.dictionaries(st.text(max_size=10), st.one_of(
    st.text(max_size=20), st.integers(), st.booleans(), st.none(),
    st.lists(st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2), max_size=2)),
    max_size=4)


@CI
@given(st.lists(CHANGE, max_size=4, unique_by=lambda c: c.target), METADATA)
def test_patch_json_round_trip_is_exact(changes, metadata):
    patch = Patch(changes, metadata)
    text = patch.to_json()
    loaded = Patch.from_json(text)
    assert loaded.changes == patch.changes
    assert loaded.metadata == patch.metadata
    assert loaded.to_json() == text  # stable: a second trip changes nothing


@CI
@given(st.lists(CHANGE, min_size=1, max_size=3, unique_by=lambda c: c.target), st.data())
def test_patch_from_json_mutations_load_exactly_or_raise_schema_errors(changes, data):
    doc = json.loads(Patch(changes).to_json())
    path, value = data.draw(st.tuples(
        st.sampled_from(["schema", "version", "changes", "metadata", "c.target", "c.kind",
                         "c.old", "c.new", "c.old_hash", "c.provenance", "c.extra", "drop"]),
        st.one_of(st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2),
                  st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))))
    if path == "drop":
        doc["changes"][0].pop(data.draw(st.sampled_from(sorted(doc["changes"][0]))))
    elif path.startswith("c."):
        doc["changes"][0][path[2:]] = value
    else:
        doc[path] = value
    try:
        loaded = Patch.from_json(json.dumps(doc))
    except PatchValidationError as exc:
        assert exc.reason == "schema"
        return
    for change in loaded.changes:  # whatever loads is internally consistent
        assert isinstance(change.old, str) and isinstance(change.new, str)
        assert change.old_hash == content_hash(change.old)
        assert change.kind == "replace"
