"""benchmarks/quality.py in --quick mode on FakeEngines: the app counts correctly only when
the live system prompt says so, so test accuracy rises only if the optimized prompt reached
the chain; a harmful candidate is reverted by the validation gate."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("tg_bridge_langchain")

import tg_bridge.capturing  # noqa: E402
from tg_bridge.datasets import object_counting  # noqa: E402
from tg_bridge.testing import FakeEngine  # noqa: E402

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "quality.py"
MARKER = "Count every item of the asked category, one by one."


@pytest.fixture(scope="module")
def quality() -> Any:
    spec = importlib.util.spec_from_file_location("bench_quality", PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_quality"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def real_adapters():
    tg_bridge.capturing.uninstrument()
    yield
    tg_bridge.capturing.uninstrument()


ANSWERS = {e["inputs"]["question"]: e["expected"] for e in object_counting.generate(400, seed=0)}


def counter(messages: list[dict[str, str]]) -> str:
    """Right only when the system prompt carries MARKER; else a wrong count."""
    expected = ANSWERS[messages[-1]["content"]]
    if MARKER in messages[0]["content"]:
        return f"Counting each one.\nAnswer: {expected}"
    return "Answer: 1"


def optimizer(new_value: str) -> FakeEngine:
    def respond(messages: list[dict[str, str]], response_format: Any) -> Any:
        props = response_format.get("properties", {}) if isinstance(response_format, dict) else {}
        if "improved_value" in props:
            return {"improved_value": new_value}
        return "The final number is wrong: count each item of the asked category."

    return FakeEngine(respond)


def test_quick_run_improves_test_accuracy_through_the_live_prompt(quality, capsys):
    new_prompt = f"{quality.STARTING_PROMPT} {MARKER}"
    app = FakeEngine(counter)
    code = quality.main(["--task", "object_counting", "--quick", "--json"],
                        app_engine=app, backward_engine=optimizer(new_prompt))
    out = capsys.readouterr().out
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[-1] == "test_accuracy_before=0.0000 test_accuracy_after=1.0000"
    report = json.loads(lines[-2])
    assert report["sizes"] == {"train": 6, "val": 6, "test": 10}
    assert report["steps"] == 2 and report["batch"] == 3
    assert report["accepted_steps"] == [1]  # step 2 proposes the same prompt: unchanged
    assert (report["val_before"], report["val_after"]) == (0.0, 1.0)
    assert report["final_prompt"] == new_prompt
    assert report["test_eval_calls"] == 20
    assert report["optimization_calls"] > 0 and report["optimization_tokens"] > 0
    assert "test accuracy" in out and "0.000 -> 1.000" in out


def test_protocol_sizes_and_step_batches(quality):
    counting = quality.TASKS["object_counting"]
    args = quality.parse_args([])
    assert quality.task_sizes(args, counting) == (50, 100, 100)
    assert (args.steps, args.batch, args.tasks, args.seed_list) == (12, 3, [counting.name], [0])
    quick = quality.parse_args(["--quick", "--steps", "3"])
    assert (quality.task_sizes(quick, counting)[0], quick.steps) == (6, 3)
    many = quality.parse_args(["--task", "all", "--seeds", "0,1,2", "--train", "5"])
    assert many.tasks == ["object_counting", "docs_qa", "sentiment"]
    assert many.seed_list == [0, 1, 2]
    assert quality.task_sizes(many, quality.TASKS["sentiment"]) == (5, 8, 10)
    train = object_counting.generate(4)
    batches = quality.steps_trainset(train, steps=3, batch=3)
    assert len(batches) == 9 and batches[4] is train[0]
    with pytest.raises(SystemExit):
        quality.parse_args(["--batch", "0"])


def test_harmful_candidate_is_reverted(quality, capsys):
    def app(messages: list[dict[str, str]]) -> str:
        expected = ANSWERS[messages[-1]["content"]]
        return "Answer: 0" if "Never count." in messages[0]["content"] else f"Answer: {expected}"

    code = quality.main(["--quick", "--steps", "1"], app_engine=FakeEngine(app),
                        backward_engine=optimizer("Never count."))
    out = capsys.readouterr().out
    assert code == 0
    assert out.strip().splitlines()[-1] == (
        "test_accuracy_before=1.0000 test_accuracy_after=1.0000"
    )
    accepted = [line for line in out.splitlines() if line.startswith("accepted steps")]
    assert accepted and accepted[0].split()[-1] == "none"
    assert quality.STARTING_PROMPT in out  # the original prompt is back in the chain


@pytest.mark.parametrize("name", ["object_counting", "docs_qa", "sentiment"])
def test_task_splits_are_disjoint_and_seeded(quality, name):
    task = quality.TASKS[name]
    train, val, test = task.data(1, task.quick)
    keys = [repr(sorted(e["inputs"].items())) for e in (*train, *val, *test)]
    assert len(keys) == len(set(keys)) == sum(task.quick)
    assert task.data(1, task.quick) == (train, val, test)
    assert task.data(2, task.quick) != (train, val, test)


def test_format_metrics_never_reveal_the_answer(quality):
    docs, sentiment = quality.TASKS["docs_qa"], quality.TASKS["sentiment"]
    example = {"inputs": {}, "expected": "Marco Bellini"}
    assert docs.metric(example, "Marco Bellini.")[0] == 1.0
    score, feedback = docs.metric(example, "The CTO is Marco Bellini.")
    assert score == 0.0 and "only the short answer" in feedback and "Bellini" not in feedback
    label = {"inputs": {}, "expected": "negative"}
    assert sentiment.metric(label, " Negative.")[0] == 1.0
    score, feedback = sentiment.metric(label, "The sentiment is negative.")
    assert score == 0.0 and "negative" not in feedback


def sentiment_app(messages: list[dict[str, str]]) -> str:
    """Says the bare label only when the system prompt asks for one word."""
    label = dict(sys.modules["quality_tasks"].REVIEWS)[messages[-1]["content"]]
    if "one word" in messages[0]["content"]:
        return label
    return f"The sentiment of this review is {label}."


def test_several_seeds_make_a_table_with_means_and_ranges(quality, capsys):
    code = quality.main(
        ["--task", "sentiment", "--seeds", "0,1", "--quick", "--steps", "1", "--batch", "2",
         "--strategies", "single,pareto", "--json"],
        app_engine=FakeEngine(sentiment_app),
        backward_engine=optimizer("Classify the sentiment. Reply with one word."),
    )
    out = capsys.readouterr().out
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[-1] == "test_accuracy_before=0.0000 test_accuracy_after=1.0000"
    row = next(line for line in lines if line.startswith("| sentiment | single |"))
    assert "| 2 | 0.00 (0.00..0.00) | 1.00 (1.00..1.00) |" in row
    reports = json.loads(lines[-2])
    assert [(r["seed"], r["strategy"]) for r in reports] == [
        (0, "single"), (0, "pareto"), (1, "single"), (1, "pareto")]
    assert all(r["final_prompt"].endswith("one word.") for r in reports
               if "unavailable" not in r)


def test_a_failed_run_is_recorded_and_the_sweep_goes_on(quality, capsys, tmp_path):
    """A run that dies with a TgBridgeError is a result: its line is in --out with the error,
    the next run still happens, and the exit code says something failed."""
    from tg_bridge.exceptions import EngineError

    out_file = tmp_path / "runs.jsonl"
    broken = FakeEngine(lambda messages: EngineError("model fell over", engine_id="fake",
                                                     retryable=False))
    code = quality.main(
        ["--task", "sentiment", "--seeds", "0,1", "--quick", "--steps", "1", "--batch", "2",
         "--out", str(out_file)],
        app_engine=FakeEngine(sentiment_app), backward_engine=broken,
    )
    out = capsys.readouterr().out
    assert code == 1
    records = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert [(r["seed"], r["strategy"]) for r in records] == [(0, "single"), (1, "single")]
    assert all("model fell over" in r["failed"] for r in records)
    assert "failed: sentiment single seed 0: " in out and "model fell over" in out


def test_resume_skips_recorded_runs_and_summarize_reads_the_files(quality, capsys, tmp_path):
    out_file = tmp_path / "runs.jsonl"
    argv = ["--task", "sentiment", "--quick", "--steps", "1", "--batch", "2",
            "--out", str(out_file), "--resume"]
    fixed = "Classify the sentiment. Reply with one word."
    assert quality.main([*argv, "--seeds", "0"], app_engine=FakeEngine(sentiment_app),
                        backward_engine=optimizer(fixed)) == 0
    app = FakeEngine(sentiment_app)
    assert quality.main([*argv, "--seeds", "0,1"], app_engine=app,
                        backward_engine=optimizer(fixed)) == 0
    assert "resuming: 1 run(s) already in" in capsys.readouterr().out
    with out_file.open("a") as handle:
        handle.write('{"task": "sentiment", "seed": 2, "stra')  # a process killed mid-line
    records = quality.read_runs([str(out_file)])
    assert [r["seed"] for r in records] == [0, 1]  # seed 0 ran once, not twice
    assert quality.main(["--summarize", str(out_file), str(tmp_path / "missing.jsonl")]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| sentiment | single |"))
    assert "| 2 | 0.00 (0.00..0.00) | 1.00 (1.00..1.00) |" in row
    assert out.strip().splitlines()[-1] == (
        "test_accuracy_before=0.0000 test_accuracy_after=1.0000")
