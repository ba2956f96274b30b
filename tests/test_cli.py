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
        (["graph"], "give a trace file"),
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

    def engine_down(path, **_):
        raise EngineError("server\nunavailable", engine_id="local")

    monkeypatch.setattr(tg_bridge.reconstruction, "iter_graphs", engine_down)
    code, _, err = run(["graph", str(trace_file)], capsys)
    assert code == 1 and err == "tg-bridge: error: [local] server unavailable\n"

    def bug(path, **_):
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(tg_bridge.reconstruction, "iter_graphs", bug)
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


# -- papercuts and malformed input (issue 17 item 5, issue 11 item 12) ------------------------

def test_debug_is_accepted_after_the_subcommand(monkeypatch, trace_file, capsys):
    import tg_bridge.reconstruction

    def bug(path, **_):
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(tg_bridge.reconstruction, "iter_graphs", bug)
    code, _, err = run(["graph", str(trace_file), "--debug"], capsys)
    assert code == 1 and "Traceback" in err
    code, _, err = run(["graph", "--debug", str(trace_file)], capsys)
    assert code == 1 and "Traceback" in err
    code, _, err = run(["graph", str(trace_file)], capsys)
    assert code == 1 and "Traceback" not in err and err.count("\n") == 1


def _line(span_extra: bytes) -> bytes:
    span = (b'{"traceId": "' + b"ab" * 16 + b'", "spanId": "' + b"cd" * 8 + b'", "name": "s", '
            + span_extra + b'}')
    return b'{"resourceSpans": [{"scopeSpans": [{"spans": [' + span + b"]}]}]}\n"


@pytest.mark.parametrize("data, fragment", [
    (_line(b'"startTimeUnixNano": 1e400'), "not a finite number"),
    (_line(b'"endTimeUnixNano": NaN'), "not a finite number"),
    (b"[" * 50_000 + b"]" * 50_000 + b"\n", "nested too deeply"),
    ('{"resourceSpans": [{"x": "caf\xe9"}]}\n'.encode("latin-1"), "not UTF-8"),
    (_line(b'"startTimeUnixNano": {"a": 1}'), "timestamp must be"),
])
def test_malformed_trace_files_exit_2_not_internal_error(tmp_path, capsys, data, fragment):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(data)
    code, out, err = run(["graph", str(bad)], capsys)
    assert code == 2 and out == "", err
    assert "internal error" not in err and str(bad) in err and fragment in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("data, fragment", [
    ('{"trace_id": "' + "1" * 32 + '", "text": "caf\xe9"}\n', "not UTF-8"),
    ('{"trace_id": "' + "1" * 32 + '", "score": NaN}\n', "finite number"),
    ('{"trace_id": "' + "1" * 32 + '", "score": 1e400}\n', "finite number"),
    ("[" * 50_000 + "]" * 50_000 + "\n", "nested too deeply"),
])
def test_malformed_feedback_files_exit_2_naming_file_and_line(tmp_path, trace_file, capsys,
                                                              data, fragment):
    feedback = tmp_path / "feedback.jsonl"
    feedback.write_bytes(b"\n" + data.encode("latin-1"))
    code, out, err = run(["optimize", "--traces", str(trace_file), "--feedback", str(feedback),
                          "--engine", "openai:m", "--out", str(tmp_path / "p.json")], capsys)
    assert code == 2 and out == "", err
    assert f"{feedback}:2" in err and fragment in err and "internal error" not in err


def test_non_utf8_patch_file_is_a_usage_error(tmp_path, capsys):
    bad = tmp_path / "patch.json"
    bad.write_bytes('{"schema": "caf\xe9"}'.encode("latin-1"))
    code, _, err = run(["show", str(bad)], capsys)
    assert code == 2 and "not UTF-8" in err and str(bad) in err


def test_connection_error_names_the_url(tmp_path, trace_file, capsys, monkeypatch):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    feedback = tmp_path / "feedback.jsonl"
    feedback.write_text(json.dumps({"trace_id": f"{1:032x}", "score": 0.0,
                                    "text": "Too vague."}) + "\n")
    with tg_bridge.context(max_retries=0):
        code, _, err = run(["optimize", "--traces", str(trace_file), "--feedback", str(feedback),
                            "--engine", "openai:m", "--out", str(tmp_path / "p.json")], capsys)
    assert code == 1 and url in err, err


def _stored_run(tmp_path, monkeypatch):
    import tg_bridge.adapters
    from tg_bridge.testing import FakeApp, FakeAppAdapter, FakeEngine

    monkeypatch.setattr(tg_bridge.adapters, "load_adapters", lambda: [FakeAppAdapter()])
    app = FakeApp("Answer {q}", lambda p: "Yes " + p.rsplit(" ", 1)[-1] if "please" in p.lower()
                  else p.rsplit(" ", 1)[-1])

    def respond(messages, fmt):
        if isinstance(fmt, dict) and "improved_value" in fmt.get("properties", {}):
            return {"improved_value": "Please answer {q}"}
        return "Ask politely."

    from tg_bridge.capturing import instrumentation

    store = str(tmp_path / "runs.db")
    before = instrumentation._active
    result = tg_bridge.optimize(app, [({"q": "fig"}, "fig")], store=store, progress=False,
                                engine=FakeEngine(respond),
                                metric=lambda ex, out: float(out == f"Yes {ex.expected}"))
    if instrumentation._active is not before:  # instrumented with the fake adapter only:
        instrumentation.uninstrument()          # let later tests instrument the real ones
    assert result.best_patch.changes
    return store, result


def test_unknown_run_id_exits_2(tmp_path, monkeypatch, capsys):
    store, _ = _stored_run(tmp_path, monkeypatch)
    for argv in (["show", "nope", "--store", store],
                 ["export", "nope", "--out", str(tmp_path / "p.json"), "--store", store]):
        code, out, err = run(argv, capsys)
        assert code == 2 and "no run 'nope'" in err and out == "", (argv, err)


def test_export_writes_the_runs_patch(tmp_path, monkeypatch, capsys):
    from tg_bridge.patching.patch import Patch

    store, result = _stored_run(tmp_path, monkeypatch)
    out_path = tmp_path / "review" / "patch.json"
    code, out, err = run(["export", result.run_id[:8], "--out", str(out_path), "--store", store],
                         capsys)
    assert code == 0, err
    assert out.startswith(f"wrote {out_path}: 1 change(s), run {result.run_id}")
    patch = Patch.load(out_path)
    assert [(c.target, c.old, c.new) for c in patch.changes] == [
        (c.target, c.old, c.new) for c in result.best_patch.changes]
    code, out, _ = run(["export", result.run_id, "--out", str(out_path), "--store", store,
                        "--step", "0"], capsys)
    assert code == 0 and "nothing changed" in out and not Patch.load(out_path).changes


# -- hostile trace text: the output stays valid UTF-8 ------------------------------------------

def _surrogate_trace(tmp_path: Path) -> Path:
    """One LLM call whose name, system prompt and answer carry lone surrogates (JSON's
    ``"\\ud800"`` escape: the readers hand it over as one code point UTF-8 cannot encode)."""
    spans = [_span("1" * 32, "2" * 16, None, "llm \ud800", {
        "openinference.span.kind": "LLM",
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": "Be \ud800 terse.",
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.content": "Hi",
        "output.value": "ok \udfff",
    })]  # fmt: skip
    path = tmp_path / "surrogates.json"
    path.write_text(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}), encoding="ascii")
    return path


def test_graph_prints_lone_surrogates_as_replacement_characters(tmp_path, capsys):
    path = _surrogate_trace(tmp_path)
    exe = Path(sys.executable).with_name("tg-bridge")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "tg_bridge.cli"]
    for fmt in ("json", "text"):  # real stdout: bytes as a terminal or a pipe gets them
        proc = subprocess.run([*command, "graph", str(path), "-f", fmt], capture_output=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        text = proc.stdout.decode("utf-8")  # strict: raised before (exit 1, "internal error")
        assert "Be \ufffd terse." in text and "llm \ufffd" in text
        if fmt == "json":
            (param,) = json.loads(text)["parameters"]
            assert param["value"] == "Be \ufffd terse."
    for fmt in ("mermaid", "dot"):
        code, out, err = run(["graph", str(path), "-f", fmt], capsys)
        assert code == 0, err
        out.encode("utf-8")
        assert "\ufffd" in out


def test_optimize_on_a_trace_with_lone_surrogates_writes_utf8(tmp_path, capsys, monkeypatch):
    import tg_bridge.engines
    from tg_bridge.patching.patch import Patch
    from tg_bridge.testing import FakeEngine

    engine = FakeEngine(lambda messages, fmt: {"improved_value": "Be very terse."}
                        if isinstance(fmt, dict) and "improved_value" in fmt.get("properties", {})
                        else "Too long \udfff.")  # fmt: skip
    real = tg_bridge.engines.engine
    monkeypatch.setattr(tg_bridge.engines, "engine",
                        lambda spec=None, **kw: engine if spec == "fake:test" else real(spec, **kw))  # fmt: skip
    feedback = tmp_path / "feedback.jsonl"
    feedback.write_text(json.dumps({"trace_id": "1" * 32, "score": 0.0, "text": "bad \ud800"}) + "\n",
                        encoding="ascii")  # fmt: skip
    out = tmp_path / "patch.json"
    code, stdout, err = run(["optimize", "--traces", str(_surrogate_trace(tmp_path)), "--feedback",
                             str(feedback), "--engine", "fake:test", "--out", str(out)], capsys)  # fmt: skip
    assert code == 0, err
    stdout.encode("utf-8")  # the change's target names the span 'llm \ud800'
    assert "llm \ufffd" in stdout
    out.read_bytes().decode("utf-8")
    (change,) = Patch.load(out).changes
    assert (change.old, change.new) == ("Be \ud800 terse.", "Be very terse.")  # matches the trace exactly
