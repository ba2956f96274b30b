"""Why a span could not be used, counted per reason on the graph
(``graph.metadata["skipped_by_reason"]``; ``metadata["skipped_spans"]`` is their total).

A span is *skipped* when it looks like a step reconstruction should use (an LLM call, a
tool, a retriever) but lacks what the graph needs, or its content could not be read. Spans
folded into another (a wrapper, the success half of a start/success pair, a span inside a
tool) and plain chain steps are used, not skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

__all__ = ["DESCRIPTIONS", "SkipReason", "describe_skipped"]

SkipReason = Literal[
    "llm_without_output",  # messages but no answer: its prompts are kept as parameters
    "llm_without_input",  # an answer but no messages or prompt
    "llm_empty",  # an LLM span with neither
    "tool_without_result",
    "retriever_without_documents",
    "unreadable_attributes",  # attribute reading failed; the span was treated as plain
    "unreadable_content",  # building its step failed on odd content
]

DESCRIPTIONS: dict[str, str] = {
    "llm_without_output": "LLM call without an output (prompts kept, no output to connect)",
    "llm_without_input": "LLM call without input messages",
    "llm_empty": "LLM span with neither messages nor output",
    "tool_without_result": "tool span without a result",
    "retriever_without_documents": "retriever span without documents",
    "unreadable_attributes": "attributes could not be read",
    "unreadable_content": "content could not be turned into a step",
}


def describe_skipped(counts: Mapping[str, int]) -> str:
    """``"skipped spans: 3 (2 tool span without a result; 1 LLM call without ...)"``, one line."""
    total = sum(counts.values())
    parts = [
        f"{n} {DESCRIPTIONS.get(reason, reason)}"
        for reason, n in sorted(counts.items())
        if n
    ]
    return f"skipped spans: {total}" + (f" ({'; '.join(parts)})" if parts else "")
