"""Interim demo: one question to the embedded local model (offline, no API key).

Run with ``make demo`` (or ``python examples/demo.py``). It builds the default engine with
``tg_bridge.engine("local")`` — SmolLM2-135M-Instruct run in-process by llama.cpp — asks one
short question, then a structured one, and prints the answers, tokens and latency.
"""

from __future__ import annotations

import time

from pydantic import BaseModel

import tg_bridge


class Capital(BaseModel):
    country: str
    capital: str


def main() -> None:
    engine = tg_bridge.engine("local")
    print(f"engine: {engine.id} ({engine.model})")
    with tg_bridge.usage() as meter:
        started = time.perf_counter()
        answer = engine.complete(
            [
                {"role": "system", "content": "Answer in one short sentence."},
                {"role": "user", "content": "What is the capital of France?"},
            ],
            max_tokens=48,
        )
        print(f"\nQ: What is the capital of France?\nA: {answer.text.strip()}")
        print(
            f"   {answer.prompt_tokens} prompt + {answer.completion_tokens} completion tokens, "
            f"{answer.latency:.2f}s"
        )
        structured = engine.complete(
            [{"role": "user", "content": "Give the capital of Italy as JSON."}],
            response_format=Capital,
            max_tokens=48,
        )
        print(f"\nStructured (JSON-schema constrained): {structured.parsed!r}")
        print(f"   {structured.total_tokens} tokens, {structured.latency:.2f}s")
        total = time.perf_counter() - started
    print(f"\nusage: {meter} in {total:.2f}s (model load included)")


if __name__ == "__main__":
    main()
