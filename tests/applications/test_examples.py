"""The application examples run end to end (FakeEngine in place of the model)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tg_bridge.exceptions import EngineError
from tg_bridge.testing import FakeEngine

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MERGE_FIX = (
    "def merge_ranges(ranges):\n"
    "    out = []\n"
    "    for start, end in sorted(ranges):\n"
    "        if out and start <= out[-1][1]:\n"
    "            out[-1][1] = max(out[-1][1], end)\n"
    "        else:\n"
    "            out.append([start, end])\n"
    "    return out\n"
)


def test_code_example_improves_with_a_scripted_fix(capsys):
    example = load("code_optimization")
    engine = FakeEngine(lambda messages: {"improved_value": MERGE_FIX})
    assert example.main(["--problem", "merge_ranges", "--steps", "2"], engine=engine) == 0
    out = capsys.readouterr().out
    assert "visible tests: 0.67 -> 1.00" in out
    assert "hidden tests:  0.67 -> 1.00" in out
    assert "FAIL test_2: assert merge_ranges([[8, 10], [1, 4], [4, 5]])" in out
    assert "merge_ranges" in engine.prompts()[0]


def test_code_example_reports_engine_failure(capsys):
    example = load("code_optimization")
    engine = FakeEngine([EngineError("server down", engine_id="fake")])
    assert example.main(["--steps", "1"], engine=engine) == 1
    assert "EngineError" in capsys.readouterr().out


def test_molecule_example_runs(capsys):
    pytest.importorskip("rdkit")
    example = load("molecule_optimization")
    answers = ["not a smiles", "CC(=O)Nc1ccc(O)cc1"]
    engine = FakeEngine(lambda messages: {"improved_value": answers.pop(0) if answers else "CCO"})
    assert example.main(["--smiles", "CCO", "--steps", "2"], engine=engine) == 0
    out = capsys.readouterr().out
    assert "step 1: 'not a smiles' score 0.000" in out
    assert "best (step 2)" in out and "CC(=O)Nc1ccc(O)cc1" in out
    assert "does not parse" in engine.prompts()[1]


def test_molecule_example_bad_objective_is_reported(capsys):
    pytest.importorskip("rdkit")
    example = load("molecule_optimization")
    assert example.main(["--qed-weight", "0", "--logp-weight", "0"], engine=FakeEngine([])) == 2
    assert "cannot start" in capsys.readouterr().out


def test_benchmark_script_runs_quick_with_a_fake_engine(capsys, tmp_path):
    import json

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "applications.py"
    spec = importlib.util.spec_from_file_location("bench_applications", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    def respond(messages):
        system = messages[0]["content"]
        if system.startswith("You evaluate"):
            return "verdict"
        if system.startswith("You are the critic"):
            return "critique"
        if system.startswith("You improve"):
            return {"improved_value": MERGE_FIX if "merge_ranges" in messages[1]["content"] else "The answer is 4"}
        return "I think 3"

    out_file = tmp_path / "bench.json"
    argv = ["--quick", "--problems", "merge_ranges", "--sections", "code", "refine", "--json", str(out_file)]
    assert bench.main(argv, engine=FakeEngine(respond)) == 0
    report = json.loads(out_file.read_text())
    code = report["code"]["summary"]
    assert code["visible_before"] < 1.0 and code["visible_after"] == 1.0 and code["solved_after"] == "1/1"
    assert len(report["refine"]["rows"]) == 3
    assert "## code" in capsys.readouterr().out
