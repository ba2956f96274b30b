"""The sandboxed test runner: real subprocess, limits, timeouts, crashes, isolation."""

from __future__ import annotations

import os

import pytest

from tg_bridge.applications.sandbox import Limits, arun_sandboxed
from tg_bridge.applications.testrun import TestReport, arun_tests, normalize_tests, run_tests
from tg_bridge.exceptions import UsageError

ADD_WRONG = "def add(a, b):\n    return a - b\n"


async def test_failure_report_names_test_assertion_and_values():
    report = await arun_tests(ADD_WRONG, ["assert add(1, 2) == 3", "assert add(2, 0) == 2"])
    assert (report.total, report.passed, report.pass_rate) == (2, 1, 0.5)
    failed = report.failures()[0]
    assert failed.name == "test_1" and failed.outcome == "fail"
    assert failed.assertion == "assert add(1, 2) == 3"
    assert failed.got == "-1" and failed.expected == "== 3"
    text = report.feedback()
    assert "FAIL test_1: assert add(1, 2) == 3" in text and "got: -1" in text
    assert "test_2" not in text  # passing tests are only counted


async def test_all_pass():
    report = await arun_tests("def add(a, b):\n    return a + b\n", ["assert add(1, 2) == 3"])
    assert report.all_passed and report.pass_rate == 1.0
    assert report.feedback().startswith("Ran 1 unit test: 1 passed.")


async def test_infinite_loop_becomes_timeout_feedback_and_later_tests_still_run():
    code = "def spin():\n    while True:\n        pass\n"
    # the per-test alarm is under test: the whole-run limit (default 4.5 s here, interpreter
    # start included) is made generous so a slow start on a loaded machine cannot end the run
    report = await arun_tests(code, ["spin()", "assert 1 + 1 == 2"], timeout=0.5, total_timeout=120)
    assert [r.outcome for r in report.results] == ["timeout", "pass"]
    assert "TIMEOUT test_1" in report.feedback() and "0.5s" in report.feedback()


async def test_swallowed_timeout_is_still_a_timeout():
    code = "def spin():\n    try:\n        while True:\n            pass\n    except Exception:\n        return 1\n"
    report = await arun_tests(code, ["assert spin() == 1"], timeout=0.3)
    assert report.results[0].outcome == "timeout"


async def test_whole_run_wall_clock_limit_kills_a_c_level_loop():
    # one C call cannot be interrupted by the per-test alarm: the wall clock limit ends it
    code = "import time\ndef nap():\n    time.sleep(30)\n"
    # (the 30 s nap never finishes: pytest's own timeout would catch a limit that did not act)
    report = await arun_tests(code, ["nap()", "assert True"], timeout=5.0, total_timeout=1.0)
    assert report.timed_out
    assert [r.outcome for r in report.results] == ["timeout", "not_run"]
    assert "time limit" in report.feedback()


async def test_memory_bomb_is_limited_and_reported():
    code = "def bomb():\n    return len(bytearray(20 * 1024 ** 3))\n"
    report = await arun_tests(code, ["assert bomb() > 0"], limits=Limits(memory_mb=256))
    assert report.results[0].outcome == "error"
    assert "MemoryError" in report.feedback()


async def test_os_system_and_environment_do_not_touch_our_process(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-for-test")
    marker = tmp_path / "outside.txt"
    cwd = os.getcwd()
    code = (
        "import os\n"
        "def meddle():\n"
        "    os.environ['TGB_MEDDLED'] = '1'\n"
        "    os.system('echo written > inside.txt')\n"
        "    os.chdir('/')\n"
        "    return sorted(k for k in os.environ if 'KEY' in k or 'TOKEN' in k)\n"
    )
    report = await arun_tests(code, ["assert meddle() == []", "assert 'HOME' in __import__('os').environ"])
    assert report.all_passed, report.feedback()
    assert os.getcwd() == cwd
    assert "TGB_MEDDLED" not in os.environ
    assert not marker.exists() and not os.path.exists(os.path.join(cwd, "inside.txt"))


async def test_crash_becomes_feedback():
    code = "import os\ndef die():\n    os._exit(7)\n"
    report = await arun_tests(code, ["assert 1 == 1", "die()", "assert 2 == 2"])
    assert [r.outcome for r in report.results] == ["pass", "crash", "not_run"]
    assert "exited with code 7" in report.feedback()
    assert report.pass_rate == pytest.approx(1 / 3)


async def test_segfault_is_reported_with_the_signal():
    code = "import ctypes\ndef boom():\n    ctypes.string_at(0)\n"
    report = await arun_tests(code, ["boom()"])
    assert report.results[0].outcome == "crash"
    assert "SIGSEGV" in report.feedback()


async def test_syntax_error_and_import_error():
    report = await arun_tests("def f(:\n    pass\n", ["assert f() is None"])
    assert report.pass_rate == 0.0 and report.results[0].outcome == "not_run"
    assert "does not compile" in report.feedback() and "SyntaxError" in report.feedback()
    report = await arun_tests("raise ValueError('bad module')\n", ["assert True"])
    assert "failed while loading" in report.feedback() and "bad module" in report.feedback()


async def test_output_flood_is_truncated():
    code = "def noisy():\n    print('x' * 2_000_000)\n    return 1\n"
    report = await arun_tests(code, ["assert noisy() == 2"])
    assert len(report.stdout) < 5000 and "more bytes dropped" in report.stdout
    assert len(report.feedback()) < 6500


async def test_test_module_with_functions_and_helper_asserts():
    tests = (
        "def check(x):\n    assert x == 5, 'x must be five'\n\n"
        "def test_value():\n    assert f() == 2\n\n"
        "def test_helper():\n    check(f())\n"
    )
    report = await arun_tests("def f():\n    return 1\n", tests)
    assert [r.name for r in report.results] == ["test_value", "test_helper"]
    assert report.results[0].got == "1" and report.results[0].expected == "== 2"
    assert report.results[1].message == "x must be five"


def test_sync_run_tests_and_normalize():
    report = run_tests(ADD_WRONG, [{"name": "adds", "source": "assert add(2, 2) == 4"}])
    assert isinstance(report, TestReport) and report.results[0].name == "adds"
    assert normalize_tests("assert x") == ([{"name": "test_1", "source": "assert x"}], "")
    with pytest.raises(UsageError):
        normalize_tests([])
    with pytest.raises(UsageError):
        normalize_tests([3])
    with pytest.raises(UsageError):
        run_tests(b"code", ["assert True"])


async def test_concurrent_runs_are_independent():
    import asyncio

    codes = [f"def v():\n    return {i}\n" for i in range(4)]
    reports = await asyncio.gather(*(arun_tests(c, [f"assert v() == {i}"]) for i, c in enumerate(codes)))
    assert all(r.all_passed for r in reports)


async def test_sandbox_rejects_bad_args(tmp_path):
    with pytest.raises(UsageError):
        await arun_sandboxed(str(tmp_path / "missing.py"))
    script = tmp_path / "s.py"
    script.write_text("print('hi')\n")
    with pytest.raises(UsageError):
        await arun_sandboxed(str(script), timeout=0)
    with pytest.raises(UsageError):
        await arun_sandboxed(str(script), files={"../escape.txt": "x"})
    result = await arun_sandboxed(str(script))
    assert result.stdout.strip() == "hi" and result.returncode == 0 and not result.timed_out
