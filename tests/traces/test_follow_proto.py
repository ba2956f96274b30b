"""Following the collector's ``format: proto`` files (tg_bridge.traces.follow with follow_frames).

As in test_follow.py the collector is simulated by explicit steps on a tmp dir (frames appended
whole or in pieces, renamed to a backup, truncated); every test polls a bounded number of times
and never sleeps.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("opentelemetry.proto")

from tests.support.otlp import proto_frame  # noqa: E402
from tg_bridge.exceptions import TraceFormatError  # noqa: E402
from tg_bridge.traces import follow as follow_module  # noqa: E402
from tg_bridge.traces.follow import TraceFollower  # noqa: E402
from tg_bridge.traces.follow_frames import file_format  # noqa: E402


def _span(trace: int, span: int, parent: int | None = None, text: str | None = None) -> dict:
    out = {"traceId": f"{trace:032x}", "spanId": f"{span:016x}", "name": f"s{span}",
           "startTimeUnixNano": str(1000 + span), "endTimeUnixNano": str(2000 + span),
           "attributes": [{"key": "k", "value": {"stringValue": text or f"v{span}"}}]}  # fmt: skip
    if parent is not None:
        out["parentSpanId"] = f"{parent:016x}"
    return out


def _request(*spans: dict) -> dict:
    return {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "rag"}}]},
                               "scopeSpans": [{"spans": list(spans)}]}]}  # fmt: skip


def _frame(*spans: dict) -> bytes:
    return proto_frame(_request(*spans))


def _line(*spans: dict) -> bytes:
    return json.dumps(_request(*spans), separators=(",", ":")).encode() + b"\n"


def _append(path, data: bytes) -> None:
    with open(path, "ab") as handle:
        handle.write(data)


def _ids(traces) -> list[tuple[int, list[int]]]:
    return [(int(t[0].trace_id, 16), [int(s.span_id, 16) for s in t]) for t in traces]


def _offsets(checkpoint) -> list[int]:
    return [f["offset"] for f in json.loads(checkpoint.read_text())["files"].values()]


@pytest.mark.parametrize(
    ("head", "fmt"),
    [(b"", ""), (b"{", "jsonl"), (b"[", "jsonl"), (b" {", "jsonl"), (b"\n", "jsonl"), (b"\t", "jsonl"),
     (b"\r\n", "jsonl"), (b"\xef\xbb\xbf{", "jsonl"), (b"\x00\x00\x01\x00", "proto"), (b"\x03", "proto"),
     (b"x", "proto")],
)  # fmt: skip
def test_the_format_is_decided_by_the_first_byte(head, fmt):
    assert file_format(head) == fmt


def test_a_frame_split_across_appends_is_read_only_once_whole(tmp_path):
    log, ckpt = tmp_path / "traces.binpb", tmp_path / "ckpt"
    frame = _frame(_span(1, 11), _span(1, 12, 11))
    follower = TraceFollower(tmp_path, ckpt)
    cuts = (0, 2, 4, 9, len(frame) - 1)  # inside the length, at its end, inside the message
    for start, end in zip(cuts, cuts[1:]):
        _append(log, frame[start:end])
        assert follower.poll() == [] and follower.stats.lines == 0
        follower.commit()
        assert _offsets(ckpt) == [0]  # nothing consumed: the frame is not whole yet
    _append(log, frame[cuts[-1]:] + _frame(_span(2, 21)) + _frame(_span(3, 31))[:5])
    assert follower.poll() == []  # two frames' worth: trace 1 not yet quiet (quiet_lines 16)
    assert _ids(follower.poll()) == [(1, [11, 12]), (2, [21])]  # the idle poll
    assert follower.stats.lines == 2 and follower.stats.unframed == 0
    follower.commit()
    assert _offsets(ckpt) == [len(frame) + len(_frame(_span(2, 21)))]  # the partial third waits


def test_rotation_finishes_the_backup_from_the_offset_then_reads_the_new_file(tmp_path):
    log = tmp_path / "traces.binpb"
    _append(log, _frame(_span(1, 11)))
    follower = TraceFollower(str(tmp_path / "traces*.binpb"), quiet_lines=100)
    follower.poll()
    second = _frame(_span(2, 21))
    _append(log, second[:7])  # half written when the exporter rotates...
    log.rename(tmp_path / "traces-2026-12-01T04-30-00.000.binpb")
    _append(tmp_path / "traces-2026-12-01T04-30-00.000.binpb", second[7:])  # ...and finished in the backup
    _append(log, _frame(_span(3, 31)))
    assert follower.poll() == []
    assert sorted(_ids(follower.poll())) == [(1, [11]), (2, [21]), (3, [31])]
    assert follower.stats.rewound == 0 and follower.stats.spans == 3 and follower.stats.unframed == 0


def test_truncation_reads_from_the_start(tmp_path):
    log = tmp_path / "traces.binpb"
    _append(log, _frame(_span(1, 11)) + _frame(_span(2, 21)))
    follower = TraceFollower(tmp_path)
    follower.poll()
    assert _ids(follower.poll()) == [(1, [11]), (2, [21])]
    log.write_bytes(_frame(_span(3, 31)))  # copy-truncate: shorter than the offset
    follower.poll()
    assert _ids(follower.poll()) == [(3, [31])]
    assert follower.stats.rewound == 1 and follower.stats.unframed == 0


def test_a_new_file_with_the_same_first_bytes_is_told_apart_by_its_mark(tmp_path):
    """No line end to check in a frame stream: the bytes before the offset tell."""
    log = tmp_path / "traces.binpb"
    first = _frame(_span(1, 11, text="x" * 6000))  # longer than the 4 KiB head
    _append(log, first + _frame(_span(2, 21)))
    follower = TraceFollower(tmp_path)
    follower.poll()
    assert _ids(follower.poll()) == [(1, [11]), (2, [21])]
    replaced = first + _frame(_span(3, 31, text="y" * 300))
    assert len(replaced) > log.stat().st_size and replaced[:4096] == log.read_bytes()[:4096]
    log.write_bytes(replaced)  # same inode, same head, longer: only the mark differs
    follower.poll()
    assert _ids(follower.poll()) == [(3, [31])]
    assert follower.stats.rewound == 1 and follower.stats.late_spans == 1 and follower.stats.unframed == 0


def test_a_frame_that_does_not_parse_leaves_the_file_counted_and_the_rest_goes_on(tmp_path, caplog):
    bad, good = tmp_path / "a.binpb", tmp_path / "b.binpb"
    junk = b"\xff" * 40  # a length prefix that fits, a message that is not protobuf
    _append(bad, _frame(_span(1, 11)) + struct.pack(">I", len(junk)) + junk + _frame(_span(2, 21)))
    _append(good, _frame(_span(3, 31)))
    follower = TraceFollower(tmp_path, tmp_path / ".ckpt")
    with caplog.at_level(logging.WARNING, logger="tg_bridge"):
        follower.poll()
        traces = follower.poll()
    assert sorted(_ids(traces)) == [(1, [11]), (3, [31])]  # trace 2, after the bad frame, is never read
    assert follower.stats.unframed == 1 and follower.stats.bad_lines == 0
    assert any("a.binpb" in r.getMessage() and "frame 2" in r.getMessage() for r in caplog.records)
    _append(bad, _frame(_span(4, 41)))
    follower.commit()
    again = TraceFollower(tmp_path, tmp_path / ".ckpt")  # the halt survives a restart
    assert again.poll() == [] and again.poll() == [] and again.stats.spans == 0


def test_an_absurd_length_is_never_read_and_a_rewrite_from_zero_resumes(tmp_path):
    log = tmp_path / "traces.binpb"
    _append(log, _frame(_span(1, 11)) + struct.pack(">I", 0x7FFF_FFF0) + b"\x0a" * 64)
    follower = TraceFollower(tmp_path, max_frame_bytes=1 << 20)
    follower.poll()
    assert _ids(follower.poll()) == [(1, [11])]
    assert follower.stats.unframed == 1
    _append(log, _frame(_span(2, 21)))
    assert follower.poll() == [] and follower.stats.unframed == 1  # left: counted once
    log.write_bytes(_frame(_span(3, 31)))  # the exporter starts the file again
    follower.poll()
    assert _ids(follower.poll()) == [(3, [31])] and follower.stats.rewound == 1


def test_a_span_without_ids_skips_its_frame_only(tmp_path):
    log = tmp_path / "traces.binpb"
    no_ids = {"name": "broken", "startTimeUnixNano": "1", "endTimeUnixNano": "2"}
    _append(log, _frame(_span(1, 11), no_ids) + _frame(_span(2, 21)))
    follower = TraceFollower(tmp_path)
    follower.poll()
    assert _ids(follower.poll()) == [(2, [21])]
    assert follower.stats.bad_lines == 1 and follower.stats.unframed == 0


def test_empty_frames_are_consumed_like_blank_lines(tmp_path):
    log = tmp_path / "traces.binpb"
    _append(log, struct.pack(">I", 0) + _frame(_span(1, 11)) + struct.pack(">I", 0))
    follower = TraceFollower(tmp_path, tmp_path / ".ckpt")
    follower.poll()
    assert _ids(follower.poll()) == [(1, [11])] and follower.stats.lines == 1
    follower.commit()
    assert _offsets(tmp_path / ".ckpt") == [log.stat().st_size]


def _stream() -> bytes:
    """Traces of three frames each, the root last (so that idle polls between pieces hand out
    none early), some frames also holding a one-span trace (as a batch does)."""
    frames = []
    for n in range(12):
        trace = 1 + n // 3
        spans = [_span(trace, 100 * trace + n % 3, None if n % 3 == 2 else 100 * trace + 2)]
        if n % 4 == 1:
            spans.append(_span(50 + n, 5000 + n))
        frames.append(_frame(*spans))
    return b"".join(frames)


def test_a_restart_from_the_checkpoint_at_any_cut_is_invisible(tmp_path):
    """Appended in pieces (cuts inside lengths and messages), polled by a follower that runs
    on and by one restarted from the checkpoint before every poll: the same traces at the same
    polls, every span once — and the spans of one pass over the whole file."""
    data = _stream()
    whole = TraceFollower(tmp_path / "one.binpb")
    (tmp_path / "one.binpb").write_bytes(data)
    one_pass = sorted(s.span_id for t in whole.poll() + whole.poll() for s in t)
    assert len(one_pass) == 15
    for step in (3, 11, 37, 100):  # cuts at every kind of place (test above: inside one frame)
        logs = tmp_path / f"step{step}"
        logs.mkdir()
        ckpt, got = logs / ".ckpt", []
        steady = TraceFollower(logs, quiet_lines=2, orphan_polls=10_000)
        pieces = [data[start : start + step] for start in range(0, len(data), step)]
        for piece in [*pieces, b"", b""]:  # two idle polls at the end flush what is open
            _append(logs / "traces.binpb", piece)
            restarted = TraceFollower(logs, ckpt, quiet_lines=2, orphan_polls=10_000)
            polled = restarted.poll()
            restarted.commit()
            assert _ids(polled) == _ids(steady.poll()), step
            got += polled
        assert sorted(s.span_id for t in got for s in t) == one_pass, step
        assert steady.stats.unframed == restarted.stats.unframed == 0 and steady.stats.late_spans == 0


def test_json_and_protobuf_files_in_one_directory_give_equal_records(tmp_path):
    spans = [_span(1, 11), _span(1, 12, 11), _span(2, 21)]
    (tmp_path / "traces.json").write_bytes(_line(*spans))
    (tmp_path / "traces.binpb").write_bytes(_frame(*[dict(s, traceId=f"{int(s['traceId'], 16) + 8:032x}")
                                                     for s in spans]))  # fmt: skip
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf" + _line(_span(30, 301)))
    follower = TraceFollower(tmp_path)
    traces = follower.poll() + follower.poll()
    by_id = {int(t[0].trace_id, 16): t for t in traces}
    assert sorted(by_id) == [1, 2, 9, 10, 30]
    for json_trace, proto_trace in ((1, 9), (2, 10)):
        left = [dataclasses.replace(s, trace_id="") for s in by_id[json_trace]]
        right = [dataclasses.replace(s, trace_id="") for s in by_id[proto_trace]]
        assert repr(left) == repr(right)  # repr: also tells 1 from 1.0 from True
    assert follower.stats.bad_lines == 0 and follower.stats.unframed == 0


def test_without_opentelemetry_proto_a_protobuf_file_is_counted_once_and_left_unread(tmp_path, monkeypatch):
    (tmp_path / "traces.binpb").write_bytes(_frame(_span(1, 11)))
    (tmp_path / "traces.json").write_bytes(_line(_span(2, 21)))
    monkeypatch.setattr(follow_module, "has_protobuf", lambda: False)
    follower = TraceFollower(tmp_path, tmp_path / ".ckpt")
    traces = follower.poll() + follower.poll() + follower.poll()
    assert _ids(traces) == [(2, [21])] and follower.stats.no_proto == 1
    assert "opentelemetry-proto" in follower.stats.skipped()
    follower.commit()
    monkeypatch.undo()  # installed: a restart reads the file it left
    again = TraceFollower(tmp_path, tmp_path / ".ckpt")
    assert _ids(again.poll() + again.poll()) == [(1, [11])] and again.stats.no_proto == 0


def _old_checkpoint(path) -> None:
    """What a follower written before protobuf support saved: no format, mark nor halted."""
    state = json.loads(path.read_text())
    for entry in state["files"].values():
        for key in ("format", "mark", "halted"):
            del entry[key]
    path.write_text(json.dumps(state))


def test_a_checkpoint_from_before_protobuf_following_loads_and_continues(tmp_path):
    log, ckpt = tmp_path / "traces.json", tmp_path / ".ckpt"
    log.write_bytes(_line(_span(1, 11, text="x" * 5000)) + _line(_span(2, 21, 20)))  # a whole 4 KiB head
    follower = TraceFollower(tmp_path, ckpt)
    assert follower.poll() == []  # trace 2 has no root: it stays open, saved in the checkpoint
    assert _ids(follower.poll()) == [(1, [11])]
    follower.commit()
    _old_checkpoint(ckpt)
    assert json.loads(ckpt.read_text())["version"] == 1
    _append(log, _line(_span(2, 20)))
    again = TraceFollower(tmp_path, ckpt)
    again.poll()
    assert _ids(again.poll()) == [(2, [21, 20])]  # nothing read twice, the open trace kept
    assert again.stats.lines == 1 and again.stats.bad_lines == 0
    again.commit()
    assert {f["format"] for f in json.loads(ckpt.read_text())["files"].values()} == {"jsonl"}


@pytest.mark.parametrize(
    ("field", "value"),
    [("format", "xml"), ("format", 3), ("mark", "zz"), ("mark", "abc"), ("mark", "ab" * 17), ("halted", "yes")],
)
def test_a_damaged_new_checkpoint_field_is_a_typed_error(tmp_path, field, value):
    (tmp_path / "traces.binpb").write_bytes(_frame(_span(1, 11)))
    follower = TraceFollower(tmp_path, tmp_path / ".ckpt")
    follower.poll()
    follower.commit()
    state = json.loads((tmp_path / ".ckpt").read_text())
    for entry in state["files"].values():
        entry[field] = value
    (tmp_path / ".ckpt").write_text(json.dumps(state))
    with pytest.raises(TraceFormatError, match="checkpoint"):
        TraceFollower(tmp_path, tmp_path / ".ckpt")


@settings(max_examples=100, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(chunks=st.lists(st.one_of(
    st.binary(max_size=60),
    st.builds(lambda n, body: struct.pack(">I", n) + body, st.integers(0, 80), st.binary(max_size=60)),
    st.builds(lambda n: _frame(_span(n, 10 * n)), st.integers(3, 9)),
), max_size=6), start_frame=st.booleans())
def test_hostile_bytes_never_raise_and_never_stop_the_other_files(tmp_path_factory, chunks, start_frame):
    """Whatever a protobuf file holds (cut frames, small lengths over junk, nested garbage),
    polls return, count what they skip, and a sound file beside it is read in full."""
    logs = tmp_path_factory.mktemp("hostile")
    follower = TraceFollower(logs, logs / ".ckpt", max_frame_bytes=1 << 16)
    _append(logs / "bad.binpb", b"\x00" if not start_frame else _frame(_span(1, 11)))
    for chunk in chunks:
        _append(logs / "bad.binpb", chunk)
        follower.poll()
    _append(logs / "good.binpb", _frame(_span(2, 21)))
    traces = follower.poll() + follower.poll()
    assert (2, [21]) in _ids(traces)
    follower.commit()
    TraceFollower(logs, logs / ".ckpt")  # the checkpoint of any such state loads
