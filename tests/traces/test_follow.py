"""Following rotating collector files from a checkpoint (tg_bridge.traces.follow).

The collector is simulated by explicit steps on a tmp dir (append lines, half-write a line,
rename to a backup, truncate); every test polls a bounded number of times and never sleeps.
"""

from __future__ import annotations

import json
import os
import threading

import pytest

from tg_bridge.exceptions import TraceFormatError
from tg_bridge.traces.follow import TraceFollower, follow_traces


def _span(trace: int, span: int, parent: int | None = None) -> dict:
    out = {"traceId": f"{trace:032x}", "spanId": f"{span:016x}", "name": f"s{span}",
           "startTimeUnixNano": str(1000 + span), "endTimeUnixNano": str(2000 + span),
           "attributes": [{"key": "k", "value": {"stringValue": f"v{span}"}}]}  # fmt: skip
    if parent is not None:
        out["parentSpanId"] = f"{parent:016x}"
    return out


def _line(*spans: dict) -> bytes:
    request = {"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": list(spans)}]}]}
    return json.dumps(request, separators=(",", ":")).encode() + b"\n"


def _append(path, data: bytes) -> None:
    with open(path, "ab") as handle:
        handle.write(data)


def _ids(traces) -> list[tuple[int, list[int]]]:
    return [(int(t[0].trace_id, 16), [int(s.span_id, 16) for s in t]) for t in traces]


def test_rooted_traces_complete_after_quiet_lines_or_an_idle_poll(tmp_path):
    log = tmp_path / "traces.json"
    _append(log, _line(_span(1, 11), _span(1, 12, 11)) + _line(_span(2, 21)))
    follower = TraceFollower(tmp_path, quiet_lines=2)
    assert follower.poll() == []  # trace 1 was extended 1 line ago, trace 2 just now
    _append(log, _line(_span(3, 31, 30)))  # one more line: trace 1 has been quiet for 2 lines
    assert _ids(follower.poll()) == [(1, [11, 12])]
    assert _ids(follower.poll()) == [(2, [21])]  # idle poll: rooted traces are complete
    assert follower.poll() == []  # trace 3 has no root yet: an orphan ages
    _append(log, _line(_span(3, 30)))
    follower.poll()  # the root arrived on a non-idle poll
    assert _ids(follower.poll()) == [(3, [31, 30])]
    assert follower.stats.spans == 5 and follower.stats.traces == 3


def test_a_half_written_line_is_read_only_once_complete(tmp_path):
    log = tmp_path / "traces.json"
    line = _line(_span(1, 11))
    _append(log, line[:17])
    follower = TraceFollower(tmp_path, tmp_path / "ckpt")
    assert follower.poll() == [] and follower.stats.lines == 0
    follower.commit()
    state = json.loads((tmp_path / "ckpt").read_text())
    assert [f["offset"] for f in state["files"].values()] == [0]
    _append(log, line[17:])
    follower.poll()
    assert _ids(follower.poll()) == [(1, [11])]
    assert follower.stats.bad_lines == 0


def test_rotation_reads_the_backup_to_its_end_then_the_new_file_once(tmp_path):
    log = tmp_path / "traces.json"
    _append(log, _line(_span(1, 11)))
    follower = TraceFollower(str(tmp_path / "traces*.json"), quiet_lines=100)
    follower.poll()
    _append(log, _line(_span(2, 21)))  # written after the poll, before the rotation
    os.rename(log, tmp_path / "traces-2026-12-01T04-30-00.000.json")
    _append(log, _line(_span(3, 31)))  # the new file, same name
    assert follower.poll() == []  # lines were read: not idle
    assert sorted(_ids(follower.poll())) == [(1, [11]), (2, [21]), (3, [31])]
    assert follower.stats.spans == 3 and follower.stats.rewound == 0
    os.unlink(tmp_path / "traces-2026-12-01T04-30-00.000.json")  # max_backups deleted it
    follower.poll()
    assert len(follower._files) == 1


def test_restart_from_the_checkpoint_keeps_open_traces_and_rereads_nothing(tmp_path):
    log, ckpt = tmp_path / "traces.json", tmp_path / "state" / "ckpt.json"
    ckpt.parent.mkdir()
    _append(log, _line(_span(1, 11)) + _line(_span(2, 22, 21)))  # trace 2: a child, root pending
    first = TraceFollower(tmp_path, ckpt, orphan_polls=10)
    first.poll()
    assert _ids(first.poll()) == [(1, [11])]
    first.commit()
    assert not os.path.exists(str(ckpt) + ".tmp")
    _append(log, _line(_span(2, 21)))
    second = TraceFollower(tmp_path, ckpt, orphan_polls=10)
    second.poll()
    assert _ids(second.poll()) == [(2, [22, 21])]
    assert second.stats.spans == 1  # only the new line was read
    _append(log, _line(_span(1, 12, 11)))  # a late span of a trace handed out before the restart
    second.poll()
    assert second.poll() == [] and second.stats.late_spans == 1


def test_uncommitted_poll_is_read_again_after_a_restart(tmp_path):
    log, ckpt = tmp_path / "traces.json", tmp_path / "ckpt"
    _append(log, _line(_span(1, 11)))
    first = TraceFollower(tmp_path, ckpt)
    first.poll()
    first.commit()
    assert _ids(first.poll()) == [(1, [11])]  # handed out, but the process dies before commit
    again = TraceFollower(tmp_path, ckpt)
    assert _ids(again.poll()) == [(1, [11])]  # at-least-once


def test_truncated_or_replaced_file_is_read_from_the_start(tmp_path):
    log = tmp_path / "traces.json"
    _append(log, _line(_span(1, 11)) + _line(_span(2, 21)))
    follower = TraceFollower(tmp_path)
    follower.poll()
    follower.poll()
    log.write_bytes(_line(_span(3, 31)))  # copy-truncate: same inode, shorter
    follower.poll()
    assert _ids(follower.poll()) == [(3, [31])]
    assert len(_line(_span(6, 61))) == os.path.getsize(log)
    log.write_bytes(_line(_span(6, 61)))  # same inode, same size, other bytes
    follower.poll()
    assert _ids(follower.poll()) == [(6, [61])]
    assert follower.stats.rewound == 2


def test_bad_and_overlong_lines_are_skipped_and_counted(tmp_path):
    log = tmp_path / "traces.json"
    follower = TraceFollower(tmp_path, max_line_bytes=300)
    _append(log, b'{"resourceSpans": 5}\n' + b"\x00garbage\n" + b'{"unterminated": \n' + _line(_span(1, 11)))
    _append(log, b'{"x": "' + b"a" * 400)  # an over-long line still being written
    follower.poll()
    assert _ids(follower.poll()) == [(1, [11])]
    assert follower.stats.bad_lines == 3 and follower.stats.long_lines == 1
    _append(log, b"a" * 400 + b'"}\n' + _line(_span(2, 21)))
    follower.poll()
    assert _ids(follower.poll()) == [(2, [21])]
    assert follower.stats.long_lines == 1 and follower.stats.bad_lines == 3


def test_orphans_after_orphan_polls_and_memory_bound_forces_out(tmp_path):
    log = tmp_path / "traces.json"
    _append(log, _line(_span(1, 12, 11)))
    follower = TraceFollower(tmp_path, orphan_polls=3)
    assert [follower.poll() for _ in range(3)] == [[], [], []]
    assert _ids(follower.poll()) == [(1, [12])]
    small = TraceFollower(tmp_path / "other*", max_open_spans=2, quiet_lines=50)
    other = tmp_path / "other.json"
    _append(other, _line(_span(7, 71), _span(8, 81), _span(9, 91)))
    assert _ids(small.poll()) == [(7, [71])]
    assert small.stats.forced == 1


def test_damaged_checkpoint_is_a_typed_error(tmp_path):
    ckpt = tmp_path / "ckpt"
    for content in (b"{", b"[]", b'{"version": 1, "tick": 0, "files": {"1:2": {"name": "x", "offset": -5}}, "open": []}',
                    b'{"version": 1, "tick": 0, "files": {}, "open": [{"trace_id": "t", "spans": [[1]]}]}'):  # fmt: skip
        ckpt.write_bytes(content)
        with pytest.raises(TraceFormatError, match="checkpoint"):
            TraceFollower(tmp_path, ckpt)


def test_follow_traces_is_bounded_by_max_polls_and_stops_on_the_event(tmp_path):
    log, ckpt = tmp_path / "traces.json", tmp_path / "ckpt"
    _append(log, _line(_span(1, 11)) + _line(_span(2, 21)))
    got = list(follow_traces(tmp_path, ckpt, max_polls=3, interval=0))
    assert _ids(got) == [(1, [11]), (2, [21])]
    assert json.loads(ckpt.read_text())["open"] == []
    stop = threading.Event()
    _append(log, _line(_span(3, 31)))
    seen = []
    for trace in follow_traces(tmp_path, ckpt, stop=stop, interval=0):
        seen.append(trace)
        stop.set()  # what the CLI's SIGTERM/SIGINT handler does
    assert _ids(seen) == [(3, [31])]
    assert list(follow_traces(tmp_path, ckpt, max_polls=2, interval=0)) == []  # committed before stopping


def test_a_new_file_on_a_reused_inode_with_the_same_first_bytes_is_read_from_the_start(tmp_path):
    log = tmp_path / "traces.json"
    long_span = _span(1, 11)
    long_span["attributes"][0]["value"]["stringValue"] = "x" * 6000  # first line longer than the head
    first = _line(long_span)
    _append(log, first)
    follower = TraceFollower(tmp_path)
    follower.poll()
    assert _ids(follower.poll()) == [(1, [11])]
    longer = dict(long_span, attributes=[{"key": "k", "value": {"stringValue": "x" * 7000}}])
    replaced = _line(longer) + _line(_span(2, 21))
    assert replaced[:4096] == first[:4096] and replaced[len(first) - 1 : len(first)] != b"\n"
    log.write_bytes(replaced)  # same inode, same first 4 KiB, longer: only the line end tells
    follower.poll()
    assert _ids(follower.poll()) == [(2, [21])]
    assert follower.stats.rewound == 1 and follower.stats.late_spans == 1 and follower.stats.bad_lines == 0


def test_iter_poll_hands_out_each_trace_before_reading_further_lines(tmp_path):
    """A backlog read in one poll is not held whole: each trace comes out as soon as the line
    completing it was read (memory: the open traces, not the poll)."""
    log = tmp_path / "traces.json"
    _append(log, b"".join(_line(_span(t, 10 * t)) for t in range(1, 6)))
    follower = TraceFollower(tmp_path, quiet_lines=1)
    polled = follower.iter_poll()
    assert _ids([next(polled)]) == [(1, [10])]
    assert follower.stats.lines == 2  # the second line completed the first trace; nothing more read
    assert _ids(list(polled)) == [(2, [20]), (3, [30]), (4, [40])]
    assert _ids(list(follower.iter_poll())) == [(5, [50])]  # the idle poll completes the last one
    assert follower.stats.traces == 5 and follower.stats.lines == 5
