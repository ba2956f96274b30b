"""Prompt texts the LangChain adapter sends (named constants, per the project convention)."""

from __future__ import annotations

#: Appended to the last message when a model cannot enforce a JSON schema itself.
#: Fields: ``schema`` (the JSON schema, as JSON text).
JSON_SCHEMA_INSTRUCTION = (
    "Reply with only a JSON object that matches this JSON schema, and nothing else:\n{schema}"
)
