"""Prompt texts the LlamaIndex host-model engine adds (named constants)."""

from __future__ import annotations

#: Appended to the request when a structured answer is asked of a LlamaIndex LLM that has no
#: native JSON-schema mode. Field: ``{schema}`` — the JSON schema, as indented JSON.
STRUCTURED_OUTPUT_INSTRUCTION = (
    "Answer with a single JSON object and nothing else: no prose, no code fences. "
    "It must validate against this JSON schema:\n{schema}"
)

#: Sent instead, once, when the first answer was not valid JSON. Fields: ``{error}`` — the
#: parse error; ``{schema}`` — the JSON schema.
STRUCTURED_OUTPUT_RETRY = (
    "Your previous answer could not be parsed ({error}). Reply again with only one JSON "
    "object that validates against this JSON schema:\n{schema}"
)
