"""Shared pieces of the loop tests: a polite-only model and a scripted optimizer engine."""

from __future__ import annotations

import re

from tg_bridge.testing import FakeEngine


def polite_model(prompt: str) -> str:
    """Answers well ONLY when the live prompt asks politely."""
    word = prompt.rsplit(" ", 1)[-1]
    if "please" in prompt.lower():
        return f"Certainly! {word.upper()}"
    return word


def metric(example, output):
    ok = output == f"Certainly! {example.expected}"
    return (1.0, "good") if ok else (0.0, "The answer must start with 'Certainly!' and be upper case.")


def improving_engine(new_values, *, delay: float = 0.0) -> FakeEngine:
    """Backward calls get a fixed criticism; each update call gets the next of ``new_values``
    (a callable old_value -> new_value, or a list of those, used in order)."""
    queue = list(new_values) if isinstance(new_values, (list, tuple)) else None

    def respond(messages, response_format):
        props = (response_format or {}).get("properties", {}) if isinstance(response_format, dict) else {}
        if "improved_value" in props:
            fn = queue.pop(0) if queue is not None else new_values
            old = _current_value(messages[-1]["content"])
            return {"improved_value": fn(old)}
        return "Ask the model politely so that it answers in full."

    return FakeEngine(respond, delay=delay)


def _current_value(prompt: str) -> str:
    # the update prompt shows the current value; the tests' templates all contain "{q}"
    match = re.search(r"^.*\{q\}.*$", prompt, re.MULTILINE)
    return match.group(0).strip() if match else ""
