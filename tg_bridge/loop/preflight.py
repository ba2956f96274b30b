"""Checks ``optimize()`` makes before it spends anything (no engine call, no store write).

:func:`check_optimizable` fails fast when the target has nothing tg_bridge could edit — a
bare ``RunnableLambda``, a chain without any prompt — instead of paying for a baseline
evaluation and then finishing "successfully" with nothing changed.
"""

from __future__ import annotations

from typing import Any

from ..exceptions import UsageError

__all__ = ["check_optimizable", "describe_target"]


def check_optimizable(runner: Any) -> None:
    """Raise :class:`UsageError` (saying what was found) when ``runner``'s target has no
    prompt an adapter can reach without running it.

    Targets without an adapter view (``@optimizable`` functions) are not judged here: their
    prompts are only discovered while they run. Pure; never calls the target or an engine.
    """
    adapter = getattr(runner, "adapter", None)
    if adapter is None:
        return
    if runner.bindings():
        return
    kind = getattr(adapter, "name", "") or type(adapter).__name__
    raise UsageError(
        f"nothing to optimize: {describe_target(runner.target)} has no prompt tg_bridge can"
        f" edit (the {kind} adapter found 0 prompt templates, chat prompts or system prompts)."
        " A bare function or RunnableLambda has no prompt: pass the chain or engine that"
        " contains the prompt, or build the chain with a prompt template. Nothing was run."
    )


def describe_target(target: Any) -> str:
    """``a RunnableLambda 'shout'``: the target's type, and its name when it has one."""
    kind = type(target).__name__
    name = getattr(target, "name", None)
    label = f" {name!r}" if isinstance(name, str) and name and name != kind else ""
    article = "an" if kind[:1].lower() in "aeiou" else "a"
    return f"{article} {kind}{label}"
