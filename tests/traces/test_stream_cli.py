"""`tg-bridge graph` reads every layout the streaming readers accept, with the same output."""

from __future__ import annotations

import json
import pathlib
import struct

import pytest

from tg_bridge import cli

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures"


def _graph(path, capsys, *extra):
    code = cli.main(["graph", str(path), *extra])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out.replace(str(path), "FILE")


@pytest.mark.parametrize("fmt", ["text", "json", "mermaid"])
def test_graph_output_is_the_same_for_jsonl_one_document_and_protobuf(tmp_path, capsys, fmt):
    pytest.importorskip("opentelemetry.proto")
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    source = FIXTURES / "oi_langchain_agent.jsonl"
    lines = [line for line in source.read_text().splitlines() if line.strip()]
    merged = {"resourceSpans": [rs for line in lines for rs in json.loads(line)["resourceSpans"]]}
    document = tmp_path / "one.json"
    document.write_text(json.dumps(merged, indent=3))
    messages = [json_format.Parse(line, ExportTraceServiceRequest()).SerializeToString() for line in lines]
    binary = tmp_path / "traces.binpb"
    binary.write_bytes(b"".join(struct.pack(">I", len(m)) + m for m in messages))
    expected = _graph(source, capsys, "--format", fmt)
    assert "trace 1/" in expected or fmt == "json"
    assert _graph(document, capsys, "--format", fmt) == expected
    assert _graph(binary, capsys, "--format", fmt) == expected


def test_graph_on_a_malformed_document_is_one_located_line(tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text('\n{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"x"]}]}]}')
    code = cli.main(["graph", str(path)])
    _, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and "byte " in err and str(path) in err
