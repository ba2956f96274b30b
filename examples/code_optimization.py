"""Improve a wrong Python solution with the report of its unit tests (TextGrad's code task).

The code is a trainable Variable; the loss runs the problem's visible tests in a sandboxed
subprocess (timeout and resource limits, never in this process) and the test report — the
failing assertion with both values, the traceback tail, timeouts — is the feedback TGD uses
to rewrite the code. The hidden tests score the result at the end.

    python examples/code_optimization.py                         # embedded model, offline
    python examples/code_optimization.py --problem edit_distance --steps 3
    OPENAI_BASE_URL=http://127.0.0.1:8080/v1 python examples/code_optimization.py --engine openai:MODEL

The embedded SmolLM2-135M model shows the mechanics only: it rarely writes working code.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import tg_bridge
from tg_bridge.applications import load_code_problems, optimize_code, run_tests


def build_engine(spec: str, max_tokens: int) -> Any:
    """The engine for ``--engine``; the local model gets a bounded answer length."""
    if spec.split(":", 1)[0] == "local":
        return tg_bridge.engine(spec, max_tokens=max_tokens)
    return tg_bridge.engine(spec)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ids = [p.id for p in load_code_problems()]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="local", help="local | openai:MODEL (default: local)")
    parser.add_argument("--problem", default="merge_ranges", choices=ids)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=400, help="answer cap for the local model")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per unit test")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, *, engine: Any = None) -> int:
    """Run the example; returns the exit code. ``engine`` overrides ``--engine`` (tests)."""
    args = parse_args(argv)
    problem = load_code_problems([args.problem])[0]
    model = engine if engine is not None else build_engine(args.engine, args.max_tokens)
    print(f"problem: {problem.title}\n{problem.prompt}\n")
    print(f"starting code (a plausible but wrong draft):\n{problem.draft}")
    try:
        result = optimize_code(
            problem.draft, problem.tests, steps=args.steps, engine=model,
            task=problem.prompt, timeout=args.timeout,
        )
    except tg_bridge.TgBridgeError as exc:
        print(f"optimization stopped: {type(exc).__name__}: {exc}")
        return 1
    for step in result.history:
        note = f"  (update not used: {step.error})" if step.error else ""
        print(f"step {step.index}: visible tests pass rate {step.score:.2f}{note}")
    print(f"\nfeedback on the starting code:\n{result.initial.feedback}\n")
    best = result.best
    hidden_before = run_tests(problem.draft, problem.hidden_tests, timeout=args.timeout)
    hidden_after = run_tests(best.value, problem.hidden_tests, timeout=args.timeout)
    print(f"best version (step {best.index}):\n{best.value}\n")
    print(f"visible tests: {result.initial.score:.2f} -> {best.score:.2f}")
    print(f"hidden tests:  {hidden_before.pass_rate:.2f} -> {hidden_after.pass_rate:.2f}")
    print(f"usage: {result.usage}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
