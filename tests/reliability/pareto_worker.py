"""``python pareto_worker.py STORE KILL_AT [RUN_ID] [POOL_OUT]``: a deterministic
``strategy="pareto"`` run that SIGKILLs itself at a chosen event (crash_worker.py's
fault-injection hook: engine calls and store writes are counted, never the clock).

Prints ``run_id best_score events commits`` where ``commits`` lists the event numbers at
which each ``commit_step`` happened (comma-separated), so a test can aim a kill right before
one. With ``POOL_OUT``, the pool the run holds when its first step starts (after a resume:
the restored pool) is written there as JSON (:meth:`ParetoPool.snapshot`).

The app is test_candidates_pareto's: the original prompt solves one validation example,
"Please ..." two others, "Kindly ..." two more. Answers depend on the prompts only, so a
resumed process answers as the uninterrupted one would.
"""

from __future__ import annotations

import json
import re
import sys

import tg_bridge.adapters
from tests.reliability.crash_worker import KillSwitch, install
from tg_bridge.loop import Example, driver, optimize
from tg_bridge.store import RunStore
from tg_bridge.testing import FakeApp, FakeAppAdapter, FakeEngine

TRAIN = [({"q": w}, w.upper()) for w in ("apple", "pear", "fig", "kiwi")]
VAL = [Example({"q": w}, w.upper()) for w in ("lime", "date", "plum", "yam")]
PLEASE = {"apple", "pear", "lime", "date"}
#: current prompt -> the optimizer's proposal
NEXT = {"Answer {q}": "Please answer {q}", "Please answer {q}": "Kindly answer {q}",
        "Kindly answer {q}": "Please answer {q}"}
_CURRENT = re.compile(r"<current_value>\n(.*?)\n</current_value>", re.DOTALL)


def picky(prompt: str) -> str:
    word = prompt.rsplit(" ", 1)[-1]
    good = (("Please" in prompt and word in PLEASE) or ("Kindly" in prompt and word not in PLEASE)
            or (prompt.startswith("Answer") and word == "yam"))
    return f"Certainly! {word.upper()}" if good else word


def metric(example, output):
    ok = output == f"Certainly! {example.expected}"
    return (1.0, "good") if ok else (0.0, "Answer in full, starting with 'Certainly!'.")


def make_respond(tick):
    def respond(messages, fmt):
        tick()
        if isinstance(fmt, dict) and "improved_value" in fmt.get("properties", {}):
            current = _CURRENT.search(messages[-1]["content"])
            return {"improved_value": NEXT.get(current.group(1) if current else "", "Answer {q}")}
        return "Ask politely."
    return respond


def run(store: str, resume: str | None, tick, pool_out: str | None = None):
    if pool_out:
        real = driver.pareto_step

        async def first_pool(state, planned, *args, **kwargs):
            if driver.pareto_step is first_pool:  # only the first step of this process
                driver.pareto_step = real
                with open(pool_out, "w", encoding="utf-8") as fh:
                    json.dump(state.pool.snapshot(), fh)
            return await real(state, planned, *args, **kwargs)

        driver.pareto_step = first_pool
    app = FakeApp("Answer {q}", picky)
    return optimize(app, TRAIN, metric=metric, valset=VAL, engine=FakeEngine(make_respond(tick)),
                    strategy="pareto", batch_size=4, epochs=3, seed=3, store=store,
                    resume=resume, progress=False)


if __name__ == "__main__":
    tg_bridge.adapters.load_adapters = lambda: [FakeAppAdapter()]  # this process only
    switch = KillSwitch(int(sys.argv[2]))
    install(switch)
    commits: list[int] = []
    counted_commit = RunStore.commit_step

    def commit_step(self, *args, **kwargs):
        commits.append(switch.count + 1)  # the event number this commit ticks as
        return counted_commit(self, *args, **kwargs)

    RunStore.commit_step = commit_step  # type: ignore[method-assign]
    resume = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] != "-" else None
    result = run(sys.argv[1], resume, switch.tick, sys.argv[4] if len(sys.argv) > 4 else None)
    print(result.run_id, result.best_score, switch.count, ",".join(map(str, commits)))
