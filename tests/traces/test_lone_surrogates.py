"""A lone surrogate in trace text reaches every place that encodes text, and none raises.

JSON allows ``"\\ud800"``: the trace readers hand it over as one code point that UTF-8 cannot
encode. Hashes and internal round trips keep it exactly (``surrogatepass``: distinct texts
stay distinct, other texts encode as before); text that leaves the process (a Graphviz
input) gets U+FFFD instead.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tg_bridge.engines.cache import cache_key
from tg_bridge.graph import Graph
from tg_bridge.loop.batching import Example, fingerprint
from tg_bridge.spans import SpanRecord, spans_from_json_bytes, spans_to_json_bytes
from tg_bridge.traces.follow import TraceFollower
from tg_bridge.variable import Variable

LONE = "ask \ud800 nicely"


def _record(text: str = LONE) -> SpanRecord:
    return SpanRecord(trace_id="t", span_id="s", parent_id=None, name=f"n {text}",
                      attributes={"input.value": text, "list": (text, 1)},
                      events=({"name": "e", "attributes": {"content": text}},))  # fmt: skip


def test_span_records_round_trip_a_lone_surrogate_exactly():
    record = _record()
    assert spans_from_json_bytes(spans_to_json_bytes([record])) == [record]
    plain = _record("plain é")
    assert spans_to_json_bytes([plain]).decode("utf-8")  # other text: plain UTF-8 as before


def test_a_follow_checkpoint_keeps_an_open_trace_with_a_lone_surrogate(tmp_path):
    span = {"traceId": "1" * 32, "spanId": "2" * 16, "parentSpanId": "3" * 16, "name": "child",
            "attributes": [{"key": "input.value", "value": {"stringValue": LONE}}]}  # fmt: skip
    line = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}) + "\n"
    (tmp_path / "traces.json").write_text(line, encoding="ascii")  # json.dumps escapes it
    ckpt = tmp_path / "ckpt"
    first = TraceFollower(tmp_path, ckpt, orphan_polls=10)
    assert first.poll() == []  # the root is still missing: the trace stays open
    first.commit()  # raised UnicodeEncodeError
    again = TraceFollower(tmp_path, ckpt, orphan_polls=10)
    (held,) = again._open.values()
    assert held.spans[0].attributes["input.value"] == LONE


def test_cache_keys_and_dataset_fingerprints_hash_a_lone_surrogate():
    key = cache_key("e", "m", [{"role": "user", "content": LONE}], None, {})
    other = cache_key("e", "m", [{"role": "user", "content": "ask \udfff nicely"}], None, {})
    assert len(key) == 64 and key != other
    # other text keeps the key it had before (computed with the strict UTF-8 encoding): a
    # cache filled earlier still hits
    plain = cache_key("e", "m", [{"role": "user", "content": "ask é nicely"}], None, {})
    assert plain == "e08ead237578210185a79018fa223e00601c2623d8dfa61d9f3023ce9e340ee3"

    prints = {fingerprint([Example({"q": q}, "a")]) for q in (LONE, "ask \udfff nicely", "ask")}
    assert len(prints) == 3
    assert fingerprint([Example({"q": "é"}, "a")]) == "0ea8682501b80b41"  # as before: resume still works


def test_graphviz_gets_valid_utf8_for_a_lone_surrogate(monkeypatch):
    from tg_bridge import views_svg

    sent: list[bytes] = []

    def fake_run(args, *, input, **kwargs):  # noqa: A002 - subprocess.run's own name
        sent.append(input)
        return subprocess.CompletedProcess(args, 1, b"", b"fake dot: no drawing")

    monkeypatch.setattr(views_svg.shutil, "which", lambda name: "/usr/bin/dot")
    monkeypatch.setattr(views_svg.subprocess, "run", fake_run)
    # a span name becomes the node's name, shown in its label head (the value is re-wrapped)
    graph = Graph([Variable(LONE, role="system prompt", requires_grad=True, name="step \udfff")])
    assert views_svg.dot_svg(graph) is None  # the fake dot failed; the input was still sent
    (data,) = sent  # encoding it raised before, and the drawing fell back to our own
    assert "step \ufffd" in data.decode("utf-8")


def test_a_patch_file_keeps_the_lone_surrogate_of_a_traced_prompt(tmp_path):
    from tg_bridge.patching.patch import Change, Patch
    from tg_bridge.variable import content_hash

    old, new = "Be \ud800 terse.", "Be terse \udfff and exact."  # a proposal may quote it back
    change = Change("llm/system[0]#1480b23c073d827f", "replace", old, new, content_hash(old))
    path = Patch([change], {"note": "from \ud800 traces"}).save(tmp_path / "patch.json")  # raised
    text = (tmp_path / "patch.json").read_bytes().decode("utf-8")  # a valid UTF-8 file
    assert "\\ud800" in text  # the JSON escape, read back as the same code point
    loaded = Patch.load(path)
    assert [(c.old, c.new, c.old_hash) for c in loaded.changes] == [(old, new, content_hash(old))]
    assert loaded.metadata["note"] == "from \ud800 traces"
    plain = Patch([Change("t", "replace", "é", "è", content_hash("é"))]).to_json()
    assert '"old": "é"' in plain  # other text stays as it was: no escapes


def test_a_protobuf_string_holding_surrogate_bytes_is_a_located_error(tmp_path):
    """Protobuf strings must be UTF-8; a writer that put a surrogate's bytes (``ED A0 80``)
    in one makes the message unreadable: a TraceFormatError naming the byte, not a crash."""
    import struct

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

    from tg_bridge.exceptions import TraceFormatError
    from tg_bridge.reconstruction import load_traces

    span = Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="llm XYZ")
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])])
    raw = request.SerializeToString().replace(b"XYZ", b"\xed\xa0\x80")  # same length: sizes stay right
    for name, data in (("one.pb", raw), ("stream.pb", struct.pack(">I", len(raw)) + raw)):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(TraceFormatError, match="byte 0"):
            load_traces(tmp_path / name)
