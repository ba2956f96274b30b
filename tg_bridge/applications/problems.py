"""The bundled code problems (``tg_bridge/data/code_problems.json``), written for tg_bridge.

Each :class:`CodeProblem` has a task statement, the function name to implement, a ``draft``
(a plausible but wrong first attempt, so loops have something to fix offline), ``tests`` the
optimizer sees as feedback, and ``hidden_tests`` that only score the final code (the paper's
LeetCode-Hard protocol keeps the evaluation tests out of the feedback the same way).
"""

from __future__ import annotations

import dataclasses
import json
from importlib import resources

from ..exceptions import UsageError

__all__ = ["CodeProblem", "load_code_problems"]


@dataclasses.dataclass(frozen=True)
class CodeProblem:
    """One problem; ``all_tests`` = visible then hidden tests."""

    id: str
    title: str
    prompt: str
    entry_point: str
    draft: str
    tests: tuple[str, ...]
    hidden_tests: tuple[str, ...]

    @property
    def all_tests(self) -> tuple[str, ...]:
        return self.tests + self.hidden_tests


def load_code_problems(ids: list[str] | tuple[str, ...] | None = None) -> list[CodeProblem]:
    """The bundled problems in file order, or those named in ``ids`` (in that order).

    Raises :class:`~tg_bridge.exceptions.UsageError` for an unknown id.
    """
    text = resources.files("tg_bridge").joinpath("data", "code_problems.json").read_text("utf-8")
    problems = [
        CodeProblem(
            id=p["id"],
            title=p["title"],
            prompt=p["prompt"],
            entry_point=p["entry_point"],
            draft=p["draft"],
            tests=tuple(p["tests"]),
            hidden_tests=tuple(p["hidden_tests"]),
        )
        for p in json.loads(text)["problems"]
    ]
    if ids is None:
        return problems
    by_id = {p.id: p for p in problems}
    unknown = [i for i in ids if i not in by_id]
    if unknown:
        raise UsageError(f"unknown code problem(s) {unknown}; known: {sorted(by_id)}")
    return [by_id[i] for i in ids]
