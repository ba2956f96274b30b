"""Helpers shared by the example scripts: engine options, metric adapters, printing.

Every example takes ``--engine`` (default ``local``: the embedded SmolLM2 model, offline)
and runs unchanged on any OpenAI-compatible server with ``--engine openai:MODEL`` and
``OPENAI_BASE_URL``. Examples print (they are scripts); the library itself never does.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

import tg_bridge

__all__ = [
    "add_engine_arguments",
    "build_engines",
    "local_feedback_engine",
    "print_optimization",
    "print_usage",
]


def add_engine_arguments(parser: argparse.ArgumentParser, *, answer_tokens: int = 48,
                         feedback_tokens: int = 192) -> None:
    """``--engine``, ``--backward-engine``, token caps, ``--store`` and ``--quiet``."""
    parser.add_argument("--engine", default="local",
                        help="the app's model: local | openai:MODEL (default: local)")
    parser.add_argument("--backward-engine", default=None,
                        help="the model writing feedback and new prompts (default: --engine)")
    parser.add_argument("--answer-tokens", type=int, default=answer_tokens,
                        help=f"max tokens per app answer (default: {answer_tokens})")
    parser.add_argument("--feedback-tokens", type=int, default=feedback_tokens,
                        help="max tokens per feedback/update answer of the local model "
                             f"(default: {feedback_tokens})")
    parser.add_argument("--store", default=None,
                        help="run store path (default: tg_bridge's .tg_bridge/runs.db)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bar, no per-step details")


def build_engines(args: argparse.Namespace, *, app_engine: Any = None,
                  backward_engine: Any = None) -> tuple[Any, Any]:
    """(app engine, backward engine) for the parsed options; explicit engines (tests) win.

    Building loads nothing: the local model is loaded on its first call. The local backward
    engine gets a bounded answer length (the small model rambles); remote engines keep
    their server's defaults.
    """
    app = app_engine if app_engine is not None else tg_bridge.engine(args.engine)
    if backward_engine is not None:
        return app, backward_engine
    spec = args.backward_engine or args.engine
    if spec.split(":", 1)[0] == "local":
        return app, local_feedback_engine(spec, args.feedback_tokens)
    return app, tg_bridge.engine(spec)


def local_feedback_engine(spec: str, max_tokens: int) -> Any:
    """The embedded model tuned for feedback/update answers: bounded length and a repeat
    penalty (without it SmolLM2 loops on one sentence until the token cap, which cuts the
    JSON of its proposals so that none can be read)."""
    return tg_bridge.engine(spec, max_tokens=max_tokens, repeat_penalty=1.3)


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def print_optimization(result: Any, *, quiet: bool = False, file: TextIO | None = None) -> None:
    """Baseline, every step (score, kept/reverted, why), the diff of the best patch, the final
    score and calls/tokens per phase."""
    out = file or sys.stdout
    print(f"\nbaseline score: {_score(result.baseline_score)}", file=out)
    for step in result.history:
        if step.accepted:
            decision = "accepted"
        elif step.score is None:
            decision = "skipped"
        else:
            decision = "reverted"
        line = (f"step {step.step}: candidate {_score(step.score)} vs {_score(step.before)}"
                f" -> {decision}")
        if step.reason and not step.accepted:
            line += f" ({step.reason})"
        print(line, file=out)
        if not quiet and step.candidate is not None and not step.accepted:
            diff = step.candidate.diff()
            if diff:
                print("  rejected candidate:\n" + _indent(diff), file=out)
            for rejected in step.candidate.metadata.get("rejected") or ():
                # what the model proposed and why validation refused it, before any write
                proposed = str(rejected.get("proposed", ""))
                if len(proposed) > 300:
                    proposed = proposed[:297] + "..."
                print(f"  proposal refused ({rejected.get('reason')}): {proposed!r}", file=out)
    diff = result.best_patch.diff() if result.best_patch is not None else ""
    if diff:
        print("\ndiff of the patched prompt(s):\n" + diff.rstrip("\n"), file=out)
    else:
        print("\nno prompt change was kept (every candidate scored lower or was rejected)",
              file=out)
    print(f"\nfinal score: {_score(result.best_score)}"
          f" (baseline {_score(result.baseline_score)})", file=out)
    print_usage(result.usage, file=out)


def print_usage(usage: dict[str, dict[str, int]], *, file: TextIO | None = None) -> None:
    """A small table: calls, cached calls and tokens per phase, then the total."""
    out = file or sys.stdout
    print(f"{'phase':<10}{'calls':>7}{'cached':>8}{'prompt tok':>12}{'compl tok':>11}", file=out)
    total = {"calls": 0, "cached_calls": 0, "prompt_tokens": 0, "completion_tokens": 0}
    for phase, counters in usage.items():
        row = {k: int(counters.get(k, 0)) for k in total}
        for k, v in row.items():
            total[k] += v
        print(f"{phase:<10}{row['calls']:>7}{row['cached_calls']:>8}"
              f"{row['prompt_tokens']:>12}{row['completion_tokens']:>11}", file=out)
    print(f"{'total':<10}{total['calls']:>7}{total['cached_calls']:>8}"
          f"{total['prompt_tokens']:>12}{total['completion_tokens']:>11}", file=out)


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.rstrip("\n").splitlines())
