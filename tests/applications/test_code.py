"""Code optimization: the REAL test report feeds the update; best by pass rate; loss shape."""

from __future__ import annotations

import pytest

from tg_bridge.applications import UnitTestLoss, aoptimize_code, load_code_problems, optimize_code
from tg_bridge.applications.code import code_variable, extract_code
from tg_bridge.exceptions import EngineError, UsageError
from tg_bridge.testing import FakeEngine
from tg_bridge.variable import Variable

WRONG = "def add(a, b):\n    return a - b\n"
RIGHT = "def add(a, b):\n    return a + b\n"
TESTS = ["assert add(1, 2) == 3", "assert add(0, 0) == 0", "assert add(-2, 2) == 0"]


def updates(engine):
    return engine.prompts()


def test_extract_code():
    assert extract_code("```python\nx = 1\n```\nthanks") == "x = 1"
    assert extract_code("x = 1\n") == "x = 1"
    assert extract_code("Here:\n```\ny = 2\n") == "y = 2"


async def test_loss_is_a_metric_loss_with_the_report():
    loss = UnitTestLoss(TESTS, timeout=2.0)
    code = code_variable(WRONG)
    value = await loss.acall(code)
    assert value.kind == "loss" and value.op.kind == "loss" and value.parents == (code,)
    assert value.metadata["score"] == pytest.approx(1 / 3)
    assert value.op.attrs["metric"] == "unit_tests"
    assert "FAIL test_1: assert add(1, 2) == 3" in value.op.attrs["feedback"]
    assert "got: -1" in value.value
    assert loss.last_report is value.metadata["report"]
    # the sync form works too and fences are stripped before running
    assert loss(Variable("```python\n" + RIGHT + "```", role="code", requires_grad=True)).metadata["score"] == 1.0
    with pytest.raises(UsageError):
        UnitTestLoss([])
    with pytest.raises(UsageError):
        await loss.acall("not a variable")


async def test_update_prompt_contains_the_failing_assertion_and_values():
    engine = FakeEngine(lambda messages: {"improved_value": "```python\n" + RIGHT + "```"})
    result = await aoptimize_code(WRONG, TESTS, steps=3, engine=engine, task="TASK-TEXT: add two ints")
    assert engine.call_count == 1  # metric feedback needs no backward call; stops at 100%
    prompt = engine.prompts()[0]
    assert "FAIL test_1: assert add(1, 2) == 3" in prompt
    assert "got: -1" in prompt and "expected: == 3" in prompt
    assert "return a - b" in prompt  # the full current code
    assert "TASK-TEXT: add two ints" in prompt
    assert [s.score for s in result.history] == [pytest.approx(1 / 3), 1.0]
    assert result.best.value == RIGHT.strip("\n") and result.improved
    assert result.usage.calls == 1


def test_each_step_sees_the_report_of_the_previous_version():
    versions = [
        "def add(a, b):\n    while True:\n        pass\n",  # step 1: loops forever
        "def add(a, b):\n    return a * b\n",  # step 2: another wrong answer
    ]
    engine = FakeEngine(lambda messages: {"improved_value": versions.pop(0)})
    result = optimize_code(WRONG, TESTS, steps=2, engine=engine, timeout=0.5)
    prompts = engine.prompts()
    assert "got: -1" in prompts[0]
    assert "TIMEOUT test_1" in prompts[1] and "0.5s" in prompts[1]
    assert [s.value.splitlines()[-1].strip() for s in result.history] == ["return a - b", "pass", "return a * b"]
    # best by pass rate, earliest on ties: the first version (1/3) beats the loop (0/3) and ties a*b (1/3)
    assert result.best.index == 0
    assert str(result).startswith("2 update step(s); best: step 0")


def test_syntax_error_in_a_proposal_is_feedback_not_a_crash():
    answers = ["def add(a, b) return a + b", RIGHT]
    engine = FakeEngine(lambda messages: {"improved_value": answers.pop(0)})
    result = optimize_code(WRONG, TESTS, steps=3, engine=engine)
    assert "does not compile" in engine.prompts()[1] and "SyntaxError" in engine.prompts()[1]
    assert [s.score for s in result.history][-1] == 1.0


def test_engine_failure_is_typed():
    engine = FakeEngine([EngineError("down", engine_id="fake")])
    with pytest.raises(EngineError):
        optimize_code(WRONG, TESTS, steps=1, engine=engine)


def test_bundled_problem_improves_with_a_scripted_fix():
    problem = load_code_problems(["balanced_brackets"])[0]
    fix = (
        "def balanced_brackets(text):\n"
        "    pairs = {')': '(', ']': '[', '}': '{'}\n"
        "    stack = []\n"
        "    for ch in text:\n"
        "        if ch in '([{':\n"
        "            stack.append(ch)\n"
        "        elif ch in pairs and (not stack or stack.pop() != pairs[ch]):\n"
        "            return False\n"
        "    return not stack\n"
    )
    engine = FakeEngine(lambda messages: {"improved_value": fix})
    result = optimize_code(problem.draft, problem.tests, steps=2, engine=engine, task=problem.prompt)
    assert result.initial.score < 1.0 and result.best.score == 1.0
    assert "balanced_brackets('([)]') is False" in engine.prompts()[0]
