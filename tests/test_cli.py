"""The tg-bridge command: help, version, one-line errors with exit codes, the graph command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import tg_bridge
from tg_bridge import cli
from tg_bridge.exceptions import EngineError


def _attr(key: str, value: str) -> dict:
    return {"key": key, "value": {"stringValue": value}}


def _span(trace: str, span: str, parent: str | None, name: str, attrs: dict[str, str]) -> dict:
    out = {
        "traceId": trace, "spanId": span, "name": name, "kind": 1,
        "startTimeUnixNano": "100", "endTimeUnixNano": "200",
        "attributes": [_attr(k, v) for k, v in attrs.items()], "status": {},
    }  # fmt: skip
    if parent:
        out["parentSpanId"] = parent
    return out


SYSTEM = 'You are terse. Never say "maybe" <ok>.'


@pytest.fixture
def trace_file(tmp_path: Path) -> Path:
    """Two traces (OTLP JSON lines) of one chain whose LLM step shares a system prompt."""
    lines = []
    for i, question in enumerate(["What is 2+2?", "Capital of France?"]):
        trace, root, llm = f"{i + 1:032x}", f"{10 * i + 1:016x}", f"{10 * i + 2:016x}"
        spans = [
            _span(trace, llm, root, "ChatModel", {
                "openinference.span.kind": "LLM",
                "llm.input_messages.0.message.role": "system",
                "llm.input_messages.0.message.content": SYSTEM,
                "llm.input_messages.1.message.role": "user",
                "llm.input_messages.1.message.content": question,
                "llm.output_messages.0.message.role": "assistant",
                "llm.output_messages.0.message.content": f"answer {i}",
                "output.value": f"answer {i}",
            }),  # fmt: skip
            _span(trace, root, None, "chain", {
                "openinference.span.kind": "CHAIN", "input.value": question,
                "output.value": f"answer {i}",
            }),  # fmt: skip
        ]
        request = {"resourceSpans": [{"resource": {"attributes": []},
                                      "scopeSpans": [{"scope": {"name": "t"}, "spans": spans}]}]}
        lines.append(json.dumps(request))
    path = tmp_path / "traces.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"tg-bridge {tg_bridge.__version__}"


def test_help_lists_graph_command(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: tg-bridge" in out and "graph" in out


@pytest.mark.parametrize(
    "argv, fragment",
    [
        ([], "a command is required"),
        (["graph"], "required: file"),
        (["graph", "x", "--format", "png"], "invalid choice"),
        (["no-such-command"], "invalid choice"),
        (["graph", "/definitely/not/here.json"], "no such file"),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(argv, fragment, capsys):
    code, out, err = run(argv, capsys)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("tg-bridge: error: ") and fragment in err


def test_malformed_trace_file_is_a_usage_error(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"resourceSpans": [\n')
    code, out, err = run(["graph", str(bad)], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and str(bad) in err


def test_directory_is_a_usage_error(tmp_path, capsys):
    code, _, err = run(["graph", str(tmp_path)], capsys)
    assert code == 2 and "is a directory" in err


def test_runtime_and_internal_errors_exit_1_in_one_line(monkeypatch, trace_file, capsys):
    import tg_bridge.reconstruction

    def engine_down(path):
        raise EngineError("server\nunavailable", engine_id="local")

    monkeypatch.setattr(tg_bridge.reconstruction, "load_traces", engine_down)
    code, _, err = run(["graph", str(trace_file)], capsys)
    assert code == 1 and err == "tg-bridge: error: [local] server unavailable\n"

    def bug(path):
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(tg_bridge.reconstruction, "load_traces", bug)
    code, _, err = run(["graph", str(trace_file)], capsys)
    assert code == 1 and err.count("\n") == 1 and "internal error: ZeroDivisionError" in err
    code, _, err = run(["--debug", "graph", str(trace_file)], capsys)
    assert code == 1 and "Traceback" in err


def test_graph_text_lists_shared_parameter_then_each_trace(trace_file, capsys):
    code, out, err = run(["graph", str(trace_file)], capsys)
    assert code == 0, err
    head = out.splitlines()[0]
    assert head == f"{trace_file}: 2 trace(s), 1 parameter(s)"
    assert "used in trace(s): 1, 2" in out
    assert out.count("== trace ") == 2
    assert out.count("Graph: ") == 2
    assert json.dumps(SYSTEM) in out  # the parameter's value, quoted
    assert "What is 2+2?" in out and "Capital of France?" in out


def test_graph_json_is_one_document(trace_file, capsys):
    code, out, _ = run(["graph", str(trace_file), "--json"], capsys)
    assert code == 0
    doc = json.loads(out)
    assert doc["file"] == str(trace_file)
    assert len(doc["parameters"]) == 1
    assert doc["parameters"][0]["value"] == SYSTEM and doc["parameters"][0]["traces"] == [1, 2]
    assert len(doc["traces"]) == 2
    for graph in doc["traces"]:
        values = [n["value"] for n in graph["nodes"]]
        assert SYSTEM in values
        assert graph["parameters"]
    code2, out2, _ = run(["graph", str(trace_file), "-f", "json"], capsys)
    assert code2 == 0 and out2 == out  # deterministic, --json == --format json


@pytest.mark.parametrize(
    "fmt, start, escaped",
    [
        ("mermaid", "flowchart TD", "#quot;maybe#quot; #lt;ok#gt;"),
        ("dot", "digraph tg_bridge {", '\\"maybe\\" <ok>'),
    ],
)
def test_graph_diagram_formats(fmt, start, escaped, trace_file, capsys):
    code, out, _ = run(["graph", str(trace_file), "--format", fmt], capsys)
    assert code == 0
    assert out.count(start) == 2
    assert out.count(escaped) == 2  # the system prompt, escaped for the diagram syntax


def test_subcommand_modules_are_registered(monkeypatch, tmp_path, capsys):
    module = tmp_path / "tgb_extra_cmd.py"
    module.write_text(
        "def register(subparsers):\n"
        "    p = subparsers.add_parser('hello', help='say hello')\n"
        "    p.add_argument('--name', default='world')\n"
        "    p.set_defaults(func=lambda args: print('hello', args.name) or 3)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("tgb_extra_cmd", "tgb_not_installed_cmd"))
    code, out, _ = run(["hello", "--name", "tg"], capsys)
    assert code == 3 and out == "hello tg\n"


def test_console_script_runs_in_a_subprocess(trace_file):
    exe = Path(sys.executable).with_name("tg-bridge")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "tg_bridge.cli"]
    ok = subprocess.run([*command, "graph", str(trace_file), "-f", "dot"],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.count("digraph") == 2
    bad = subprocess.run([*command, "graph"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
