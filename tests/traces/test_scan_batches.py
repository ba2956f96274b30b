"""The document scanner parses runs of sibling spans in one go (otlp_scan._SiblingGuess.siblings).

What must hold: the same records as reading span by span, errors still name the exact byte
of the bad span (with the records before it first), and a file where the guess keeps failing
(separators nested in spans) costs a bounded number of extra parses — counted, not timed.
"""

from __future__ import annotations

import json

import pytest

from tg_bridge.exceptions import TraceFormatError
from tg_bridge.traces import fastjson, read_spans
from tg_bridge.traces.otlp_scan import scan_spans

pytestmark = pytest.mark.usefixtures("both_converters")


def _span(n, **extra):
    span = {"traceId": f"{n // 5 + 1:032x}", "spanId": f"{n + 1:016x}", "name": f"s{n}",
            "startTimeUnixNano": str(1000 + n), "endTimeUnixNano": str(2000 + n),
            "attributes": [{"key": "input.value", "value": {"stringValue": f"question {n}"}},
                           {"key": "llm.token_count.total", "value": {"intValue": str(n)}}],
            "status": {"code": 1}}  # fmt: skip
    span.update(extra)
    return span


def _request(spans):
    return {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name",
                                                            "value": {"stringValue": "svc"}}]},
                               "scopeSpans": [{"scope": {"name": "x"}, "spans": spans}]}]}


def _document(tmp_path, requests, name="doc.json"):
    path = tmp_path / name
    path.write_text(json.dumps(requests, separators=(",", ":")))  # one line: the scanner reads it
    return path


def _jsonl(tmp_path, requests):
    path = tmp_path / "same.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in requests))
    return path


def _scan(path, chunk=1 << 20):
    with open(path, "rb") as handle:
        return list(scan_spans(handle, str(path), chunk_size=chunk))


@pytest.fixture
def parses(monkeypatch):
    """How many times the fast JSON parser was called."""
    count = [0]
    real = fastjson.loads_fast

    def counting(raw):
        count[0] += 1
        return real(raw)

    monkeypatch.setattr(fastjson, "loads_fast", counting)
    return count


def test_many_lists_of_many_spans_read_as_lines_do_with_few_parses(tmp_path, parses):
    # 30 requests of 97 spans: batches of siblings run into the end of every list
    requests = [_request([_span(r * 97 + i) for i in range(97)]) for r in range(30)]
    path = _document(tmp_path, requests)
    records = _scan(path)
    assert len(records) == 30 * 97
    assert records == read_spans(_jsonl(tmp_path, requests))
    assert parses[0] < len(records) / 10, f"{parses[0]} parses for {len(records)} spans: not batched"


@pytest.mark.parametrize("chunk", [1 << 10, 1 << 14, 1 << 20])
def test_a_bad_span_inside_a_batch_names_its_own_byte(tmp_path, chunk):
    spans = [_span(i) for i in range(100)]
    spans[40]["startTimeUnixNano"] = "-5"  # a typed error from the per-span conversion
    path = _document(tmp_path, [_request(spans)])
    data = path.read_bytes()
    bad = data.index(b'{"traceId":"%032x","spanId":"%016x"' % (9, 41))  # the "{" that opens span 40
    got = []
    with pytest.raises(TraceFormatError) as info, open(path, "rb") as handle:
        for record in scan_spans(handle, str(path), chunk_size=chunk):
            got.append(record)
    assert [r.name for r in got] == [f"s{i}" for i in range(40)]
    assert f"byte {bad}" in (info.value.where or ""), info.value.where
    assert "startTimeUnixNano" in str(info.value)


def test_separators_nested_in_every_span_cost_a_bounded_number_of_parses(tmp_path, parses):
    """Links repeat the span separator inside each span: every batch guess fails. The
    back-off keeps the extra parses to about one per span."""
    links = [{"traceId": f"{9:032x}", "spanId": f"{9:016x}"}, {"traceId": f"{8:032x}", "spanId": f"{8:016x}"}]
    spans = [_span(i, links=links) for i in range(2000)]
    path = _document(tmp_path, [_request(spans)])
    records = _scan(path)
    assert [r.span_id for r in records] == [f"{i + 1:016x}" for i in range(2000)]
    assert records == read_spans(_jsonl(tmp_path, [_request(spans)]))
    assert parses[0] <= 3 * len(spans), f"{parses[0]} parses for {len(spans)} spans"
