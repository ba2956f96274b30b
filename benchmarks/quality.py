"""Quality harness: TextGrad's prompt-optimization protocol on a LangChain chain.

    python benchmarks/quality.py --task object_counting --engine openai:MODEL \
        [--backward-engine openai:BIG_MODEL] [--steps 12] [--batch 3] [--quick]

The protocol of the TextGrad paper (BBH object counting): the train / validation / test
splits of :func:`tg_bridge.datasets.object_counting.split` (first 50 train, next 100
validation, the rest test), batch 3, 12 steps, each candidate system prompt validated and
reverted when the validation accuracy drops; exact match on the last number. The app is an
ordinary LangChain chain (system prompt + question -> EngineChatModel -> StrOutputParser).
It reports test accuracy before and after, the validation scores, and calls and tokens of
the optimization and of the test evaluations.

``--quick`` shrinks the splits and the steps so that it finishes in a few minutes on the
embedded model (a smoke test of the harness: SmolLM2-135M cannot count reliably and writes
poor feedback, so its numbers say nothing about the method). The last line is
``test_accuracy_before=<x> test_accuracy_after=<y>`` for scripts.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import tg_bridge
from tg_bridge.datasets import object_counting
from tg_bridge.engines.sync import run_sync

#: TextGrad's starting system prompt for BBH object counting.
STARTING_PROMPT = (
    "You will answer a reasoning question. Think step by step. The last line of your "
    "response should be of the following format: 'Answer: $VALUE' where VALUE is a "
    "numerical value."
)
TASKS = ("object_counting",)
FULL = {"train": 50, "val": 100, "test": 100, "steps": 12, "batch": 3}
QUICK = {"train": 6, "val": 6, "test": 10, "steps": 2, "batch": 3}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="object_counting", choices=TASKS)
    parser.add_argument("--engine", default="local", help="the app's model (local | openai:MODEL)")
    parser.add_argument("--backward-engine", default=None,
                        help="feedback/update model (default: --engine)")
    parser.add_argument("--quick", action="store_true", help="small splits, few steps")
    parser.add_argument("--steps", type=int, default=None, help="optimization steps (12)")
    parser.add_argument("--batch", type=int, default=None, help="batch size (3)")
    parser.add_argument("--train", type=int, default=None, help="train examples (50)")
    parser.add_argument("--val", type=int, default=None, help="validation examples (100)")
    parser.add_argument("--test", type=int, default=None, help="test examples (100)")
    parser.add_argument("--mode", default="edge", choices=("edge", "fused"))
    parser.add_argument("--seed", type=int, default=0, help="dataset generator seed")
    parser.add_argument("--answer-tokens", type=int, default=None,
                        help="max tokens per app answer (default: 64 local, 512 remote)")
    parser.add_argument("--feedback-tokens", type=int, default=256,
                        help="max tokens per feedback/update answer of the local model")
    parser.add_argument("--store", default=None, help="run store (default: a temporary file)")
    parser.add_argument("--json", action="store_true", help="also print the report as JSON")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    for name, default in sizes.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if args.answer_tokens is None:
        args.answer_tokens = 64 if args.engine.startswith("local") else 512
    return args


def build_chain(model: Any) -> tuple[Any, Any]:
    """The app: system prompt + question -> model -> text."""
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate

    prompt = ChatPromptTemplate.from_messages(
        [("system", STARTING_PROMPT), ("human", "{question}")]
    )
    return prompt | model | StrOutputParser(), prompt


async def accuracy(chain: Any, examples: Sequence[dict[str, Any]]) -> float:
    """Exact-match accuracy of ``chain`` on ``examples`` (concurrent; app errors score 0)."""
    outputs = await chain.abatch([e["inputs"] for e in examples], return_exceptions=True)
    scores = [
        0.0 if isinstance(out, BaseException) else object_counting.exact_match(e, out)[0]
        for e, out in zip(examples, outputs)
    ]
    return sum(scores) / len(scores) if scores else 0.0


def steps_trainset(train: Sequence[dict[str, Any]], steps: int, batch: int) -> list[dict]:
    """``steps * batch`` training examples, cycling through ``train`` (one epoch of exactly
    ``steps`` batches; optimize() shuffles them deterministically)."""
    return [train[i % len(train)] for i in range(steps * batch)]


def engines(args: argparse.Namespace, app: Any = None, backward: Any = None) -> tuple[Any, Any]:
    app = app if app is not None else tg_bridge.engine(args.engine)
    if backward is None:
        spec = args.backward_engine or args.engine
        if not spec.startswith("local"):
            backward = tg_bridge.engine(spec)
        else:
            # SmolLM2 otherwise loops until the token cap and its proposals cannot be read
            backward = tg_bridge.engine(spec, max_tokens=args.feedback_tokens, repeat_penalty=1.3)
    return app, backward


def run(args: argparse.Namespace, *, app_engine: Any = None,
        backward_engine: Any = None) -> dict[str, Any]:
    """Run the protocol; returns the report (a dict of plain values)."""
    from tg_bridge_langchain import EngineChatModel

    app, backward = engines(args, app_engine, backward_engine)
    total = args.train + args.val + args.test
    data = object_counting.generate(total, seed=args.seed)
    train, val, test = object_counting.split(data, train=args.train, validation=args.val)
    model = EngineChatModel(engine=app, max_tokens=args.answer_tokens)
    chain, prompt = build_chain(model)
    started = time.perf_counter()
    with tg_bridge.usage() as test_before_usage:
        before = run_sync(accuracy(chain, test))
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store or str(Path(tmp) / "runs.db")
        result = tg_bridge.optimize(
            chain, steps_trainset(train, args.steps, args.batch), valset=val,
            metric=object_counting.exact_match,
            batch_size=args.batch, engine=backward, backward_engine=backward, mode=args.mode,
            progress=False, store=store,
        )
    with tg_bridge.usage() as test_after_usage:
        after = run_sync(accuracy(chain, test))
    opt = result.total_usage()
    return {
        "task": args.task, "engine": getattr(app, "id", str(app)),
        "backward_engine": getattr(backward, "id", str(backward)),
        "model": getattr(app, "model", ""), "mode": args.mode,
        "sizes": {"train": len(train), "val": len(val), "test": len(test)},
        "steps": len(result.history), "batch": args.batch,
        "accepted_steps": result.accepted_steps,
        "val_before": result.baseline_score, "val_after": result.best_score,
        "test_before": before, "test_after": after,
        "optimization_calls": opt.get("calls", 0),
        "optimization_tokens": opt.get("prompt_tokens", 0) + opt.get("completion_tokens", 0),
        "usage_per_phase": result.usage,
        "test_eval_calls": test_before_usage.calls + test_after_usage.calls,
        "test_eval_tokens": test_before_usage.total_tokens + test_after_usage.total_tokens,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "final_prompt": prompt.messages[0].prompt.template,
    }


def print_report(report: dict[str, Any], *, as_json: bool = False) -> None:
    sizes = report["sizes"]
    rows = [
        ("task", report["task"]),
        ("app engine", f"{report['engine']} ({report['model']})"),
        ("backward engine", report["backward_engine"]),
        ("splits train/val/test", f"{sizes['train']}/{sizes['val']}/{sizes['test']}"),
        ("steps x batch", f"{report['steps']} x {report['batch']} ({report['mode']} mode)"),
        ("accepted steps", ", ".join(map(str, report["accepted_steps"])) or "none"),
        ("validation accuracy", f"{report['val_before']:.3f} -> {report['val_after']:.3f}"),
        ("test accuracy", f"{report['test_before']:.3f} -> {report['test_after']:.3f}"),
        ("optimization calls/tokens",
         f"{report['optimization_calls']} / {report['optimization_tokens']}"),
        ("test-eval calls/tokens", f"{report['test_eval_calls']} / {report['test_eval_tokens']}"),
        ("wall time", f"{report['wall_seconds']} s"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print("usage per phase:")
    for phase, counters in report["usage_per_phase"].items():
        tokens = counters.get("prompt_tokens", 0) + counters.get("completion_tokens", 0)
        print(f"  {phase:<9} {counters.get('calls', 0):>5} calls {tokens:>8} tokens")
    print(f"final system prompt:\n  {report['final_prompt']!r}")
    if as_json:
        print(json.dumps(report, default=str))
    print(f"test_accuracy_before={report['test_before']:.4f} "
          f"test_accuracy_after={report['test_after']:.4f}")


def main(argv: Sequence[str] | None = None, *, app_engine: Any = None,
         backward_engine: Any = None) -> int:
    """Run and print; returns the exit code. Engines passed here override ``--engine``."""
    args = parse_args(argv)
    try:
        report = run(args, app_engine=app_engine, backward_engine=backward_engine)
    except tg_bridge.TgBridgeError as exc:
        print(f"quality harness stopped: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print_report(report, as_json=args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
