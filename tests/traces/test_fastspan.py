"""The C conversion of canonical spans (tg_bridge/traces/_fastspan.c) against the Python one.

The contract: for any span, the C code either gives up (None, and the Python code converts
it) or returns a record EQUAL, value for value and type for type, to the Python record; it
never accepts a span the Python code rejects, never raises for a span, and leaks nothing.
"""

from __future__ import annotations

import gc
import os
import sys
import types

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tg_bridge.exceptions import TraceFormatError
from tg_bridge.traces import otlp_json

fast = otlp_json._fast
needs_c = pytest.mark.skipif(fast is None, reason="the C accelerator is not built here")


def test_the_accelerator_is_built_where_ci_installs():
    """`pip install -e .` (make install) compiles it; a broken build must not pass silently
    as a slower reader (CI sets CI=true; TG_BRIDGE_PURE_PYTHON turns it off on purpose)."""
    if os.environ.get("CI") != "true" or os.environ.get("TG_BRIDGE_PURE_PYTHON", "") not in ("", "0"):
        pytest.skip("checked on CI")
    assert otlp_json.accelerated()


HEX = "0123456789abcdef"
ids32 = st.text(HEX, min_size=32, max_size=32)
ids16 = st.text(HEX, min_size=16, max_size=16)
odd_ids = st.one_of(
    st.just(""), st.just("0" * 32), st.just("0" * 16), st.none(), st.integers(-5, 2**70), st.booleans(),
    ids32.map(str.upper), ids16.map(lambda s: "0x" + s), st.just("AAECAwQFBgcICQoLDA0ODw=="),
    st.text(max_size=40), st.lists(st.integers(), max_size=2), ids32.map(lambda s: s[1:]),
    # one character off the lowercase-hex alphabet, at any place
    st.builds(lambda s, i, c: s[:i] + c + s[i + 1:], ids32, st.integers(0, 31), st.sampled_from("gG:/ é\x00`")),
    st.builds(lambda s, i, c: s[:i] + c + s[i + 1:], ids16, st.integers(0, 15), st.sampled_from("gG:/ é\x00`")),
)
digits = st.integers(0, 2**64 - 1).map(str)
odd_times = st.one_of(
    st.integers(-(2**65), 2**66), st.just(""), st.just("-1"), st.just(" 12"), st.just("12_0"),
    st.just("\u0661\u0662"), st.just("1" * 20), st.just("9" * 19), st.floats(allow_nan=True), st.booleans(),
    st.none(), st.just("2024-01-01T00:00:00Z"), st.text(max_size=25),
)
any_value = st.one_of(
    st.builds(lambda s: {"stringValue": s}, st.text(max_size=30)),
    st.builds(lambda s: {"stringValue": s}, st.one_of(st.integers(), st.none(), st.booleans())),
    st.builds(lambda s: {"intValue": s}, st.one_of(st.integers(-(2**70), 2**70), st.integers().map(str),
                                                    st.just("x"), st.floats(allow_nan=True), st.booleans())),
    st.builds(lambda s: {"doubleValue": s}, st.one_of(st.floats(allow_nan=True), st.just("NaN"), st.just("1e400"),
                                                       st.just("x"), st.none())),
    st.builds(lambda s: {"boolValue": s}, st.one_of(st.booleans(), st.just("true"), st.just("FALSE"), st.integers())),
    st.builds(lambda v: {"arrayValue": {"values": v}},
              st.lists(st.builds(lambda s: {"stringValue": s}, st.text(max_size=5)), max_size=3)),
    st.builds(lambda k, v: {"kvlistValue": {"values": [{"key": k, "value": {"stringValue": v}}]}},
              st.text(max_size=5), st.text(max_size=5)),
    st.builds(lambda s: {"bytesValue": s}, st.text(max_size=8)),
    st.builds(lambda s, i: {"stringValue": s, "intValue": i}, st.text(max_size=5), st.integers()),
    st.just({}), st.none(), st.text(max_size=5), st.integers(),
)
entry = st.one_of(
    st.builds(lambda k, v: {"key": k, "value": v}, st.text(max_size=12), any_value),
    st.builds(lambda k, v: {"key": k, "value": v}, st.one_of(st.integers(), st.none(), st.lists(st.text())),
              any_value),
    st.builds(lambda k: {"key": k}, st.text(max_size=5)),
    st.builds(lambda v: {"value": v}, any_value),
    st.builds(lambda k, v: types.MappingProxyType({"key": k, "value": v}), st.text(max_size=5), any_value),
    st.one_of(st.integers(), st.text(max_size=3), st.none(), st.lists(st.integers(), max_size=2)),
)
attributes = st.one_of(
    st.lists(entry, max_size=6), st.none(), st.just([]), st.just("not a list"),
    st.dictionaries(st.text(max_size=5), st.one_of(st.text(max_size=5), st.integers(), st.lists(st.integers()))),
)
status = st.one_of(
    st.none(), st.just({}), st.builds(lambda c: {"code": c}, st.one_of(st.integers(-3, 5), st.integers(2**62, 2**70),
                                                                      st.booleans(), st.just("1"), st.none())),
    st.just({"status_code": "STATUS_CODE_ERROR"}), st.just("ERROR"), st.integers(0, 2),
)
events = st.one_of(st.none(), st.just([]), st.just(""), st.just([{"name": "e", "timeUnixNano": "5"}]),
                   st.just("x"))


@st.composite
def spans(draw):
    """Mostly canonical spans with some fields drawn from the odd spellings."""
    span: dict = {}

    def field(key, canonical, odd, missing_ok=True):
        roll = draw(st.integers(0, 9))
        if roll == 0 and missing_ok:
            return
        span[key] = draw(odd) if roll == 1 else draw(canonical)

    field("traceId", ids32, odd_ids)
    field("spanId", ids16, odd_ids)
    field("parentSpanId", st.one_of(ids16, st.just("")), odd_ids)
    if draw(st.integers(0, 19)) == 0:
        span[draw(st.sampled_from(["parent_span_id", "parent_id", "trace_id", "span_id", "context"]))] = draw(odd_ids)
    field("name", st.text(max_size=20), st.one_of(st.none(), st.integers(), st.just(0), st.lists(st.text())))
    field("startTimeUnixNano", digits, odd_times)
    field("endTimeUnixNano", st.one_of(digits, st.integers(0, 2**64 - 1)), odd_times)
    field("status", st.builds(lambda c: {"code": c}, st.integers(0, 2)), status)
    field("events", st.just([]), events)
    field("attributes", st.lists(st.builds(lambda k, v: {"key": k, "value": {"stringValue": v}},
                                           st.text(max_size=12), st.text(max_size=40)), max_size=6), attributes)
    return span


def python_record(span, resource):
    try:
        return otlp_json._span(span, resource, "span 0")
    except (TraceFormatError, RecursionError):
        return TraceFormatError


def exact(record):
    """The record's fields, type-exact (1 == True and 1 == 1.0 but must not pass as equal)."""
    return repr([(type(v).__name__, v) for v in vars(record).values()]), {
        k: type(v) for k, v in record.attributes.items()}


@needs_c
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(span=spans())
def test_c_takes_a_span_only_to_give_the_python_record(span):
    resource = {"service.name": "svc"}
    expected = python_record(span, resource)
    got = fast.convert_span(span, resource)
    if got is None:
        return  # given up: the Python code converts it (and raises, if it must)
    assert expected is not TraceFormatError, f"C accepted a span Python rejects: {span!r}"
    assert got == expected
    assert exact(got) == exact(expected)
    assert got.resource is resource


@needs_c
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(spans(), max_size=8))
def test_a_request_reads_the_same_with_and_without_c(batch):
    request = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name",
                                                               "value": {"stringValue": "s"}}]},
                                  "scopeSpans": [{"spans": batch}]}]}

    def read(use_c):
        saved = otlp_json._fast
        otlp_json._fast = fast if use_c else None
        out: list = []
        try:
            otlp_json.fill_records(request, out, "line 1")
            error = None
        except TraceFormatError as exc:
            error = str(exc)
        finally:
            otlp_json._fast = saved
        return [exact(r) for r in out], error

    assert read(True) == read(False)


def test_canonical_collector_spans_are_taken_by_c():
    """The spans the collector writes are the C code's to convert (else it buys nothing)."""
    if fast is None:
        pytest.skip("the C accelerator is not built here")
    span = {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
            "parentSpanId": "eee19b7ec3c1b173", "name": "ChatOpenAI", "kind": 3,
            "startTimeUnixNano": "1544712660000000000", "endTimeUnixNano": 1544712661000000000,
            "attributes": [{"key": "llm.model_name", "value": {"stringValue": "gpt-4o"}},
                           {"key": "llm.token_count.total", "value": {"intValue": "42"}},
                           {"key": "x.ratio", "value": {"doubleValue": 0.5}}],
            "status": {"code": 2}, "events": []}
    record = fast.convert_span(span, {})
    assert record is not None
    assert record == otlp_json._span(span, {}, "span 0")
    assert record.attributes == {"llm.model_name": "gpt-4o", "llm.token_count.total": 42, "x.ratio": 0.5}
    assert (record.status, record.start_ns, record.events) == ("ERROR", 1544712660000000000, ())


def test_spans_with_other_spellings_are_left_to_python():
    if fast is None:
        pytest.skip("the C accelerator is not built here")
    base = {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
            "startTimeUnixNano": "1", "endTimeUnixNano": "2"}
    for change in ({"traceId": "5B8EFFF798038103D269B633813FC60C"}, {"spanId": "0" * 16},
                   {"startTimeUnixNano": "-1"}, {"endTimeUnixNano": "1" * 20}, {"events": [{"name": "e"}]},
                   {"status": {"status_code": 2}}, {"name": 7}, {"parent_span_id": "eee19b7ec3c1b173"}):
        assert fast.convert_span({**base, **change}, {}) is None, change
    assert fast.convert_span([base], {}) is None


@needs_c
def test_converting_many_spans_leaks_nothing():
    """Refcount mistakes show up as blocks that never come back (pymalloc's count)."""
    request_spans = [
        {"traceId": f"{i:032x}", "spanId": f"{i + 1:016x}", "parentSpanId": "", "name": "n",
         "startTimeUnixNano": "1", "endTimeUnixNano": "2", "status": {"code": 1},
         "attributes": [{"key": "a", "value": {"stringValue": "x" * 40}},
                        {"key": "b", "value": {"intValue": "7000001"}},
                        {"key": "d", "value": {"doubleValue": 0.25}},
                        {"key": 5, "value": {"stringValue": "skipped"}},
                        types.MappingProxyType({"key": "c", "value": {"boolValue": True}})]}
        for i in range(1, 2001)
    ]
    resource: dict = {}

    def churn():
        out: list = []
        assert fast.convert_spans(request_spans, 0, resource, out) == len(request_spans)
        for span in request_spans[:200]:
            fast.convert_span(span, resource)
            fast.convert_span({**span, "events": [{}]}, resource)  # given up after reading fields
        del out

    churn()  # warm caches (interned strings, type caches)
    gc.collect()
    before = sys.getallocatedblocks()
    for _ in range(20):
        churn()
    gc.collect()
    grown = sys.getallocatedblocks() - before
    assert grown < 200, f"{grown} blocks not freed after 40,000 conversions"


@needs_c
def test_text_length_counts_only_exact_str_values():
    assert fast.text_length({"a": "xyz", "b": 5, "c": "é"}) == 4
    assert fast.text_length(types.MappingProxyType({"a": "xyz"})) == 0
    assert fast.text_length([]) == 0


@needs_c
def test_bad_calls_are_type_errors_not_crashes():
    with pytest.raises(TypeError):
        fast.convert_spans((), 0, {}, [])
    with pytest.raises(TypeError):
        fast.convert_spans([], 0, {})
    assert fast.convert_spans([{"traceId": 1}], -5, {}, []) == 0
    assert fast.convert_spans([], 3, {}, []) == 3
    with pytest.raises(OverflowError):
        fast.convert_spans([], 10**30, {}, [])
