"""What ``make demo`` runs: a LangChain app gets a measurably better prompt, offline.

The app is an ordinary LCEL chain — a system prompt ("You are an assistant.") and the user's
arithmetic question -> an embedded model -> text. The demo's app runs on Qwen2.5-Coder-1.5B
(measured: with the 0.5B as the app no run gained — it ignores the 1.5B's general but polite
rewrite "Please provide a numerical answer ... without any additional text", which the 1.5B
itself obeys); ``--engine local`` runs the app on the 0.5B, ``engine="local"``'s default.
Its users need the bare number (a downstream program parses it), but the model answers in
sentences ("6 times 7 is 42."), so the exact-match score is near 0. tg_bridge runs a few training questions,
the embedded Qwen2.5-Coder-1.5B writes feedback and a new system prompt, the candidate is
kept only if it scores strictly better on a validation set, and the kept prompt is written
back into the live chain. Each step proposes three candidates (``candidates=3``: TextGrad's
greedy rewrite, a greedy minimal edit, and a rewrite sampled at temperature 0.7 with a fixed
seed, so runs repeat) and validates the best on the step's batch: measured, TextGrad's single
proposal per step kept only "Please provide a numerical answer to the question." (0.17 on
test), which the app still answers in sentences. The demo then measures the app on a TEST
set the optimizer never saw, before and after, and prints both. When nothing improved it says
so plainly and the app keeps its original prompt.

    make demo                      # or: python examples/demo.py [--steps N --batch B ...]
    python examples/demo.py --engine openai:MODEL     # app and feedback on an endpoint

The metric's feedback states the app's requirement (every reply must be only the number) and
never the expected answer, so what helps is a general instruction, not a memorized label.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable
from tg_bridge_langchain import EngineChatModel

import tg_bridge
from tg_bridge.engines.models import default_model
from tg_bridge.engines.sync import run_sync
from tg_bridge.patching.apply import patch_between

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_optimization  # noqa: E402

SYSTEM_PROMPT = "You are an assistant."
#: Rules every proposed prompt must respect (shown to the optimizer): a prompt that quotes a
#: training question or answer would not generalize.
CONSTRAINTS = (
    ("The prompt must stay general and work for any question: never include a specific "
     "question, number or answer from the examples."),
)

#: Small arithmetic questions (one numeric answer each). Arithmetic on purpose: on trivia
#: questions ("How many sides does a hexagon have?") the 1.5B critic was measured to ask for
#: that one fact ("ask for the number of sides of a hexagon") and the update copied it into the
#: prompt; on arithmetic its feedback was the general rule 5 times out of 5.
QUESTIONS: tuple[tuple[str, str], ...] = (
    ("What is 12 plus 9?", "21"),
    ("What is 6 times 7?", "42"),
    ("What is 15 divided by 3?", "5"),
    ("What is 9 squared?", "81"),
    ("What is 20 plus 22?", "42"),
    ("What is 8 times 5?", "40"),
    ("What is 50 minus 8?", "42"),
    ("What is 3 plus 4?", "7"),
    ("What is 10 times 10?", "100"),
    ("What is 18 divided by 2?", "9"),
    ("What is 7 plus 8?", "15"),
    ("What is 11 times 3?", "33"),
    ("What is 30 minus 12?", "18"),
    ("What is 4 times 4?", "16"),
    ("What is 25 plus 25?", "50"),
    ("What is 9 minus 4?", "5"),
    ("What is 2 times 9?", "18"),
    ("What is 100 divided by 4?", "25"),
    ("What is 13 plus 6?", "19"),
    ("What is 5 times 6?", "30"),
    ("What is 40 minus 15?", "25"),
    ("What is 3 times 8?", "24"),
    ("What is 16 plus 16?", "32"),
    ("What is 21 divided by 7?", "3"),
    ("What is 60 minus 20?", "40"),
    ("What is 7 times 7?", "49"),
    ("What is 14 plus 5?", "19"),
    ("What is 12 divided by 4?", "3"),
    ("What is 9 times 3?", "27"),
    ("What is 33 minus 11?", "22"),
    ("What is 6 plus 9?", "15"),
    ("What is 2 times 12?", "24"),
)

_TRAILING = re.compile(r"[\s.!]+$")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def exact_number(example: dict[str, Any], output: Any) -> tuple[float, str]:
    """1.0 when the reply is exactly the expected number (surrounding spaces and a final
    period allowed), else 0.0 with feedback that never reveals the expected number."""
    text = _TRAILING.sub("", str(output).strip())
    expected = str(example["expected"])
    if text == expected:
        return 1.0, "Correct: the reply is exactly the bare number."
    rule = ("Every reply of this app must be only the number (digits only), never a "
            "sentence. The system prompt must tell the assistant this for all questions.")
    if expected in _NUMBER.findall(text):
        return 0.0, f"Wrong format: {rule}"
    # same rule first: a number written as a word ("six") is a format error too, and feedback
    # that only says "wrong" makes a small critic fix this one question instead of the rule
    return 0.0, f"Wrong format or wrong number: {rule}"


def splits(seed: int, train: int, val: int,
           test: int | None = None) -> tuple[list[dict], list[dict], list[dict]]:
    """Shuffle :data:`QUESTIONS` with ``seed``; the first ``train`` train, the next ``val``
    validate, the next ``test`` (default: all the rest) test — never shown to the optimizer."""
    rows = [{"inputs": {"question": q}, "expected": a} for q, a in QUESTIONS]
    random.Random(seed).shuffle(rows)
    end = None if test is None else train + val + test
    return rows[:train], rows[train:train + val], rows[train + val:end]


def build_chain(model: Any) -> tuple[Runnable, ChatPromptTemplate]:
    """The app (and its prompt, to show what was written back)."""
    prompt = ChatPromptTemplate.from_messages([("system", SYSTEM_PROMPT), ("human", "{question}")])
    return prompt | model | StrOutputParser(), prompt


async def accuracy(chain: Runnable, examples: Sequence[dict[str, Any]]) -> float:
    """Exact-number accuracy of ``chain`` on ``examples`` (an app error scores 0)."""
    outputs = await chain.abatch([e["inputs"] for e in examples], return_exceptions=True)
    scores = [0.0 if isinstance(out, BaseException) else exact_number(e, out)[0]
              for e, out in zip(examples, outputs)]
    return sum(scores) / len(scores) if scores else 0.0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default=None,
                        help="the app's model: local (the 0.5B) | local:smollm2 | openai:MODEL "
                             "(default: the embedded Qwen2.5-Coder-1.5B, see the module doc)")
    parser.add_argument("--backward-engine", default=None,
                        help="the model writing feedback and prompts (default: tg_bridge's "
                             "choice: the embedded Qwen2.5-Coder-1.5B)")
    parser.add_argument("--steps", type=int, default=3, help="optimization steps (default 3)")
    parser.add_argument("--batch", type=int, default=2, help="questions per step (default 2)")
    parser.add_argument("--val", type=int, default=6, help="validation questions (default 6)")
    parser.add_argument("--test", type=int, default=12, help="test questions (default 12)")
    parser.add_argument("--candidates", type=int, default=3,
                        help="candidates per step (default 3: a greedy rewrite, a greedy "
                             "minimal edit and a seeded sampled one; 1: TextGrad's single "
                             "proposal)")
    parser.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    parser.add_argument("--answer-tokens", type=int, default=40,
                        help="max tokens per app answer (default 40)")
    parser.add_argument("--deadline", type=float, default=900.0,
                        help="seconds one model call may take, queueing included (default "
                             "900: on a busy 2-core machine a call to the embedded model "
                             "waits behind the others for minutes; tg_bridge's default is 120)")
    parser.add_argument("--store", default=None,
                        help="run store path (default: tg_bridge's .tg_bridge/runs.db)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, no step details")
    args = parser.parse_args(argv)
    for name in ("steps", "batch", "val", "test", "candidates"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if not args.deadline > 0:
        parser.error("--deadline must be > 0")
    if args.steps * args.batch + args.val + args.test > len(QUESTIONS):
        parser.error(f"--steps x --batch + --val + --test must be at most {len(QUESTIONS)}")
    return args


def restore_unless_improved(chain: Runnable, result: Any, *, improved: bool) -> None:
    """Without a strict validation gain, write the original prompts back (a gate that keeps
    ties may have kept a change that helps nothing): the app stays as it was."""
    changes = result.best_patch.changes if result.best_patch is not None else ()
    if improved or not changes:
        return
    undo = patch_between({c.target: c.new for c in changes}, {c.target: c.old for c in changes})
    tg_bridge.apply_patch(chain, undo)


def verdict(val_before: float, val_after: float, test_before: float, test_after: float) -> str:
    """One plain sentence on what the run achieved."""
    if val_after <= val_before:
        return ("No improvement found: no candidate prompt scored better on the validation "
                "set, so the app keeps its original prompt.")
    if test_after > test_before:
        return (f"Improved: test accuracy {test_before:.2f} -> {test_after:.2f} on questions "
                "the optimizer never saw.")
    return (f"The kept prompt scored better on validation but not on the unseen test set "
            f"({test_before:.2f} -> {test_after:.2f}): no real gain this time.")


def main(argv: Sequence[str] | None = None, *, app_engine: Any = None,
         backward_engine: Any = None) -> int:
    """Run the demo; returns the exit code. Engines passed here override the options
    (tests pass FakeEngines)."""
    args = parse_args(argv)
    with tg_bridge.context(timeout=args.deadline, deadline=args.deadline):
        return _run(args, app_engine, backward_engine)


def _run(args: argparse.Namespace, app_engine: Any, backward_engine: Any) -> int:
    started = time.perf_counter()
    print("tg_bridge demo: a LangChain app gets a better system prompt, measured on "
          "questions the optimizer never saw\n")
    app = app_engine if app_engine is not None else tg_bridge.engine(
        args.engine or f"local:{default_model(backward=True)}")
    backward = backward_engine if backward_engine is not None else args.backward_engine
    model = EngineChatModel(engine=app, max_tokens=args.answer_tokens)
    chain, prompt = build_chain(model)
    train, val, test = splits(args.seed, args.steps * args.batch, args.val, args.test)
    print(f"app model: {model.model_name}; {len(train)} training, {len(val)} validation, "
          f"{len(test)} test questions")
    sample = test[0]["inputs"]["question"]
    first = run_sync(chain.ainvoke({"question": sample}))
    print(f"\nQ: {sample}\nA: {first.strip()!r}   (expected {test[0]['expected']!r})")
    test_before = run_sync(accuracy(chain, test))
    try:
        result = tg_bridge.optimize(
            chain, train, valset=val, metric=exact_number, batch_size=args.batch,
            backward_engine=backward, store=args.store, progress=not args.quiet,
            constraints=CONSTRAINTS, candidates=args.candidates,
        )
    except tg_bridge.TgBridgeError as exc:
        print(f"optimization stopped: {type(exc).__name__}: {exc}")
        return 1
    feedback_by = getattr(result, "feedback_engine", "") or str(getattr(backward, "model", ""))
    if feedback_by:
        print(f"feedback and new prompts written by: {feedback_by}")
    print_optimization(result, quiet=args.quiet)
    val_before, val_after = result.baseline_score or 0.0, result.best_score or 0.0
    restore_unless_improved(chain, result, improved=val_after > val_before)
    test_after = run_sync(accuracy(chain, test))
    print(f"\nvalidation accuracy: {val_before:.2f} -> {val_after:.2f}  ({len(val)} questions)")
    print(f"test accuracy:       {test_before:.2f} -> {test_after:.2f}  ({len(test)} questions "
          "the optimizer never saw)")
    print(verdict(val_before, val_after, test_before, test_after))
    print(f"\nthe live chain's system prompt now: {prompt.messages[0].prompt.template!r}")
    if not args.quiet:
        again = run_sync(chain.ainvoke({"question": sample}))
        print(f"Q: {sample}\nA: {again.strip()!r}")
    print(f"\nwall time {time.perf_counter() - started:.0f} s; run {result.run_id} stored in "
          f"{result.store_path}")
    print(f"demo_val={val_before:.4f}->{val_after:.4f} demo_test={test_before:.4f}->"
          f"{test_after:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
