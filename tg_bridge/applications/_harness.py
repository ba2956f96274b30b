"""The child side of the unit-test sandbox. Runs ONLY in a separate ``python -I`` process.

It must not import tg_bridge (the child sees a stripped environment and a temp directory).
Usage: ``python -I -B _harness.py SPEC.json``. The spec holds ``code`` (the solution source),
``tests`` (a list of ``{"name", "source"}`` snippets) or ``test_module`` (source defining
``test_*`` functions), ``per_test_timeout`` (seconds) and ``results`` (a JSON-lines path).

One JSON line is appended to the results file per event, flushed at once, so the parent still
knows which tests finished when this process is killed for a timeout or dies in a crash:
``{"event": "compile_error" | "load_error" | "test" | "done", ...}``.
"""

from __future__ import annotations

import ast
import json
import linecache
import signal
import sys
import traceback

_HARNESS_FILE = __file__
_MAX_REPR = 300
_MAX_TB_LINES = 14
_SLOT = "_tgb_"
_OPS = {
    ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
    ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in",
}


class _Timeout(BaseException):
    """Raised by the alarm; a BaseException so a solution's ``except Exception`` cannot eat it."""


def _on_alarm(signum, frame):  # noqa: ARG001 - signal handler signature
    raise _Timeout()


def _short(value):
    try:
        text = repr(value)
    except BaseException as exc:  # a broken __repr__ in the solution
        text = f"<unrepresentable {type(value).__name__}: {exc!r}>"
    return text if len(text) <= _MAX_REPR else text[: _MAX_REPR - 3] + "..."


def _register_source(filename, source):
    # lets tracebacks show the solution's own lines although it was never a file
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)


def _traceback_tail(exc):
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != _HARNESS_FILE]
    lines = traceback.format_list(frames) + traceback.format_exception_only(type(exc), exc)
    text = "".join(lines).rstrip().splitlines()
    return "\n".join(text[-_MAX_TB_LINES:])


class _AssertRecorder(ast.NodeTransformer):
    """Rewrite ``assert a OP b`` (anywhere) so both sides are kept for the report.

    The values go into the ``_tgb_`` dict of the module globals (a subscript assignment works
    inside functions without a ``global`` statement). ``origins`` maps a line to the
    original assert's source and operator.
    """

    def __init__(self, source):
        self.source = source
        self.origins = {}

    def visit_Assert(self, node):
        test = node.test
        text = ast.get_source_segment(self.source, node) or ""
        if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and type(test.ops[0]) in _OPS):
            self.origins[node.lineno] = (text, None)
            return node
        self.origins[node.lineno] = (text, _OPS[type(test.ops[0])])

        def slot(key, ctx):
            return ast.Subscript(ast.Name(_SLOT, ast.Load()), ast.Constant(key), ctx)

        new = [
            ast.Assign([slot("left", ast.Store())], test.left),
            ast.Assign([slot("right", ast.Store())], test.comparators[0]),
            ast.Assert(ast.Compare(slot("left", ast.Load()), test.ops, [slot("right", ast.Load())]), node.msg),
        ]
        for stmt in new:
            ast.copy_location(stmt, node)
        return new


def _compile_recording(source, filename):
    """Compile with assert recording; returns (code object, origins by line)."""
    recorder = _AssertRecorder(source)
    tree = ast.fix_missing_locations(recorder.visit(ast.parse(source, filename)))
    _register_source(filename, source)
    return compile(tree, filename, "exec"), recorder.origins


def _describe_assert(result, origins, filename, namespace):
    exc = result.get("exc")
    if exc is None or result["outcome"] != "fail":
        return
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
    if not frames or frames[-1].lineno not in origins:
        return
    text, op = origins[frames[-1].lineno]
    result["assertion"] = text
    slot = namespace.get(_SLOT) or {}
    if op is not None and "left" in slot and "right" in slot:
        result["got"] = _short(slot["left"])
        result["expected"] = f"{op} {_short(slot['right'])}"


def _run_one(name, runner, per_test_timeout):  # noqa: ARG001 - name eases debugging
    signal.setitimer(signal.ITIMER_REAL, per_test_timeout)
    try:
        runner()
        return {"outcome": "pass"}
    except _Timeout:
        return {"outcome": "timeout", "message": f"did not finish within {per_test_timeout:g}s"}
    except AssertionError as exc:
        return {"outcome": "fail", "message": str(exc), "exc": exc}
    except BaseException as exc:  # the solution may raise anything, SystemExit included
        return {"outcome": "error", "message": f"{type(exc).__name__}: {exc}", "exc": exc}
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _write(out, record):
    exc = record.pop("exc", None)
    if exc is not None:
        record["traceback"] = _traceback_tail(exc)
    out.write(json.dumps(record) + "\n")
    out.flush()


def main(spec_path):
    with open(spec_path, encoding="utf-8") as fh:
        spec = json.load(fh)
    per_test_timeout = float(spec["per_test_timeout"])
    signal.signal(signal.SIGALRM, _on_alarm)
    out = open(spec["results"], "a", encoding="utf-8")
    code_source = spec["code"]
    try:
        solution = compile(code_source, "<solution>", "exec")
    except (SyntaxError, ValueError) as exc:
        _write(out, {"event": "compile_error", "message": f"{type(exc).__name__}: {exc}",
                     "lineno": getattr(exc, "lineno", None), "text": (getattr(exc, "text", "") or "").rstrip()})
        return
    _register_source("<solution>", code_source)
    namespace = {"__name__": "solution", "__builtins__": __builtins__}
    loaded = _run_one("<load>", lambda: exec(solution, namespace), per_test_timeout)
    if loaded["outcome"] != "pass":
        _write(out, {"event": "load_error", **loaded})
        return
    tests = [
        {"name": t.get("name") or f"test_{i + 1}", "source": t["source"]}
        for i, t in enumerate(spec.get("tests") or [])
    ]
    module_origins = {}
    if spec.get("test_module"):
        try:
            module, module_origins = _compile_recording(spec["test_module"], "<tests>")
        except SyntaxError as exc:
            _write(out, {"event": "load_error", "outcome": "error", "message": f"the tests do not compile: {exc}"})
            return
        module_ns = dict(namespace)
        module_ns[_SLOT] = {}
        loaded = _run_one("<tests>", lambda: exec(module, module_ns), per_test_timeout)
        if loaded["outcome"] != "pass":
            _write(out, {"event": "load_error", **loaded})
            return
        for key, value in list(module_ns.items()):
            if key.startswith("test") and callable(value) and key not in namespace:
                tests.append({"name": key, "function": value, "namespace": module_ns})
    for test in tests:
        _write(out, {"event": "test", "name": test["name"], **_run_test(test, namespace, module_origins, per_test_timeout)})
    _write(out, {"event": "done"})


def _run_test(test, namespace, module_origins, per_test_timeout):
    if "function" in test:
        test["namespace"][_SLOT] = {}
        result = _run_one(test["name"], test["function"], per_test_timeout)
        _describe_assert(result, module_origins, "<tests>", test["namespace"])
        return result
    filename = f"<test {test['name']}>"
    test_ns = dict(namespace)
    test_ns[_SLOT] = {}
    try:
        code, origins = _compile_recording(test["source"], filename)
    except SyntaxError as exc:
        return {"outcome": "error", "message": f"the test does not compile: {exc}"}
    result = _run_one(test["name"], lambda: exec(code, test_ns), per_test_timeout)
    _describe_assert(result, origins, filename, test_ns)
    return result


if __name__ == "__main__":
    sys.setrecursionlimit(10_000)
    main(sys.argv[1])
