"""Where the time of reading an OTLP protobuf stream goes: a phase split, CPU seconds.

    python benchmarks/proto_phases.py FILE.binpb

FILE is a collector ``format: proto`` stream (``trace_scale.py --keep`` writes one). Phases,
each a full pass over the file: ``parse`` (upb ``ParseFromString`` of every message, held in
memory beforehand), ``parse+fields`` (plus reading every span field and attribute through the
protobuf objects, nothing built), ``proto_spans`` (the reader: records built, no grouping,
cyclic GC off), ``iter_spans`` (the public streaming reader) and ``iter_traces`` (records
grouped per trace, GC as in normal use). Prints one line per phase.
"""

from __future__ import annotations

import gc
import resource
import struct
import sys
from collections.abc import Callable
from typing import Any


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _phase(label: str, run: Callable[[], Any]) -> None:
    start = _cpu()
    result = run()
    print(f"{label:14s} {_cpu() - start:6.3f} CPU s  ({result})", flush=True)


def main(path: str) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from tg_bridge.traces import iter_spans, iter_traces
    from tg_bridge.traces.otlp_proto import proto_spans

    with open(path, "rb") as handle:
        data = handle.read()
    frames, offset = [], 0
    while offset < len(data):
        (length,) = struct.unpack_from(">I", data, offset)
        frames.append(data[offset + 4 : offset + 4 + length])
        offset += 4 + length

    def parse() -> int:
        for frame in frames:
            ExportTraceServiceRequest().ParseFromString(frame)
        return len(frames)

    def fields() -> int:
        count = 0
        for frame in frames:
            message = ExportTraceServiceRequest()
            message.ParseFromString(frame)
            for rs in message.resource_spans:
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        count += 1
                        touched = (span.trace_id.hex(), span.span_id.hex(), span.parent_span_id, span.name,
                                   span.start_time_unix_nano, span.end_time_unix_nano, span.status.code,
                                   span.events)  # fmt: skip
                        for kv in span.attributes:
                            touched = (kv.key, kv.value.WhichOneof("value"))
                        del touched
        return count

    def reader() -> int:
        with open(path, "rb") as handle:
            return sum(1 for _ in proto_spans(handle, path, max_message_bytes=64 << 20))

    gc.disable()
    _phase("parse", parse)
    _phase("parse+fields", fields)
    _phase("proto_spans", reader)
    _phase("iter_spans", lambda: sum(1 for _ in iter_spans(path)))
    gc.enable()
    _phase("iter_traces", lambda: sum(len(trace) for trace in iter_traces(path)))


if __name__ == "__main__":
    main(sys.argv[1])
