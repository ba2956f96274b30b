"""Graph builders and a counting responder shared by the autograd/optim/patching tests."""

from __future__ import annotations

from typing import Any

from tg_bridge.autograd.functional import llm_call
from tg_bridge.testing import FakeEngine
from tg_bridge.variable import Variable


def responder(messages: list[dict[str, str]], response_format: Any) -> Any:
    """Answers every kind of request tg_bridge makes, deterministically."""
    props = (response_format or {}).get("properties", {})
    if "improved_value" in props:
        return {"improved_value": "Improved: " + _current(messages)}
    if "feedback" in props:
        ids = props["feedback"]["required"]
        return {"feedback": {i: f"feedback for {i}" for i in ids}}
    last = messages[-1]["content"]
    if "<IMPROVED_VALUE>" in last:
        return f"<IMPROVED_VALUE>Improved: {_current(messages)}</IMPROVED_VALUE>"
    if '<feedback id="' in last:
        import re

        ids = re.search(r"trainable parameter: (.*)\.\n", last).group(1).split(", ")
        return "".join(f'<feedback id="{i}">tagged feedback {i}</feedback>' for i in ids)
    if "pieces of feedback" in last:
        return "merged feedback"
    if messages[0]["role"] == "system" and "evaluate the output" in messages[0]["content"]:
        return "The answer is wrong: it should say 4."
    if messages[0]["role"] == "system" and "critic" in messages[0]["content"]:
        return "Be more precise about the number."
    return "model answer"


def _current(messages: list[dict[str, str]]) -> str:
    text = messages[-1]["content"] if "<current_value>" in messages[-1]["content"] else messages[1]["content"]
    start = text.index("<current_value>\n") + len("<current_value>\n")
    return text[start : text.index("\n</current_value>")]


def counting_engine(structured: bool = True, **kw: Any) -> FakeEngine:
    return FakeEngine(responder, supports_structured=structured, **kw)


def chain(engine: Any, n: int, *, params: list[Variable] | None = None, question: str = "What is 2+2?"):
    """N chained LLM steps, step i with trainable system prompt i. Returns (output, params)."""
    x = Variable(question, role="user question", kind="input", name="question")
    if params is None:
        params = [
            Variable(
                f"You are step {i}. Answer carefully.",
                role=f"system prompt of step {i}",
                requires_grad=True,
                kind="parameter",
                name=f"system{i}",
            )
            for i in range(n)
        ]
    for i in range(n):
        x = llm_call(engine, x, system=params[i], name=f"step{i}")
    return x, params
