"""Reconstruction throughput: generate a 100,000-span OTLP JSON file and load it.

    python benchmarks/reconstruct_throughput.py [--spans 100000] [--keep PATH]

Prints a small table (generate / read_spans / load_traces) and a last line
``spans_per_second=<n> peak_mb=<n>`` for load_traces (read + reconstruct, one graph per
trace); peak_mb is the process's peak RSS growth over the baseline (resource.getrusage).
"""

from __future__ import annotations

import argparse
import gc
import os
import pathlib
import resource
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import gen_otlp  # noqa: E402

from tg_bridge.reconstruction import load_traces  # noqa: E402
from tg_bridge.traces import read_spans  # noqa: E402


def _rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--keep", help="write the generated file here and keep it")
    args = parser.parse_args()
    tmp = None
    if args.keep:
        path = args.keep
    else:
        tmp = tempfile.TemporaryDirectory()
        path = os.path.join(tmp.name, "spans.jsonl")
    rows = []
    t0 = time.perf_counter()
    n = gen_otlp.write(path, args.spans)
    rows.append(("generate", n, time.perf_counter() - t0, None))
    size_mb = os.path.getsize(path) / 1e6

    gc.collect()
    base = _rss_mb()
    t0 = time.perf_counter()
    spans = read_spans(path)
    rows.append(("read_spans", len(spans), time.perf_counter() - t0, _rss_mb() - base))
    del spans
    gc.collect()

    t0 = time.perf_counter()
    pool: dict = {}
    graphs = load_traces(path, parameters=pool)
    elapsed = time.perf_counter() - t0
    peak = _rss_mb() - base
    rows.append(("load_traces", n, elapsed, peak))
    nodes = sum(len(g.nodes) for g in graphs)

    print(f"file: {size_mb:.1f} MB, {n} spans, {len(graphs)} traces -> {nodes} nodes, {len(pool)} parameters")
    print(f"{'step':<12} {'spans':>8} {'seconds':>8} {'spans/s':>9} {'peak MB':>8}")
    for step, count, secs, mb in rows:
        mb_text = f"{mb:8.0f}" if mb is not None else f"{'-':>8}"
        print(f"{step:<12} {count:>8} {secs:>8.2f} {count / secs:>9.0f} {mb_text}")
    print(f"spans_per_second={n / elapsed:.0f} peak_mb={peak:.0f}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
