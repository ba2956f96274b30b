"""`tg-bridge graph DIR --follow`: bounded polls, the checkpoint across runs, clean stop on signals."""

from __future__ import annotations

import json
import os
import pathlib
import select
import shutil
import signal
import subprocess
import sys

import pytest

from tg_bridge import cli

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures"
ROOT = pathlib.Path(__file__).resolve().parents[2]
SAFETY_S = 120  # only a guard against a hung child: nothing here waits for time to pass


def _follow(capsys, *args):
    code = cli.main(["graph", *map(str, args), "--follow", "--interval", "0"])
    out, err = capsys.readouterr()
    return code, out, err


def test_follow_prints_each_trace_once_across_runs_with_a_checkpoint(tmp_path, capsys):
    logs, ckpt = tmp_path / "otel", tmp_path / "follow.ckpt"
    logs.mkdir()
    shutil.copy(FIXTURES / "oi_langchain_rag.jsonl", logs / "traces.json")
    code, out, err = _follow(capsys, logs, "--checkpoint", ckpt, "--max-polls", "2")
    assert code == 0, err
    first = [line for line in out.splitlines() if line.startswith("== trace ")]
    expected = cli.main(["graph", str(FIXTURES / "oi_langchain_rag.jsonl")])
    whole, _ = capsys.readouterr()
    assert expected == 0 and len(first) == whole.count("\n== trace ") > 0
    assert "followed" in err and f"{len(first)} trace(s)" in err
    os.rename(logs / "traces.json", logs / "traces-2026-12-01T05-00-00.000.json")  # rotation
    shutil.copy(FIXTURES / "oi_llamaindex_query.jsonl", logs / "traces.json")
    code, out, err = _follow(capsys, str(logs / "traces*.json"), "--checkpoint", ckpt, "--max-polls", "2",
                             "--format", "json")  # fmt: skip
    sections = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and sections and all(s["graph"]["nodes"] for s in sections)
    assert not {s["trace_id"] for s in sections} & {line.split()[3] for line in first}  # nothing twice


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["graph", "t.jsonl", "--checkpoint", "c"], "need --follow"),
        (["graph", "/nonexistent/dir", "--follow"], "no such directory"),
        (["graph", ".", "--follow", "--max-polls", "0"], "at least 1"),
    ],
)
def test_follow_usage_errors_exit_2(capsys, args, words):
    assert cli.main(args) == 2
    assert words in capsys.readouterr().err


def test_damaged_checkpoint_exits_2_with_one_line(tmp_path, capsys):
    (tmp_path / "ckpt").write_text("{not json")
    code, _, err = _follow(capsys, tmp_path, "--checkpoint", tmp_path / "ckpt", "--max-polls", "1")
    assert code == 2 and "checkpoint" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_follow_stops_cleanly_on_sigterm_and_ctrl_c(tmp_path, signum):
    logs, ckpt = tmp_path / "otel", tmp_path / "ckpt"
    logs.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tg_bridge.cli", "graph", str(logs), "--follow", "--interval", "0.01",
         "--checkpoint", str(ckpt)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        # The collector writes (whole, so that one poll sees every line; hidden names are not followed).
        shutil.copy(FIXTURES / "oi_langchain_agent.jsonl", logs / ".partial")
        os.rename(logs / ".partial", logs / "traces.json")
        ready, _, _ = select.select([proc.stdout], [], [], SAFETY_S)
        assert ready, "the follower printed nothing"
        assert proc.stdout.readline().strip() == b""  # each trace starts with a blank line
        assert proc.stdout.readline().startswith(b"== trace 1 ")
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=SAFETY_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert b"followed" in err and b"Traceback" not in err
    state = json.loads(ckpt.read_text())
    assert [f["offset"] for f in state["files"].values()] == [os.path.getsize(logs / "traces.json")]


def test_follow_prints_lone_surrogates_as_replacement_characters(tmp_path, capsys):
    logs = tmp_path / "otel"
    logs.mkdir()
    span = {"traceId": "1" * 32, "spanId": "2" * 16, "name": "llm \ud800", "attributes": [
        {"key": "openinference.span.kind", "value": {"stringValue": "LLM"}},
        {"key": "llm.input_messages.0.message.role", "value": {"stringValue": "system"}},
        {"key": "llm.input_messages.0.message.content", "value": {"stringValue": "Be \ud800 terse."}},
        {"key": "output.value", "value": {"stringValue": "ok \udfff"}}]}  # fmt: skip
    line = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}) + "\n"
    (logs / "traces.json").write_text(line, encoding="ascii")
    for fmt in ("json", "text"):
        code, out, err = _follow(capsys, logs, "--max-polls", "2", "--format", fmt)
        assert code == 0, err
        out.encode("utf-8")  # raised UnicodeEncodeError before
        assert "Be \ufffd terse." in out


def test_follow_prints_the_same_graphs_from_protobuf_frames_as_from_json_lines(tmp_path, capsys):
    pytest.importorskip("opentelemetry.proto")
    from tests.support.otlp import proto_frame

    source = FIXTURES / "oi_langchain_rag.jsonl"
    as_json, as_proto = tmp_path / "json", tmp_path / "proto"
    as_json.mkdir()
    as_proto.mkdir()
    shutil.copy(source, as_json / "traces.json")
    lines = [line for line in source.read_text().splitlines() if line.strip()]
    (as_proto / "traces.binpb").write_bytes(b"".join(proto_frame(json.loads(line)) for line in lines))
    code, expected, _ = _follow(capsys, as_json, "--max-polls", "2")
    assert code == 0 and expected.count("== trace ") > 0
    code, out, err = _follow(capsys, as_proto, "--checkpoint", tmp_path / "ckpt", "--max-polls", "2")
    assert code == 0 and out == expected, err
    assert "skipped 0 bad line(s)" in err and "protobuf" not in err  # nothing skipped, nothing to say
    state = json.loads((tmp_path / "ckpt").read_text())
    assert [(f["format"], f["offset"]) for f in state["files"].values()] == [
        ("proto", (as_proto / "traces.binpb").stat().st_size)]
    code, out, _ = _follow(capsys, as_proto, "--checkpoint", tmp_path / "ckpt", "--max-polls", "2")
    assert code == 0 and out == ""  # a restart reads nothing twice


def test_follow_counts_a_protobuf_file_left_at_a_bad_frame_in_the_summary(tmp_path, capsys):
    pytest.importorskip("opentelemetry.proto")
    (tmp_path / "traces.binpb").write_bytes(b"\x7f\xff\xff\xff" + b"\x00" * 16)  # an absurd length
    code, out, err = _follow(capsys, tmp_path, "--max-polls", "2")
    assert code == 0 and out == "" and "Traceback" not in err
    assert "1 protobuf file(s) from a bad frame on" in err
