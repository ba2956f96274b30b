"""Run unit tests against a code string in the sandbox and report the results as text.

:func:`run_tests` / :func:`arun_tests` never execute the code in our process: the solution and
the tests go to :mod:`tg_bridge.applications._harness` in a sandboxed ``python -I`` child
(:mod:`tg_bridge.applications.sandbox`). The :class:`TestReport` they return is what a model
reads as feedback: which test failed, the assertion with both sides' values, the traceback
tail, timeouts, crashes, and the (truncated) output.

``tests`` may be:

- a sequence of snippets, each one test (``"assert add(1, 2) == 3"``; several lines allowed),
- a sequence of ``{"name": ..., "source": ...}`` mappings,
- one string: a test module defining ``test_*`` functions (run in definition order), or, when
  it defines none, a single snippet.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from ..engines.sync import blocking
from ..exceptions import UsageError
from .sandbox import Limits, SandboxResult, arun_sandboxed

__all__ = ["TestReport", "TestResult", "Tests", "arun_tests", "normalize_tests", "run_tests"]

Tests = str | Sequence[str | Mapping[str, str]]

_HARNESS = os.path.join(os.path.dirname(__file__), "_harness.py")
_RESULTS = "results.jsonl"
_SPEC = "spec.json"
#: outcomes in the report; only "pass" counts toward the pass rate
OUTCOMES = ("pass", "fail", "error", "timeout", "crash", "not_run")
_LABELS = {
    "pass": "passed", "fail": "failed", "error": "raised an error", "timeout": "timed out",
    "crash": "crashed", "not_run": "not run",
}
_MAX_FEEDBACK = 6000


@dataclasses.dataclass(frozen=True)
class TestResult:
    """One test's outcome: ``pass``, ``fail`` (assertion), ``error`` (another exception),
    ``timeout``, ``crash`` (the process died in it) or ``not_run``."""

    __test__ = False  # not a pytest class

    name: str
    outcome: str
    message: str = ""
    assertion: str = ""
    got: str = ""
    expected: str = ""
    traceback: str = ""

    @property
    def passed(self) -> bool:
        return self.outcome == "pass"

    def describe(self) -> str:
        """A few lines for a human or a model."""
        head = f"{self.outcome.upper()} {self.name}"
        lines = [f"{head}: {self.assertion or self.message or _LABELS.get(self.outcome, '')}"]
        if self.assertion and self.message:
            lines.append(f"  message: {self.message}")
        if self.got:
            lines.append(f"  got: {self.got}")
        if self.expected:
            lines.append(f"  expected: {self.expected}")
        if self.traceback and self.outcome in ("fail", "error"):
            tail = "\n".join("    " + line for line in self.traceback.splitlines()[-6:])
            lines.append("  traceback (last lines):\n" + tail)
        return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class TestReport:
    """Everything one sandboxed test run produced. ``problem`` is set when the code could not
    even be loaded (a syntax error, an exception at import, a crash before any test)."""

    __test__ = False

    results: tuple[TestResult, ...]
    problem: str = ""
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    returncode: int | None = 0
    duration: float = 0.0

    @property
    def total(self) -> int:
        return len(self.results)

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.results)

    @property
    def pass_rate(self) -> float:
        """Passed / total; 0.0 when the code did not load or there are no tests."""
        return self.passed / self.total if self.total else 0.0

    @property
    def all_passed(self) -> bool:
        return bool(self.total) and self.passed == self.total and not self.problem

    def failures(self) -> tuple[TestResult, ...]:
        return tuple(r for r in self.results if not r.passed)

    def feedback(self, max_chars: int = _MAX_FEEDBACK) -> str:
        """The report as the text a model gets: summary, then each failing test."""
        counts = {o: sum(r.outcome == o for r in self.results) for o in OUTCOMES}
        summary = ", ".join(f"{n} {_LABELS[o]}" for o, n in counts.items() if n)
        noun = "unit test" if self.total == 1 else "unit tests"
        parts = [f"Ran {self.total} {noun}: {summary or 'none'}."]
        if self.problem:
            parts.append(self.problem)
        parts.extend(r.describe() for r in self.failures() if r.outcome != "not_run")
        if self.stdout.strip() and not self.all_passed:
            parts.append("stdout (truncated):\n" + self.stdout.strip()[-800:])
        if self.stderr.strip() and not self.all_passed:
            parts.append("stderr (truncated):\n" + self.stderr.strip()[-800:])
        text = "\n".join(parts)
        return text if len(text) <= max_chars else text[: max_chars - 20] + "\n[... truncated]"

    def __str__(self) -> str:
        return self.feedback()


def normalize_tests(tests: Tests) -> tuple[list[dict[str, str]], str]:
    """Split ``tests`` into (snippets, test module source); raises UsageError when unusable."""
    if isinstance(tests, str):
        if _defines_tests(tests):
            return [], tests
        return [{"name": "test_1", "source": tests}], ""
    if not isinstance(tests, Sequence) or not tests:
        raise UsageError("tests must be a non-empty list of test snippets or a test module string")
    snippets = []
    for i, item in enumerate(tests):
        if isinstance(item, str):
            snippets.append({"name": f"test_{i + 1}", "source": item})
        elif isinstance(item, Mapping) and isinstance(item.get("source"), str):
            snippets.append({"name": str(item.get("name") or f"test_{i + 1}"), "source": item["source"]})
        else:
            raise UsageError(f"tests[{i}] must be a str or a {{'name', 'source'}} mapping")
    return snippets, ""


def _defines_tests(source: str) -> bool:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    return any(
        isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name.startswith("test")
        for n in tree.body
    )


def _count_module_tests(source: str) -> int:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return 1
    return max(1, sum(isinstance(n, ast.FunctionDef) and n.name.startswith("test") for n in tree.body))


async def arun_tests(
    code: str,
    tests: Tests,
    *,
    timeout: float = 5.0,
    total_timeout: float | None = None,
    limits: Limits | None = None,
) -> TestReport:
    """Run ``tests`` against ``code`` in a sandboxed subprocess.

    ``timeout`` bounds each test (and loading the code); ``total_timeout`` the whole process
    (default: ``timeout`` per test plus a margin). Never raises for anything the code does (a
    crash, a timeout and a syntax error are all in the report); raises UsageError for
    malformed ``tests`` or a non-str ``code``. Safe to run concurrently.
    """
    if not isinstance(code, str):
        raise UsageError(f"code must be a str, got {type(code).__name__}")
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise UsageError("timeout must be a positive number of seconds")
    snippets, module = normalize_tests(tests)
    count = len(snippets) or _count_module_tests(module)
    wall = total_timeout or timeout * (count + 1) + 3.0
    limits = limits or Limits(cpu_seconds=wall + 1)
    spec = {
        "code": code,
        "tests": snippets,
        "test_module": module,
        "per_test_timeout": float(timeout),
        "results": _RESULTS,
    }
    result = await arun_sandboxed(
        _HARNESS,
        [_SPEC],
        files={_SPEC: json.dumps(spec), _RESULTS: ""},
        collect=[_RESULTS],
        timeout=wall,
        limits=limits,
    )
    return _report(result, [s["name"] for s in snippets], timeout)


# the blocking twin keeps arun_tests's full signature (for type checkers and inspect.signature)
run_tests = blocking(arun_tests)


def _report(result: SandboxResult, expected_names: list[str], timeout: float) -> TestReport:
    events = []
    for line in result.files.get(_RESULTS, "").splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:  # a partly written last line when the process was killed
            continue
    results: list[TestResult] = []
    problem = ""
    done = False
    for event in events:
        kind = event.get("event")
        if kind == "test":
            results.append(_result(event))
        elif kind == "compile_error":
            where = f" (line {event['lineno']}: {event.get('text', '')})" if event.get("lineno") else ""
            problem = f"The code does not compile: {event.get('message', '')}{where}"
        elif kind == "load_error":
            detail = _result({**event, "name": "loading the code"})
            problem = "The code failed while loading, before any test ran:\n" + detail.describe()
        elif kind == "done":
            done = True
    if not done and not problem:
        cause = _death_cause(result)
        names = [n for n in expected_names if n not in {r.name for r in results}]
        if not expected_names and not results:
            problem = f"The test process stopped before any test finished: {cause}."
        for i, name in enumerate(names):
            outcome = ("timeout" if result.timed_out else "crash") if i == 0 else "not_run"
            message = cause if i == 0 else "not run: the process had stopped"
            results.append(TestResult(name=name, outcome=outcome, message=message))
    if problem:
        names = [n for n in expected_names if n not in {r.name for r in results}]
        results.extend(TestResult(name=n, outcome="not_run", message="not run") for n in names)
    return TestReport(
        results=tuple(results),
        problem=problem,
        stdout=_with_drop(result.stdout, result.stdout_dropped),
        stderr=_with_drop(result.stderr, result.stderr_dropped),
        timed_out=result.timed_out,
        returncode=result.returncode,
        duration=result.duration,
    )


def _result(event: Mapping[str, Any]) -> TestResult:
    return TestResult(
        name=str(event.get("name", "?")),
        outcome=str(event.get("outcome", "error")),
        message=str(event.get("message", "")),
        assertion=str(event.get("assertion", "")),
        got=str(event.get("got", "")),
        expected=str(event.get("expected", "")),
        traceback=str(event.get("traceback", "")),
    )


def _death_cause(result: SandboxResult) -> str:
    if result.timed_out:
        return "the whole test run exceeded its time limit (an infinite loop or a too slow algorithm?)"
    if result.signal_name == "SIGXCPU":
        return "killed for using too much CPU time"
    if result.signal_name:
        return f"the process was killed by {result.signal_name} (a crash, or a resource limit)"
    tail = result.stderr.strip().splitlines()[-1:] or [""]
    return f"the process exited with code {result.returncode} {tail[0]}".strip()


def _with_drop(text: str, dropped: int) -> str:
    return text + (f"\n[... {dropped} more bytes dropped]" if dropped else "")
