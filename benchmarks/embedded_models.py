"""The embedded models side by side: latency, instruction following, quality as optimizers.

    python benchmarks/embedded_models.py [--models smollm2,qwen2.5-coder-0.5b,...] [--json]

1. Format suite: 8 short questions, each with a format instruction in the system prompt
   (only the number, one word, JSON with one key, yes/no, uppercase, three comma-separated
   words, only the name). Pass = the reply obeys the format (not necessarily correct content).
   Reports passes and mean seconds per answer (temperature 0, 1 llama.cpp thread).
2. Optimizer probe: 3 update requests through tg_bridge's real TGD optimizer (a system prompt,
   feedback on it from 2 examples); a proposal is *usable* when it was produced, differs from
   the old prompt, copies none of the examples' answers, questions or replies, and addresses
   the feedback (its key word appears). Reports usable proposals and seconds per proposal.

Numbers depend on machine load; the script prints the 1-minute load average with them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

import tg_bridge
from tg_bridge.optim.tgd import TGD
from tg_bridge.variable import Variable

MODELS = ("smollm2", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")


def _clean(text: str) -> str:
    return re.sub(r"[\s.!]+$", "", text.strip())


def _json_answer(text: str) -> bool:
    body = text.strip().removeprefix("```json").removeprefix("```").removesuffix("```").strip()
    try:
        value = json.loads(body)
    except ValueError:
        return False
    return isinstance(value, dict) and set(value) == {"answer"}


FORMAT_SUITE: tuple[tuple[str, str, Callable[[str], bool]], ...] = (
    ("Answer with only the number.", "How many legs does a spider have?",
     lambda t: bool(re.fullmatch(r"\d+", _clean(t)))),
    ("Answer with only one word.", "What color is the sky on a clear day?",
     lambda t: bool(re.fullmatch(r"[A-Za-z]+", _clean(t)))),
    ('Reply with JSON only: an object with the single key "answer".',
     "What is the capital of France?", _json_answer),
    ("Answer with yes or no only.", "Is ice colder than boiling water?",
     lambda t: _clean(t).lower() in ("yes", "no")),
    ("Reply in uppercase letters only.", "Name a fruit.",
     lambda t: bool(t.strip()) and t.strip() == t.strip().upper() and
     any(c.isalpha() for c in t)),
    ("Answer with only the number.", "What is 7 times 8?",
     lambda t: bool(re.fullmatch(r"\d+", _clean(t)))),
    ("Give exactly three words separated by commas, nothing else.", "Name three colors.",
     lambda t: len([w for w in _clean(t).split(",") if re.fullmatch(r"\s*[A-Za-z]+\s*", w)])
     == 3),
    ("Answer with only the name.", "Who wrote Romeo and Juliet?",
     lambda t: 1 <= len(_clean(t).split()) <= 3),
)

#: (old system prompt, [(question, wrong reply, answer)], feedback, word the fix must carry)
OPTIMIZER_PROBE: tuple[tuple[str, list[tuple[str, str, str]], str, str], ...] = (
    ("You are an assistant.",
     [("How many days are in a week?", "There are 7 days in a week.", "7"),
      ("What is 6 times 7?", "6 times 7 is 42.", "42")],
     "The reply must be only the bare number, with no words or sentences around it.",
     "number"),
    ("You are a helpful assistant.",
     [("What color is grass?", "Grass is usually green because of chlorophyll.", "green"),
      ("What is the opposite of hot?", "The opposite of hot is cold.", "cold")],
     "The reply must be a single word, with no sentence or explanation.",
     "word"),
    ("Answer the question.",
     [("Is the sun a star?", "Yes, the Sun is a star at the center of our system.", "yes"),
      ("Can fish fly?", "Most fish cannot fly, although flying fish glide.", "no")],
     "The reply must be exactly yes or no, lowercase, nothing else.",
     "yes"),
)


def format_suite(engine: Any) -> dict[str, Any]:
    passes, seconds, replies = 0, [], []
    for system, question, check in FORMAT_SUITE:
        started = time.perf_counter()
        reply = engine.complete([{"role": "system", "content": system},
                                 {"role": "user", "content": question}], max_tokens=48).text
        seconds.append(time.perf_counter() - started)
        ok = check(reply)
        passes += ok
        replies.append({"instruction": system, "reply": reply.strip()[:80], "pass": ok})
    return {"format_pass": passes, "format_total": len(FORMAT_SUITE),
            "seconds_per_answer": round(sum(seconds) / len(seconds), 2), "replies": replies}


def leaks(new: str, examples: list[tuple[str, str, str]], feedback: str) -> bool:
    """True when ``new`` copies an example's question, the start of its reply, or its answer
    (an answer word the feedback itself uses, like "yes or no", is not a leak)."""
    lowered = new.lower()
    for question, reply, answer in examples:
        if question.lower() in lowered or reply.lower()[:25] in lowered:
            return True
        in_feedback = re.search(rf"\b{re.escape(answer)}\b", feedback, re.I)
        if not in_feedback and re.search(rf"\b{re.escape(answer)}\b", new, re.I):
            return True
    return False


def optimizer_probe(engine: Any) -> dict[str, Any]:
    usable, seconds, proposals = 0, [], []
    for old, examples, feedback, word in OPTIMIZER_PROBE:
        param = Variable(old, role="system prompt of a question-answering app",
                         requires_grad=True, name="system_prompt")
        for question, reply, _ in examples:
            param.add_gradient(feedback, context=f"question: {question}\nreply: {reply}")
        started = time.perf_counter()
        patch = TGD([param], engine=engine).propose()
        seconds.append(time.perf_counter() - started)
        new = patch.changes[0].new if patch.changes else None
        leaked = new is not None and leaks(new, examples, feedback)
        ok = bool(new) and new != old and not leaked and word in (new or "").lower()
        usable += ok
        proposals.append({"old": old, "new": (new or "")[:200], "usable": ok,
                          "leaked": bool(leaked),
                          "rejected": [r.get("reason") for r in
                                       patch.metadata.get("rejected") or ()]})
    return {"optimizer_usable": usable, "optimizer_total": len(OPTIMIZER_PROBE),
            "seconds_per_proposal": round(sum(seconds) / len(seconds), 2),
            "proposals": proposals}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--skip-optimizer", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows = []
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        engine = tg_bridge.engine(f"local:{name}", max_tokens=256)
        started = time.perf_counter()
        engine.complete([{"role": "user", "content": "Hi"}], max_tokens=1)  # load the model
        load = round(time.perf_counter() - started, 1)
        row: dict[str, Any] = {"model": name, "load_seconds": load,
                               "load_avg_1min": round(os.getloadavg()[0], 1)}
        row.update(format_suite(engine))
        if not args.skip_optimizer:
            row.update(optimizer_probe(engine))
        rows.append(row)
        print(f"{name:<20} format {row['format_pass']}/{row['format_total']} "
              f"{row['seconds_per_answer']:>5} s/answer  "
              + (f"optimizer {row['optimizer_usable']}/{row['optimizer_total']} usable "
                 f"{row['seconds_per_proposal']:>5} s/proposal  " if "optimizer_usable" in row
                 else "")
              + f"(load {row['load_avg_1min']})", flush=True)
        for reply in row["replies"]:
            print(f"    {'ok ' if reply['pass'] else 'BAD'} {reply['instruction'][:40]!r:<44} "
                  f"{reply['reply']!r}")
        for proposal in row.get("proposals", ()):
            print(f"    {'ok ' if proposal['usable'] else 'BAD'} {proposal['new']!r}"
                  + (f" rejected={proposal['rejected']}" if proposal["rejected"] else ""))
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
