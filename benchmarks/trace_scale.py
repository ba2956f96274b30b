"""Reading production trace files at scale: spans/s and peak memory, streaming vs whole-file.

    python benchmarks/trace_scale.py [--sizes 100000,1000000] [--dir DIR] [--keep] [--repeat N]

Generates OTLP files with benchmarks/gen_otlp.py (5-span RAG traces, 50 traces per request)
in a temporary directory: JSON lines (the collector file exporter's format), the same
spans as ONE JSON document written on a single line (the worst case for a whole-file
reader) and, up to ``--proto-max`` spans, the collector's length-prefixed OTLP protobuf
stream. Each measurement runs in a fresh subprocess, so its peak RSS (VmHWM from
/proc/self/status) is its own; with ``--repeat N`` the row is the run with the least CPU
time of N (the machine may be shared: other jobs inflate both wall and CPU time):

- ``spans``  — ``tg_bridge.traces.iter_spans``: every span parsed and converted, not grouped
  (what a consumer of the span stream or ``--follow`` pays per span);
- ``read``   — ``tg_bridge.traces.iter_traces``: every span parsed and grouped per trace;
- ``graphs`` — ``tg_bridge.reconstruction.iter_graphs``: read + one graph per trace, each
  dropped after use (what ``tg-bridge graph`` / ``optimize`` do);
- ``optimize`` — ``tg_bridge.offline.optimize_traces`` (what ``tg-bridge optimize --traces``
  runs) with feedback on 1 trace in 100 and a scripted engine: read every trace, rebuild the
  ones with feedback, one backward pass and proposal (engine time ~0);
- ``follow`` — ``tg_bridge.traces.follow.TraceFollower`` on a directory holding the file alone
  (a hard link, as the collector leaves it): one poll reads the backlog, an idle poll flushes
  the open traces (what ``graph --follow`` reads before rebuilding; JSONL and protobuf only);
- ``old``    — the whole-file reader this replaces (``otlp_json.iter_spans`` + grouping
  everything + ``reconstruct`` per trace, graphs kept), 100k only.

Reports wall seconds, CPU seconds (user+sys of the run: the machine may be shared), spans
per wall second and per CPU second, and peak RSS in MB. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _peak_mb() -> float:
    try:
        for line in pathlib.Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _feedback_for(path: str) -> list:
    """Feedback on 1 trace in 100 (what ``optimize`` mode uses): a score and a text."""
    from tg_bridge.offline import FeedbackEntry
    from tg_bridge.traces import iter_spans

    ids = list(dict.fromkeys(span.trace_id for span in iter_spans(path)))
    return [FeedbackEntry(tid, 0.0, "The answer ignored the retrieved context.") for tid in ids[::100]]


def _measure(mode: str, path: str) -> dict[str, float]:
    """Run one measurement in this process (called in a fresh subprocess)."""
    import tg_bridge.reconstruction  # noqa: F401 - imports are not what is measured
    import tg_bridge.traces  # noqa: F401

    feedback = _feedback_for(path) if mode == "optimize" else []  # outside the timed region
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    spans = traces = 0
    if mode == "optimize":
        from tg_bridge.offline import optimize_traces
        from tg_bridge.testing import FakeEngine

        engine = FakeEngine(lambda messages, fmt: {"improved_value": "Use the context to answer {question}."}
                            if isinstance(fmt, dict) else "Answers should cite the context.")  # fmt: skip
        result = optimize_traces(path, feedback, engine=engine)
        traces = int(result.patch.metadata.get("traces", 0))
        spans = 5 * traces  # gen_otlp writes 5-span traces
    elif mode == "spans":
        from tg_bridge.traces import iter_spans

        seen = set()
        for span in iter_spans(path):
            spans += 1
            seen.add(span.trace_id)
        traces = len(seen)
    elif mode == "read":
        from tg_bridge.traces import iter_traces

        for trace in iter_traces(path):
            traces += 1
            spans += len(trace)
    elif mode == "graphs":
        from tg_bridge.reconstruction import iter_graphs

        pool: dict = {}
        for graph in iter_graphs(path, parameters=pool):
            traces += 1
            spans += int(graph.metadata.get("spans", 0))
    elif mode == "follow":
        from tg_bridge.traces.follow import TraceFollower

        with tempfile.TemporaryDirectory(dir=os.path.dirname(path)) as logs:
            os.link(path, os.path.join(logs, os.path.basename(path)))
            follower = TraceFollower(logs)
            for _ in range(2):  # the backlog, then an idle poll that completes the rest
                for trace in follower.iter_poll():
                    traces += 1
                    spans += len(trace)
            assert follower.stats.bad_lines == follower.stats.unframed == 0, follower.stats
    elif mode == "old":
        from tg_bridge.reconstruction import reconstruct
        from tg_bridge.traces import group_by_trace
        from tg_bridge.traces.otlp_json import iter_spans as whole_file_spans

        pool = {}
        grouped = group_by_trace(whole_file_spans(path))
        graphs = []
        for trace_id in list(grouped):
            trace = grouped.pop(trace_id)
            spans += len(trace)
            graphs.append(reconstruct(trace, parameters=pool))
        traces = len(graphs)
    else:
        raise SystemExit(f"unknown mode {mode}")
    wall = time.perf_counter() - t0
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    return {"spans": spans, "traces": traces, "wall": wall, "cpu": cpu, "peak_mb": _peak_mb()}


def _write_document(jsonl: str, out: str) -> None:
    """The JSONL file's requests merged into ONE request on one line, written streaming."""
    with open(jsonl, "rb") as src, open(out, "wb") as dst:
        dst.write(b'{"resourceSpans":[')
        first = True
        for line in src:
            request = json.loads(line)
            for rs in request["resourceSpans"]:
                if not first:
                    dst.write(b",")
                dst.write(json.dumps(rs, separators=(",", ":")).encode())
                first = False
        dst.write(b"]}\n")


def _write_protobuf(jsonl: str, out: str) -> None:
    """The JSONL file's requests as the collector's ``format: proto`` stream (size-prefixed).

    The JSONL ids are hex (what the collector writes) while protobuf-JSON reads ``bytes``
    fields as base64: they are converted first, so the ids are 16 and 8 bytes as in real
    OTLP protobuf (parsed as they are, a 32-character hex id became 24 bytes)."""
    import base64
    import struct

    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    def b64(hex_id: str) -> str:
        return base64.b64encode(bytes.fromhex(hex_id)).decode("ascii")

    with open(jsonl, "rb") as src, open(out, "wb") as dst:
        for line in src:
            request = json.loads(line)
            for rs in request["resourceSpans"]:
                for ss in rs["scopeSpans"]:
                    for span in ss["spans"]:
                        for key in ("traceId", "spanId", "parentSpanId"):
                            if span.get(key):
                                span[key] = b64(span[key])
            message = json_format.ParseDict(request, ExportTraceServiceRequest()).SerializeToString()
            dst.write(struct.pack(">I", len(message)) + message)


def _run(mode: str, path: str, repeat: int = 1) -> dict[str, float]:
    env = dict(os.environ)
    root = str(HERE.parent)
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    runs = []
    for _ in range(max(1, repeat)):
        out = subprocess.run([sys.executable, __file__, "--measure", mode, path], env=env,
                             capture_output=True, text=True, check=True)  # fmt: skip
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    best = min(runs, key=lambda r: r["cpu"])
    best["peak_mb"] = max(r["peak_mb"] for r in runs)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--dir", help="where to write the generated files (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--modes", default="read,graphs,old")
    parser.add_argument("--repeat", type=int, default=1, help="runs per row; the least CPU time is kept")
    parser.add_argument("--proto-max", type=int, default=100_000, help="largest size also run as protobuf")
    parser.add_argument("--measure", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(_measure(*args.measure)))
        return
    import gen_otlp

    tmp = tempfile.mkdtemp(dir=args.dir, prefix="trace_scale-")
    modes = args.modes.split(",")
    print(f"cores={os.cpu_count()} load_before={os.getloadavg()[0]:.1f} python={sys.version.split()[0]}")
    print("| spans | file | MB | mode | traces | wall s | CPU s | spans/s (wall) | spans/s (CPU) | peak RSS MB | load |")
    print("|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            jsonl = os.path.join(tmp, f"spans{size}.jsonl")
            gen_otlp.write(jsonl, size)
            document = os.path.join(tmp, f"spans{size}.json")
            _write_document(jsonl, document)
            files = [("JSONL", jsonl), ("JSON document", document)]
            if size <= args.proto_max:
                proto = os.path.join(tmp, f"spans{size}.binpb")
                _write_protobuf(jsonl, proto)
                files.append(("protobuf", proto))
            for label, path in files:
                mb = os.path.getsize(path) / 1e6
                for mode in modes:
                    if mode == "old" and (size > 100_000 or label == "protobuf"):
                        continue  # memory grows with the file: not run at 1M; JSON only
                    if mode == "follow" and label == "JSON document":
                        continue  # the collector writes lines or frames, never one document
                    r = _run(mode, path, args.repeat)
                    print(f"| {size:,} | {label} | {mb:.0f} | {mode} | {r['traces']:,} | {r['wall']:.1f} | "
                          f"{r['cpu']:.2f} | {r['spans'] / r['wall']:,.0f} | {r['spans'] / r['cpu']:,.0f} | "
                          f"{r['peak_mb']:.0f} | {os.getloadavg()[0]:.1f} |", flush=True)  # fmt: skip
            if not args.keep:
                for _, path in files:
                    os.unlink(path)
    finally:
        if not args.keep:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    print(f"load_after={os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
