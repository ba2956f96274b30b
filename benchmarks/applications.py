"""Before/after scores of TextGrad's other applications on the tg_bridge core.

    python benchmarks/applications.py --engine local --quick
    OPENAI_BASE_URL=http://127.0.0.1:8080/v1 python benchmarks/applications.py --engine openai:MODEL

Three sections, each following the paper's protocol where it applies:

- code (LeetCode-Hard protocol): start from a solution (the bundled wrong ``draft``, or with
  ``--start generate`` one written zero-shot by the engine), optimize it for ``--steps`` steps
  with the VISIBLE tests' report as feedback, then score the best version on visible and
  HIDDEN tests. "solved" = every test passes (the paper's completion rate).
- molecules: a few starting molecules optimized against the RDKit objective (QED + logP fit);
  best score before/after and the share of proposals that were valid SMILES.
- refine (test-time, GPQA-style protocol on generated object-counting questions): the engine
  answers zero-shot, the answer is refined with the LLM judge (and ``--vote``), and exact match
  on the last number is measured before/after.

Numbers depend entirely on the engine; the embedded 135M model shows the mechanics only.
Results are printed (and written as JSON with ``--json PATH``), never into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import tg_bridge
from tg_bridge.applications import aoptimize_code, aoptimize_molecule, arun_tests, load_code_problems
from tg_bridge.applications.code import extract_code
from tg_bridge.datasets import object_counting
from tg_bridge.engines.usage import usage
from tg_bridge.refinement import arefine

MOLECULES = ("CCOc1ccccc1", "c1ccccc1", "CC(C)Cc1ccc(C(C)C(=O)O)cc1", "CCN(CC)CC", "OCC(O)CO")
GENERATE_PROMPT = (
    "Write a Python solution for this task. Answer with the code only.\n\n{task}"
)
ANSWER_PROMPT = "Answer the question. End with the final number.\n\n{question}"


def build_engine(spec: str, max_tokens: int) -> Any:
    if spec.split(":", 1)[0] == "local":
        return tg_bridge.engine(spec, max_tokens=max_tokens)
    return tg_bridge.engine(spec)


async def bench_code(engine: Any, ids: Sequence[str] | None, steps: int, start: str) -> dict[str, Any]:
    rows = []
    for problem in load_code_problems(list(ids) if ids else None):
        code = problem.draft
        if start == "generate":
            answer = await engine.acomplete(
                [{"role": "user", "content": GENERATE_PROMPT.format(task=problem.prompt)}]
            )
            code = extract_code(answer.text)
        began = time.perf_counter()
        try:
            result = await aoptimize_code(code, problem.tests, steps=steps, engine=engine, task=problem.prompt)
            best, error, calls = result.best.value, "", result.usage.calls
        except tg_bridge.TgBridgeError as exc:
            best, error, calls = code, f"{type(exc).__name__}: {exc}", 0
        before_all = await arun_tests(code, problem.all_tests)
        after_all = await arun_tests(best, problem.all_tests)
        before_vis = await arun_tests(code, problem.tests)
        after_vis = await arun_tests(best, problem.tests)
        before_hid = await arun_tests(code, problem.hidden_tests)
        after_hid = await arun_tests(best, problem.hidden_tests)
        rows.append(
            {
                "problem": problem.id,
                "visible_before": before_vis.pass_rate,
                "visible_after": after_vis.pass_rate,
                "hidden_before": before_hid.pass_rate,
                "hidden_after": after_hid.pass_rate,
                "solved_before": before_all.all_passed,
                "solved_after": after_all.all_passed,
                "calls": calls,
                "seconds": round(time.perf_counter() - began, 1),
                "error": error,
            }
        )
    return {"rows": rows, "summary": _summary(rows, ("visible", "hidden"), "solved")}


async def bench_molecules(engine: Any, count: int, steps: int) -> dict[str, Any]:
    rows = []
    for smiles in MOLECULES[:count]:
        began = time.perf_counter()
        try:
            result = await aoptimize_molecule(smiles, steps=steps, engine=engine)
        except tg_bridge.TgBridgeError as exc:
            rows.append({"start": smiles, "error": f"{type(exc).__name__}: {exc}"})
            continue
        proposals = result.history[1:]
        changed = [s for s in proposals if s.value != smiles]
        rows.append(
            {
                "start": smiles,
                "best": result.best.value,
                "score_before": round(result.initial.score, 3),
                "score_after": round(result.best.score, 3),
                "proposals": len(proposals),
                "changed": len(changed),
                "valid": sum(s.score > 0 for s in changed),
                "calls": result.usage.calls,
                "seconds": round(time.perf_counter() - began, 1),
            }
        )
    ok = [r for r in rows if "error" not in r]
    summary = {
        "score_before": _mean([r["score_before"] for r in ok]),
        "score_after": _mean([r["score_after"] for r in ok]),
        "improved": sum(r["score_after"] > r["score_before"] for r in ok),
        "valid_changed_proposals": f"{sum(r['valid'] for r in ok)}/{sum(r['changed'] for r in ok)}",
        "errors": len(rows) - len(ok),
    }
    return {"rows": rows, "summary": summary}


async def bench_refine(engine: Any, count: int, steps: int, vote: int) -> dict[str, Any]:
    rows = []
    for example in object_counting.generate(count, seed=7):
        question = example["inputs"]["question"]

        async def app(question: str = question) -> str:
            answer = await engine.acomplete([{"role": "user", "content": ANSWER_PROMPT.format(question=question)}])
            return answer.text.strip() or "(no answer)"

        began = time.perf_counter()
        try:
            result = await arefine(app, example["inputs"], steps=steps, engine=engine, vote=vote)
        except tg_bridge.TgBridgeError as exc:
            rows.append({"expected": example["expected"], "error": f"{type(exc).__name__}: {exc}"})
            continue
        rows.append(
            {
                "expected": example["expected"],
                "before": object_counting.exact_match(example, result.initial)[0],
                "after": object_counting.exact_match(example, result.final)[0],
                "calls": result.usage.calls,
                "seconds": round(time.perf_counter() - began, 1),
            }
        )
    ok = [r for r in rows if "error" not in r]
    summary = {
        "accuracy_before": _mean([r["before"] for r in ok]),
        "accuracy_after": _mean([r["after"] for r in ok]),
        "errors": len(rows) - len(ok),
    }
    return {"rows": rows, "summary": summary}


def _mean(values: Sequence[float]) -> float | None:
    return round(statistics.fmean(values), 3) if values else None


def _summary(rows: list[dict[str, Any]], rates: Sequence[str], flag: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in rates:
        out[f"{name}_before"] = _mean([r[f"{name}_before"] for r in rows])
        out[f"{name}_after"] = _mean([r[f"{name}_after"] for r in rows])
    out[f"{flag}_before"] = f"{sum(r[f'{flag}_before'] for r in rows)}/{len(rows)}"
    out[f"{flag}_after"] = f"{sum(r[f'{flag}_after'] for r in rows)}/{len(rows)}"
    out["errors"] = sum(bool(r["error"]) for r in rows)
    return out


def _print_section(title: str, section: dict[str, Any]) -> None:
    print(f"\n## {title}")
    rows = section["rows"]
    if rows:
        keys = list(dict.fromkeys(k for r in rows for k in r))
        print("| " + " | ".join(keys) + " |")
        print("|" + "---|" * len(keys))
        for r in rows:
            print("| " + " | ".join(_cell(r.get(k, "")) for k in keys) + " |")
    print("summary: " + json.dumps(section["summary"]))


def _cell(value: Any) -> str:
    text = f"{value:.3f}" if isinstance(value, float) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")[:80]


async def run(args: argparse.Namespace, engine: Any) -> dict[str, Any]:
    report: dict[str, Any] = {"engine": args.engine, "steps": args.steps, "quick": args.quick}
    with usage() as meter:
        began = time.perf_counter()
        if "code" in args.sections:
            ids = args.problems or (["pair_with_sum", "balanced_brackets", "merge_ranges"] if args.quick else None)
            report["code"] = await bench_code(engine, ids, args.steps, args.start)
        if "molecules" in args.sections:
            report["molecules"] = await bench_molecules(engine, 2 if args.quick else len(MOLECULES), args.steps)
        if "refine" in args.sections:
            report["refine"] = await bench_refine(engine, 3 if args.quick else 20, args.steps, args.vote)
        report["seconds"] = round(time.perf_counter() - began, 1)
    report["usage"] = meter.as_dict()
    return report


def main(argv: Sequence[str] | None = None, *, engine: Any = None) -> int:
    parser = argparse.ArgumentParser(description="before/after scores of code, molecule and refine loops")
    parser.add_argument("--engine", default="local", help="local | openai:MODEL")
    parser.add_argument("--steps", type=int, default=None, help="update steps (default 3, quick 1)")
    parser.add_argument("--quick", action="store_true", help="3 problems, 2 molecules, 3 questions, 1 step")
    parser.add_argument("--sections", nargs="+", default=["code", "molecules", "refine"],
                        choices=["code", "molecules", "refine"])
    parser.add_argument("--problems", nargs="+", help="code problem ids (default: all; quick: 3)")
    parser.add_argument("--start", choices=["draft", "generate"], default="draft")
    parser.add_argument("--vote", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=256, help="answer cap for the local model")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.steps is None:
        args.steps = 1 if args.quick else 3
    model = engine if engine is not None else build_engine(args.engine, args.max_tokens)
    report = asyncio.run(run(args, model))
    print(f"# applications benchmark: engine={args.engine} steps={args.steps} quick={args.quick}")
    for name in ("code", "molecules", "refine"):
        if name in report:
            _print_section(name, report[name])
    print(f"\ntotal: {report['seconds']}s, usage {json.dumps(report['usage'])}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
