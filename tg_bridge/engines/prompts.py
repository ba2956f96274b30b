"""Prompt texts the engines add to a request (named constants; no logic here)."""

from __future__ import annotations

__all__ = ["JSON_ANSWER_INSTRUCTION"]

#: Appended to the system message when a server cannot constrain output to a JSON schema and
#: the schema has to be asked for in words. Field: ``{schema}`` — the JSON schema, as JSON text.
JSON_ANSWER_INSTRUCTION = (
    "Reply with a single JSON value and nothing else: no prose, no code fences. "
    "The JSON must follow this JSON schema:\n{schema}"
)
