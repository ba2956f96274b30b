"""The TextGrad side of the step-cost benchmark (runs in a venv with textgrad 0.1.8).

One optimization step of the shared task: two chained LLM calls with trainable system prompts,
an LLM-judge loss per example, a batch, backward, one TGD update — written the way TextGrad's
own tutorials write it. Prints one JSON line: {"wall": seconds}. Calls and tokens are counted
by the canned server, not here.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()

    # A fresh cache dir: TextGrad caches completions on disk; a warm cache would skip calls.
    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="tg-bench-cache-")
    # TextGrad writes ./logs/ when imported; keep that out of the repository.
    os.chdir(tempfile.mkdtemp(prefix="tg-bench-cwd-"))
    os.environ.setdefault("OPENAI_API_KEY", "canned")
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network fetch at import

    import textgrad as tg
    from openai import OpenAI
    from tasks import JUDGE_INSTRUCTION, QUESTIONS, SYSTEM_PROMPT_1, SYSTEM_PROMPT_2
    from textgrad.engine.local_model_openai_api import ChatExternalClient

    client = OpenAI(base_url=args.base_url, api_key="canned")
    engine = ChatExternalClient(client=client, model_string="canned")
    tg.set_backward_engine(engine, override=True)

    sys1 = tg.Variable(SYSTEM_PROMPT_1, requires_grad=True, role_description="system prompt of step 1")
    sys2 = tg.Variable(SYSTEM_PROMPT_2, requires_grad=True, role_description="system prompt of step 2")
    step1 = tg.BlackboxLLM(engine, system_prompt=sys1)
    step2 = tg.BlackboxLLM(engine, system_prompt=sys2)
    optimizer = tg.TGD(parameters=[sys1, sys2])
    loss_fn = tg.TextLoss(JUDGE_INSTRUCTION)

    started = time.perf_counter()
    optimizer.zero_grad()
    losses = []
    for question in QUESTIONS[: args.batch]:
        x = tg.Variable(question, requires_grad=False, role_description="question to answer")
        draft = step1(x)
        answer = step2(draft)
        losses.append(loss_fn(answer))
    total = tg.sum(losses)
    total.backward()
    optimizer.step()
    print(json.dumps({"wall": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
