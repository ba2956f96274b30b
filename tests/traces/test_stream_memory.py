"""Grouping per trace with bounded memory: spill to disk, same traces, nothing left behind."""

from __future__ import annotations

import json
import pathlib
import sys
import tracemalloc

from tg_bridge.reconstruction import iter_graphs, load_traces
from tg_bridge.spans import SpanRecord
from tg_bridge.traces import group_by_trace, iter_traces, otlp_json
from tg_bridge.traces.grouping import TraceGrouper

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import gen_otlp


def _record(trace: int, span: int) -> SpanRecord:
    return SpanRecord(trace_id=f"{trace:032x}", span_id=f"{span:016x}", parent_id=None, name=f"s{span}",
                      attributes={"n": span, "t": ("a", "b"), "f": float("inf")})  # fmt: skip


def test_spilled_traces_come_back_whole_and_in_order(tmp_path):
    # Traces interleave (as in a collector file) and come back later, after being spilled.
    order = [1, 2, 3, 1, 4, 5, 6, 2, 7, 1, 8, 9, 3, 10, 1, 11, 12, 2]
    spans = [_record(t, i + 1) for i, t in enumerate(order)]
    with TraceGrouper(max_open_spans=3, spill_dir=str(tmp_path)) as grouper:
        grouper.add_all(spans)
        assert grouper.spilled_spans > 0 and list(tmp_path.iterdir())
        got = list(grouper.traces())
    assert got == list(group_by_trace(spans).values())
    assert [t[0].trace_id for t in got] == [f"{t:032x}" for t in dict.fromkeys(order)]
    assert list(tmp_path.iterdir()) == []  # the spill file is deleted on close


def test_new_traces_need_no_disk_lookup_once_spilling_started(tmp_path):
    """A trace id never spilled is known not to be on disk without asking SQLite (a Bloom
    filter); a spilled trace that continues is still found and kept whole on disk."""
    lookups = []
    spans = [_record(t, t + 1) for t in range(1, 2001)]  # 2,000 one-span traces, 10 held
    late = [_record(5, 9001), _record(1999, 9002)]  # a spilled trace continues; an open one too
    with TraceGrouper(max_open_spans=10, spill_dir=str(tmp_path)) as grouper:
        grouper.add_all(spans[:20])  # the spill file exists from here on
        grouper._connect().set_trace_callback(lookups.append)
        grouper.add_all(spans[20:] + late)
        got = list(grouper.traces())
    assert got == list(group_by_trace(spans + late).values())
    selects = [q for q in lookups if q.startswith("SELECT seq FROM traces WHERE")]
    assert len(selects) < 20, f"{len(selects)} disk lookups for 1,980 new traces"
    assert got[4] == [spans[4], late[0]]


def test_no_spill_file_below_the_bound_and_cleanup_on_early_stop(tmp_path):
    spans = [_record(i % 4, i + 1) for i in range(40)]
    with TraceGrouper(max_open_spans=100, spill_dir=str(tmp_path)) as grouper:
        grouper.add_all(spans)
        assert grouper.spilled_spans == 0 and list(tmp_path.iterdir()) == []
    path = tmp_path / "t.jsonl"
    gen_otlp.write(str(path), 500)
    stream = iter_traces(path, max_open_spans=10, spill_dir=str(tmp_path))
    next(stream)
    assert len(list(tmp_path.glob("*.sqlite"))) == 1
    stream.close()
    assert list(tmp_path.glob("*.sqlite")) == []


def test_iter_traces_with_a_small_bound_equals_grouping_everything(tmp_path):
    path = tmp_path / "t.jsonl"
    gen_otlp.write(str(path), 3000)
    reference = list(group_by_trace(otlp_json.iter_spans(path)).values())
    assert list(iter_traces(path, max_open_spans=7, spill_dir=str(tmp_path))) == reference


def _peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _files(tmp_path, spans):
    jsonl = tmp_path / f"big{spans}.jsonl"
    gen_otlp.write(str(jsonl), spans)
    document = tmp_path / f"big{spans}.json"
    with jsonl.open("rb") as src, document.open("wb") as dst:  # the same spans on ONE line
        dst.write(b'{"resourceSpans":[')
        for i, line in enumerate(src):
            dst.write((b"," if i else b"") + json.dumps(json.loads(line)["resourceSpans"][0]).encode())
        dst.write(b"]}")
    return {"jsonl": jsonl, "document": document}


def test_memory_follows_the_open_traces_not_the_file(tmp_path):
    """Reading every trace of a 20,000-span file (~28 MB) peaks at the same Python heap as a
    4,000-span one (sizes kept small: tracemalloc slows the read several-fold, and the test
    must fit the suite's per-test timeout on a loaded machine): what is held is the bound on open spans, one JSON line (50 traces) or
    one span of the one-line document, and the trace being handed out - never the file."""
    peaks: dict[tuple[str, int], int] = {}
    sizes = {}
    for spans in (4_000, 20_000):
        for layout, path in _files(tmp_path, spans).items():
            counted = []

            def read(path=path, counted=counted):
                for trace in iter_traces(path, max_open_spans=500, spill_dir=str(tmp_path)):
                    counted.append(len(trace))

            peaks[layout, spans] = _peak(read)
            sizes[layout, spans] = path.stat().st_size
            assert sum(counted) == spans and len(counted) == spans // 5
            path.unlink()
    for layout in ("jsonl", "document"):
        small, big = peaks[layout, 4_000], peaks[layout, 20_000]
        assert big < 1.5 * small + (1 << 20), (layout, small, big)  # flat, 5x the spans
        assert big < sizes[layout, 20_000] / 3, (layout, big)  # parsed whole, it is several times the file


def test_iter_graphs_frees_each_graph(tmp_path):
    """Graphs dropped by the caller are freed: the peak for 4x the traces stays flat."""
    peaks = []
    for n in (2_000, 8_000):
        path = tmp_path / f"g{n}.jsonl"
        gen_otlp.write(str(path), n)

        def build(path=path):
            for graph in iter_graphs(path, max_open_spans=200):
                assert graph.metadata["spans"] == 5

        peaks.append(_peak(build))
    assert peaks[1] < 2 * peaks[0], peaks
    assert len(load_traces(tmp_path / "g2000.jsonl")) == 400


def test_the_byte_bound_spills_traces_with_large_prompts(tmp_path):
    """Few spans but large texts: the estimated bytes, not the span count, trigger the spill."""
    spans = [SpanRecord(trace_id=f"{i % 50:032x}", span_id=f"{i + 1:016x}", parent_id=None, name="s",
                        attributes={"input.value": "p" * 10_000}) for i in range(200)]  # fmt: skip
    with TraceGrouper(max_open_spans=10_000, max_open_bytes=100_000, spill_dir=str(tmp_path)) as grouper:
        grouper.add_all(spans)
        assert grouper.spilled_spans > 150  # ~10 of 200 fit in 100 kB
        assert list(grouper.traces()) == list(group_by_trace(spans).values())
