"""Readers for the trace conventions of third-party exporters, one module per convention.

:func:`enrich` runs after the OpenInference / GenAI / OpenLLMetry reading of
:func:`..messages.view_of` and only fills what that left empty (kind ``other``, no messages,
no output), so a span carrying several conventions reads the same as before. Each reader is
``read(attrs, events, view) -> None`` and never raises on odd input.
:mod:`.start_success` works across spans (a call split into a start and a success span) and
runs on the views of a whole trace. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from ..spanview import SpanView
from . import (
    genai_current,
    genai_legacy,
    langfuse,
    logfire_data,
    openai_json,
    pydantic_ai,
    responses_api,
    vercel,
)

__all__ = ["enrich"]

Reader = Callable[[Mapping[str, object], Sequence[object], SpanView], None]

#: order matters: values first (Langfuse), then messages, then the output unwrapping
#: (Logfire's own request_data/response_data last: GenAI attributes win where both exist)
READERS: tuple[Reader, ...] = (
    langfuse.read,
    vercel.read,
    pydantic_ai.read,
    genai_legacy.read,
    genai_current.read,
    openai_json.read,
    responses_api.read,
    logfire_data.read,
)


def enrich(attrs: Mapping[str, object], events: Sequence[object], view: SpanView) -> None:
    """Fill ``view`` from the third-party conventions ``attrs`` / ``events`` use."""
    for reader in READERS:
        reader(attrs, events, view)
