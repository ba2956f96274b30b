"""Bounding feedback: more than K gradients on one variable are merged by the LLM first.

Prompts stay bounded however large the batch: at most :data:`FAN_IN` items (each clipped)
go into one summary call; more than that are reduced in rounds (a tree of summaries).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from ..variable import Gradient
from . import prompts
from .render import MAX_FEEDBACK_CHARS, clip

__all__ = ["FAN_IN", "summarize_gradients"]

#: Most feedback items merged by one summary call.
FAN_IN = 8

Ask = Callable[[list[dict[str, str]]], Awaitable[str]]


def summary_messages(role: str, gradients: Sequence[Gradient]) -> list[dict[str, str]]:
    items = "\n\n".join(
        f"<feedback {i}>\n{clip(g.text, MAX_FEEDBACK_CHARS)}\n</feedback {i}>"
        for i, g in enumerate(gradients, 1)
    )
    return [
        {"role": "user", "content": prompts.SUMMARY_USER.format(role=role, count=len(gradients), items=items)}
    ]


async def summarize_gradients(
    role: str, gradients: Sequence[Gradient], max_gradients: int, ask: Ask
) -> list[Gradient]:
    """``gradients`` if there are at most ``max_gradients``, else merged ones (<= the limit).

    ``ask(messages) -> text`` makes one counted LLM call. Calls of one round run
    concurrently. Each summary keeps the first source of the items it merged.
    """
    current = list(gradients)
    while len(current) > max_gradients:
        size = min(FAN_IN, len(current))
        chunks = [current[i : i + size] for i in range(0, len(current), size)]
        if len(chunks) > 1 and len(chunks[-1]) == 1:  # nothing to merge: keep it as is
            tail = chunks.pop()
        else:
            tail = []
        texts = await asyncio.gather(*(ask(summary_messages(role, chunk)) for chunk in chunks))
        merged = []
        for chunk, text in zip(chunks, texts):
            source = next((g.source for g in chunk if g.source is not None), None)
            body = text.strip() or clip(" ".join(g.text for g in chunk), MAX_FEEDBACK_CHARS)
            merged.append(Gradient(body, source, f"summary of {len(chunk)} feedback items"))
        current = merged + tail
        if len(chunks) == 1 and not tail:
            break
    return current
