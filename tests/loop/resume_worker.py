"""Runs one optimize() for the resume tests: ``python resume_worker.py STORE [RUN_ID]``.

Everything is deterministic (batches from the seed, engine answers from the prompts), so an
uninterrupted run and a killed-and-resumed run must commit exactly the same steps.
"""

from __future__ import annotations

import re
import sys

import tg_bridge.adapters
from tg_bridge.loop import optimize
from tg_bridge.testing import FakeApp, FakeAppAdapter, FakeEngine

# expected values are unused by the metric; plain numbers would be "memorized labels" in the
# proposals "version N: ..." (the label-leak check), so they are words
TRAIN = [({"q": f"w{i}"}, f"w{i}") for i in range(8)]
VAL = [({"q": "v0"}, 0), ({"q": "v1"}, 1)]


def model(prompt: str) -> str:
    return prompt  # the answer shows the live template, so the metric sees the version


def version(text: str) -> int:
    match = re.search(r"version (\d+)", text)
    return int(match.group(1)) if match else 0


def metric(example, output):
    return ((version(output) * 7) % 10) / 10


def respond(messages, response_format):
    prompt = messages[-1]["content"]
    if isinstance(response_format, dict) and "improved_value" in response_format.get("properties", {}):
        shift = sum(int(k) for k in re.findall(r"Shift by (\d)", prompt)) or 1
        return {"improved_value": f"version {version(prompt) + shift}: answer {{q}}"}
    ids = [int(i) for i in re.findall(r"\bw(\d+)\b", prompt)]
    return f"Shift by {sum(ids) % 3 + 1}"


def run(store: str, resume: str | None = None, delay: float = 0.0):
    """Optimize; the caller makes FakeApp adapter-owned (see ``__main__`` and the tests)."""
    app = FakeApp("version 0: answer {q}", model)
    engine = FakeEngine(respond, delay=delay)
    return optimize(app, TRAIN, metric=metric, valset=VAL, engine=engine, batch_size=2,
                    epochs=2, store=store, resume=resume, progress=False, seed=7)


if __name__ == "__main__":
    tg_bridge.adapters.load_adapters = lambda: [FakeAppAdapter()]  # this process only
    result = run(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None, delay=0.03)
    print(result.run_id, result.best_score)
