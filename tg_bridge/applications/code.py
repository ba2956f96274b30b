"""Code optimization: improve a Python solution with the report of its unit tests as feedback.

The paper's LeetCode-Hard experiment on our core: the code is a trainable Variable (kind
``value``), :class:`UnitTestLoss` runs the tests in a sandboxed subprocess
(:mod:`tg_bridge.applications.testrun`; never in our process) and turns the report (failing
test, assertion with both values, traceback tail, timeouts) into a metric loss whose score is
the pass rate, and TGD rewrites the code from that feedback.

    result = optimize_code(code, ["assert add(1, 2) == 3"], steps=3, engine="local")
    result.best.value, result.best.score  # the best code and its pass rate
"""

from __future__ import annotations

from collections.abc import Sequence

from ..engines.sync import blocking, run_sync
from ..exceptions import UsageError
from ..losses import MetricLoss
from ..variable import Variable
from . import prompts
from .loop import ValueOptimization, aoptimize_value
from .problems import CodeProblem, load_code_problems
from .sandbox import Limits
from .testrun import TestReport, TestResult, Tests, arun_tests, normalize_tests, run_tests

_MAX_REPORT = 3500  # the core clips one feedback item at 4000 characters

__all__ = [
    "CodeProblem",
    "TestReport",
    "TestResult",
    "UnitTestLoss",
    "aoptimize_code",
    "arun_tests",
    "code_variable",
    "extract_code",
    "load_code_problems",
    "optimize_code",
    "run_tests",
]


def extract_code(text: str) -> str:
    """The code in ``text``: the first fenced block when there is one, else the text itself.

    Models often wrap code in ```python fences; the tests must see plain Python.
    """
    start = text.find("```")
    if start < 0:
        return text.strip("\n")
    body_start = text.find("\n", start)
    if body_start < 0:
        return text.strip("\n")
    end = text.find("```", body_start)
    body = text[body_start + 1 : end if end >= 0 else len(text)]
    return body.strip("\n")


class UnitTestLoss:
    """A metric loss from running unit tests: score = pass rate, feedback = the test report.

    ``UnitTestLoss(tests, timeout=5.0)(code_variable)`` returns a loss Variable shaped like a
    :class:`~tg_bridge.losses.MetricLoss` result (op kind ``loss``, ``metadata["score"]``,
    the report as the metric's feedback), so ``backward`` seeds the report itself as feedback
    with no LLM call. ``last_report`` keeps the latest :class:`TestReport`. Each call starts
    one sandboxed subprocess; raises UsageError for malformed tests, nothing for failing code.
    """

    def __init__(
        self,
        tests: Tests,
        *,
        timeout: float = 5.0,
        total_timeout: float | None = None,
        limits: Limits | None = None,
        name: str = "unit_tests",
    ) -> None:
        normalize_tests(tests)  # validate now, not at the first step
        self.tests = tests
        self.timeout = timeout
        self.total_timeout = total_timeout
        self.limits = limits
        self.name = name
        self.last_report: TestReport | None = None

    async def areport(self, code: str) -> TestReport:
        """Run the tests against ``code`` (fences stripped) and return the report."""
        report = await arun_tests(
            extract_code(code),
            self.tests,
            timeout=self.timeout,
            total_timeout=self.total_timeout,
            limits=self.limits,
        )
        self.last_report = report
        return report

    async def acall(self, output: Variable, example: object = None) -> Variable:
        if not isinstance(output, Variable):
            raise UsageError(f"a loss evaluates a Variable, got {type(output).__name__}")
        report = await self.areport(output.value)
        loss = MetricLoss(lambda _text, _example: (report.pass_rate, report.feedback(max_chars=_MAX_REPORT)), name=self.name)
        variable = loss(output, example)
        variable.metadata["report"] = report
        return variable

    def __call__(self, output: Variable, example: object = None) -> Variable:
        return run_sync(self.acall(output, example))

    def __repr__(self) -> str:
        return f"UnitTestLoss({self.name!r}, timeout={self.timeout:g})"


def code_variable(code: str) -> Variable:
    """The trainable code Variable (kind ``value``, role "Python solution code")."""
    return Variable(code, role=prompts.CODE_ROLE, requires_grad=True, kind="value", name="code")


async def aoptimize_code(
    code: str,
    tests: Tests,
    *,
    steps: int = 3,
    engine: object = None,
    task: str = "",
    timeout: float = 5.0,
    constraints: Sequence[str] = (),
) -> ValueOptimization:
    """Improve ``code`` for ``steps`` update steps against ``tests`` (stops early at 100%).

    ``task`` (the problem statement) is shown to the optimizer as a constraint; ``timeout``
    bounds each test; ``constraints`` add rules for the new code.

    Returns the history (every evaluated version with its score and report) and the best
    version by pass rate. Raises EngineError when the engine fails; an unusable optimizer
    answer is recorded on that step and the loop carries on with the previous code.
    """
    variable = code_variable(code)
    loss = UnitTestLoss(tests, timeout=timeout)
    task_rule = (prompts.CODE_TASK.format(task=task.strip()),) if task.strip() else ()
    return await aoptimize_value(
        variable,
        loss,
        steps=steps,
        engine=engine,
        constraints=(prompts.CODE_CONSTRAINT, *task_rule, *constraints),
        stop_score=1.0,
        postprocess=extract_code,
    )


# the blocking twin keeps aoptimize_code's full signature (for type checkers and inspect.signature)
optimize_code = blocking(aoptimize_code)


